"""Events a sweep emits: started, each variation's row as it finishes, finished."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SweepStarted:
    """``total`` variations, of which ``skipped`` were done by an earlier run."""

    total: int
    skipped: int
    batch: int
    on: str
    out: str


@dataclass(frozen=True)
class VariationFinished:
    """A manifest row (status done, failed, or skipped when an earlier run did it).

    ``finished`` counts the variations with a row so far, skipped ones included.
    """

    row: dict[str, Any]
    finished: int
    total: int


@dataclass(frozen=True)
class SweepFinished:
    done: int
    failed: int
    skipped: int
    cancelled: bool
    seconds: float
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)


SweepEvent = SweepStarted | VariationFinished | SweepFinished
SweepListener = Callable[[Any], None]
