"""Progress lines and the per-node summary the CLI prints, built from run events.

On a terminal the progress is one status line rewritten in place (the running node, a step
bar for multi-step nodes) and cleared when the run ends, so what stays on screen is the
summary. Anywhere else (a log, a pipe) each node gets one line when it is done; step lines
only when asked for (``steps=True``, the CLI's ``--progress``). A failure's message is not
part of either: the CLI prints it once, as an ``error:`` line naming the node and field.
"""

from __future__ import annotations

import shutil
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
    RunFinished,
    RunStarted,
)


class ProgressPrinter:
    """A run listener writing progress to ``stream`` and keeping each node's outcome."""

    def __init__(self, stream: TextIO, quiet: bool = False, steps: bool | None = None) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.steps = self.tty if steps is None else steps
        self.planned = 0
        self.done = 0
        self.status: dict[str, str] = {}
        self.types: dict[str, str] = {}
        self._live = False  # a status line is on screen and not yet ended

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.planned, self.done = event.planned, 0
        elif isinstance(event, NodeStarted):
            self.types[event.node] = event.type
            if self.tty:
                self._status_line(f"{event.node} ({event.type}) running")
        elif isinstance(event, NodeProgress):
            if not self.steps:
                return
            if self.tty:
                bar = _bar(event.step, event.total)
                self._status_line(f"{event.node} {bar} step {event.step}/{event.total}")
            else:
                self._log_line(f"{event.node} step {event.step}/{event.total}")
        elif isinstance(event, NodeCached | NodeFinished | NodeFailed | NodeSkipped
                        | NodeCancelled):
            self.done += 1
            self.types[event.node] = event.type
            self.status[event.node] = _status(event)
            text = f"{event.node} ({event.type}) {self.status[event.node]}"
            if self.tty:
                self._status_line(text)
            else:
                self._log_line(text)
        elif isinstance(event, RunFinished) and self._live:
            self._write("\r\033[K")
            self._live = False

    def _status_line(self, text: str) -> None:
        """Rewrite the one status line (terminal only), cut to the terminal's width."""
        width = max(shutil.get_terminal_size().columns - 1, 20)
        line = f"[{self.done}/{self.planned}] {text}"[:width]
        self._write("\r\033[K" + line)
        self._live = True

    def _log_line(self, text: str) -> None:
        self._write(f"[{self.done}/{self.planned}] {text}\n")

    def _write(self, text: str) -> None:
        if self.quiet:
            return
        self.stream.write(text)
        self.stream.flush()

    def summary(self, result: Any, stream: TextIO) -> None:
        """A table (node, type, what happened), the totals, and the files written."""
        rows = [(n, self.types.get(n, ""), self.status.get(n, "")) for n in self.status]
        width = max([len(r[0]) for r in rows] + [4])
        twidth = max([len(r[1]) for r in rows] + [4])
        for node_id, type_id, status in rows:
            stream.write(f"{node_id:<{width}}  {type_id:<{twidth}}  {status}\n")
        cancelled = sum(status.startswith("cancelled") for status in self.status.values())
        counts = (f"{len(result.executed)} ran, {len(result.cached)} cached, "
                  f"{len(result.failed)} failed, {len(result.skipped)} skipped, "
                  f"{cancelled} cancelled")
        not_started = self.planned - len(self.status)
        if not_started > 0:
            counts += f", {not_started} not started"
        stream.write(f"{counts} in {result.total_seconds:.3f} s\n")
        for path in result.files:
            stream.write(f"wrote {path}\n")


def _status(event: Event) -> str:
    if isinstance(event, NodeCached):
        return "cached"
    if isinstance(event, NodeFinished):
        return f"ran in {event.seconds:.3f} s"
    if isinstance(event, NodeFailed):
        return "failed"  # the message follows once, in the CLI's error line
    if isinstance(event, NodeCancelled):
        return f"cancelled after {event.seconds:.3f} s"
    assert isinstance(event, NodeSkipped)
    return f"skipped ({event.because})"


def _bar(step: int, total: int, width: int = 20) -> str:
    filled = int(width * step / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + "]"
