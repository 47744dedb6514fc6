"""Structured events a run emits, for the CLI's progress bar, the editor and tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Event:
    """Base of every run event."""

    run_id: str

    @property
    def kind(self) -> str:
        return _KINDS[type(self)]

    def to_dict(self) -> dict[str, object]:
        return {"event": self.kind, **asdict(self)}


@dataclass(frozen=True)
class RunStarted(Event):
    planned: int
    device: str


@dataclass(frozen=True)
class NodeStarted(Event):
    node: str
    type: str


@dataclass(frozen=True)
class NodeCached(Event):
    node: str
    type: str


@dataclass(frozen=True)
class NodeProgress(Event):
    node: str
    step: int
    total: int


@dataclass(frozen=True)
class NodeFinished(Event):
    node: str
    type: str
    seconds: float


@dataclass(frozen=True)
class NodeFailed(Event):
    node: str
    type: str
    error: str
    user_error: bool


@dataclass(frozen=True)
class NodeCancelled(Event):
    """The run was cancelled while this node ran; its output was discarded."""

    node: str
    type: str
    seconds: float


@dataclass(frozen=True)
class NodeSkipped(Event):
    node: str
    type: str
    because: str


@dataclass(frozen=True)
class RunFinished(Event):
    ok: bool
    cancelled: bool
    seconds: float
    executed: int
    cached: int
    failed: int


_KINDS: dict[type, str] = {
    RunStarted: "run_started",
    NodeStarted: "node_started",
    NodeCached: "node_cached",
    NodeProgress: "node_progress",
    NodeFinished: "node_finished",
    NodeFailed: "node_failed",
    NodeCancelled: "node_cancelled",
    NodeSkipped: "node_skipped",
    RunFinished: "run_finished",
}

Listener = Callable[[Event], None]
