"""Run a graph through the process scheduler in a background thread, recording its events."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from graphkit.api import Graph
from graphkit.context import RunControl, Sandbox
from graphkit.devices import pick_device
from graphkit.errors import GraphError, Problem
from graphkit.events import (
    Event,
    NodeCached,
    NodeCancelled,
    NodeFailed,
    NodeFinished,
    NodeProgress,
    NodeSkipped,
    NodeStarted,
    RunFinished,
)
from graphkit.inputs import input_problems
from graphkit.scheduler import RunResult, Scheduler

NO_OUTPUT = "no_output"  # the problem code of a graph without an output node

# One run at a time per process: runs share the scheduler's cache and the model manager.
_RUN_LOCK = threading.Lock()


@dataclass
class NodeStatus:
    """Where one node stands in a run."""

    state: str = "waiting"  # waiting | running | cached | done | failed | skipped | cancelled
    step: int = 0
    total: int = 0
    seconds: float | None = None
    message: str = ""


def status_words(status: NodeStatus) -> str:
    """A few words for a node's state in a run."""
    if status.state == "running":
        return f"running step {status.step}/{status.total}" if status.total else "running"
    if status.state == "cancelled":
        return f"cancelled at step {status.step}/{status.total}" if status.total else "cancelled"
    if status.state == "done":
        return f"ran in {status.seconds or 0:.2f} s"
    if status.state in ("failed", "skipped"):
        return f"{status.state}: {status.message}"
    return status.state


@dataclass
class RunRecord:
    """Events of one run as they arrive, per-node status, and the outcome."""

    graph_json: str
    control: RunControl = field(default_factory=RunControl)
    events: list[Event] = field(default_factory=list)
    nodes: dict[str, NodeStatus] = field(default_factory=dict)
    result: RunResult | None = None
    error: str = ""
    problems: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)
            node = getattr(event, "node", None)
            if node is None:
                return
            status = self.nodes.setdefault(node, NodeStatus())
            if isinstance(event, NodeStarted):
                status.state = "running"
            elif isinstance(event, NodeProgress):
                status.step, status.total = event.step, event.total
            elif isinstance(event, NodeCached):
                status.state = "cached"
            elif isinstance(event, NodeFinished):
                status.state, status.seconds = "done", event.seconds
            elif isinstance(event, NodeFailed):
                status.state, status.message = "failed", event.error
            elif isinstance(event, NodeSkipped):
                status.state, status.message = "skipped", event.because
            elif isinstance(event, NodeCancelled):
                status.state = "cancelled"

    @property
    def running(self) -> bool:
        return self.finished is None

    @property
    def executed(self) -> list[str]:
        """Nodes that ran (not cached), from the events."""
        return [e.node for e in self.events if isinstance(e, NodeFinished)]

    @property
    def cached(self) -> list[str]:
        return [e.node for e in self.events if isinstance(e, NodeCached)]

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok and not self.error

    @property
    def summary(self) -> str:
        """One line: what happened."""
        if self.running:
            done = sum(s.state not in ("waiting", "running") for s in self.nodes.values())
            return f"running: {done} nodes done"
        if self.problems:
            return "the graph has problems; fix them and run again"
        if self.error:
            return self.error
        fin = next((e for e in self.events if isinstance(e, RunFinished)), None)
        if fin is None:
            return "finished"
        state = "cancelled" if fin.cancelled else ("done" if fin.ok else "failed")
        return (f"{state}: {fin.executed} ran, {fin.cached} cached, {fin.failed} failed "
                f"in {fin.seconds:.2f} s")

    def settle(self) -> None:
        """The run is over: a node still marked running never got its last event (the run
        itself raised), so it is shown as failed."""
        with self._lock:
            for status in self.nodes.values():
                if status.state == "running":
                    status.state = "failed"
                    status.message = "the run stopped before it finished"

    def snapshot(self) -> dict[str, NodeStatus]:
        """A copy of the per-node statuses (safe to read while the run goes on)."""
        with self._lock:
            return {k: NodeStatus(**vars(v)) for k, v in self.nodes.items()}


def blocking_problems(graph: Graph, targets: list[str] | None,
                      inputs: Iterable[Path] = ()) -> list[Problem]:
    """What stops a run: every problem (input files the run needs, looked for in the graph's
    folder and ``inputs``, included), except, for a run of chosen targets, that the graph
    has no output node (the targets are what is wanted)."""
    checked = graph.checked()
    problems = [*checked.problems,
                *input_problems(checked, Sandbox([graph.base_dir, *inputs], None), targets)]
    return [p for p in problems if not targets or p.code != NO_OUTPUT]


def _run(record: RunRecord, graph: Graph, out_dir: Path, inputs: list[Path],
         scheduler: Scheduler | None, targets: list[str] | None) -> RunResult:
    if not targets:
        return graph.run(out_dir, inputs=inputs, listeners=[record], control=record.control,
                         scheduler=scheduler)
    problems = blocking_problems(graph, targets, inputs)
    if problems:
        raise GraphError(problems)
    from graphkit.api import default_scheduler

    sandbox = Sandbox([graph.base_dir, *inputs], out_dir)
    return (scheduler or default_scheduler()).run(
        graph.checked(), device=pick_device(None), sandbox=sandbox, control=record.control,
        targets=targets, listeners=[record], graph_json=graph.dumps())


def _execute(record: RunRecord, graph: Graph, out_dir: Path, inputs: list[Path],
             scheduler: Scheduler | None, targets: list[str] | None) -> None:
    try:
        with _RUN_LOCK:
            record.result = _run(record, graph, out_dir, inputs, scheduler, targets)
    except GraphError as exc:
        record.problems = exc.lines()
        record.error = "the graph has problems"
    except Exception as exc:  # shown in the UI; the editor keeps working
        record.error = f"run failed: {type(exc).__name__}: {exc}"
    finally:
        record.settle()
        record.finished = time.perf_counter()


def start_run(graph: Graph, out_dir: Path, inputs: Iterable[Path] = (),
              scheduler: Scheduler | None = None, background: bool = True,
              targets: list[str] | None = None) -> RunRecord:
    """Run a copy of ``graph`` (later edits do not affect it); in a thread unless told not to.

    ``targets`` limits the run to what those nodes need (default: every output node).
    """
    graph = graph.copy()
    record = RunRecord(graph_json=graph.dumps())
    args = (record, graph, Path(out_dir), list(inputs), scheduler, targets)
    if not background:
        _execute(*args)
        return record
    record.thread = threading.Thread(target=_execute, args=args, daemon=True,
                                     name="graphkit-editor-run")
    record.thread.start()
    return record
