"""Progress lines and the per-node summary the CLI prints, built from run events."""

from __future__ import annotations

from typing import Any, TextIO

from graphkit.events import (
    Event,
    NodeCached,
    NodeCancelled,
    NodeFailed,
    NodeFinished,
    NodeProgress,
    NodeSkipped,
    NodeStarted,
    RunStarted,
)


class ProgressPrinter:
    """A listener printing one line per node (a live bar on a terminal) and, when the
    stream is not a terminal, one line per step of multi-step nodes."""

    def __init__(self, stream: TextIO, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.planned = 0
        self.done = 0
        self.status: dict[str, str] = {}
        self.types: dict[str, str] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.planned, self.done = event.planned, 0
        elif isinstance(event, NodeStarted):
            self.types[event.node] = event.type
            if self.tty:
                self._line(f"{event.node} ({event.type}) running", end=False)
        elif isinstance(event, NodeProgress):
            if self.tty:
                bar = _bar(event.step, event.total)
                self._line(f"{event.node} {bar} step {event.step}/{event.total}", end=False)
            else:  # logs and pipes get one line per step, so a reader can follow a long node
                self._line(f"{event.node} step {event.step}/{event.total}")
        elif isinstance(event, NodeCached | NodeFinished | NodeFailed | NodeSkipped
                        | NodeCancelled):
            self.done += 1
            self.types[event.node] = event.type
            self.status[event.node] = _status(event)
            self._line(f"{event.node} ({event.type}) {self.status[event.node]}")

    def _line(self, text: str, end: bool = True) -> None:
        if self.quiet:
            return
        prefix = f"[{self.done}/{self.planned}] "
        if self.tty:
            self.stream.write("\r\033[K" + prefix + text + ("\n" if end else ""))
        else:
            self.stream.write(prefix + text + "\n")
        self.stream.flush()

    def summary(self, result: Any, stream: TextIO) -> None:
        """A table: node, type, what happened, seconds; then totals."""
        rows = [(n, self.types.get(n, ""), self.status.get(n, "")) for n in self.status]
        width = max([len(r[0]) for r in rows] + [4])
        twidth = max([len(r[1]) for r in rows] + [4])
        for node_id, type_id, status in rows:
            stream.write(f"{node_id:<{width}}  {type_id:<{twidth}}  {status}\n")
        stream.write(
            f"{len(result.executed)} ran, {len(result.cached)} cached, {len(result.failed)} "
            f"failed, {len(result.skipped)} skipped in {result.total_seconds:.3f} s\n")
        for path in result.files:
            stream.write(f"wrote {path}\n")


def _status(event: Event) -> str:
    if isinstance(event, NodeCached):
        return "cached"
    if isinstance(event, NodeFinished):
        return f"ran in {event.seconds:.3f} s"
    if isinstance(event, NodeFailed):
        return f"FAILED: {event.error}"
    if isinstance(event, NodeCancelled):
        return f"cancelled after {event.seconds:.3f} s"
    assert isinstance(event, NodeSkipped)
    return f"skipped ({event.because})"


def _bar(step: int, total: int, width: int = 20) -> str:
    filled = int(width * step / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + "]"
