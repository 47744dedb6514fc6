"""A sweep running in a background thread, for a UI: progress, rows as they come, cancel.

    job = graph.start_sweep({"gen.seed": "0..15"}, out="out/seeds", listener=print)
    while job.running:
        p = job.progress()          # finished / total, rows so far, each with its files
        # (files are relative to job.out)
        time.sleep(0.5)
    rows = job.wait()               # raises the GraphError if the sweep was refused

The sweep is checked before the thread starts, so bad input raises GraphError from
``start_sweep`` itself. ``listener`` receives every :mod:`graphkit.sweep.events` event on
the sweep's thread: keep it short and thread-safe (a UI should poll :meth:`progress` from
its own thread rather than draw from the listener). ``cancel()`` stops after the current
diffusion step; finished variations stay in the manifest and a later sweep into the same
folder skips them.

One process runs one graph at a time on a model: while a job runs, do not run another
graph in the same process (an editor should disable its run button until ``running`` is
False).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphkit.context import RunControl
from graphkit.sweep.events import SweepFinished, SweepListener, SweepStarted, VariationFinished
from graphkit.sweep.run import SweepOutcome, SweepPlan, execute


@dataclass
class SweepProgress:
    """A snapshot: ``finished`` of ``total`` variations have a row (skipped ones included)."""

    total: int
    finished: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    running: bool = True
    cancelled: bool = False
    error: BaseException | None = None

    @property
    def fraction(self) -> float:
        return self.finished / self.total if self.total else 1.0


class SweepJob:
    """A prepared sweep run on a daemon thread; see the module docstring."""

    def __init__(self, plan: SweepPlan, listener: SweepListener | None = None,
                 **options: Any) -> None:
        self.plan = plan
        self.control = RunControl()
        self._listener = listener
        self._options = options
        self._lock = threading.Lock()
        self._rows: dict[int, dict[str, Any]] = {}
        self._outcome: SweepOutcome | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="graphkit-sweep", daemon=True)

    def start(self) -> SweepJob:
        self._thread.start()
        return self

    @property
    def out(self) -> Path:
        """The sweep folder; row files are relative to it."""
        return self.plan.out

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def cancel(self) -> None:
        """Stop after the current step; finished variations are kept."""
        self.control.cancel()

    def progress(self) -> SweepProgress:
        with self._lock:
            rows = [self._rows[i] for i in sorted(self._rows)]
        return SweepProgress(len(self.plan.variations), len(rows), rows, self.running,
                             self.control.cancelled, self._error)

    def wait(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """The rows once the sweep ends (re-raising its error); TimeoutError if still running."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the sweep is still running")
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return self._outcome.rows

    def _on_event(self, event: Any) -> None:
        if isinstance(event, VariationFinished):
            with self._lock:
                self._rows[event.row["index"]] = event.row
        if self._listener is not None and isinstance(
                event, SweepStarted | VariationFinished | SweepFinished):
            self._listener(event)

    def _run(self) -> None:
        try:
            self._outcome = execute(self.plan, control=self.control, listener=self._on_event,
                                    **self._options)
        except BaseException as exc:  # kept for wait() and progress(); the thread ends
            self._error = exc
