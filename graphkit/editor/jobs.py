"""What runs in the editor's process: one run or one sweep at a time, and each tab's sweep.

Runs and sweeps share the process's scheduler, output cache and model manager, so the
editor starts one only while nothing else runs, in any tab. Sweeps are kept here rather than
in the page's session, by tab id (the ``?tab=`` of the page address): a reloaded page finds
its tab's sweep, running or finished.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, TypeVar

from graphkit.errors import GraphError, problem

KEEP_SWEEPS = 50  # tabs whose last sweep is remembered (the most recent ones)


class Job(Protocol):
    @property
    def running(self) -> bool: ...


J = TypeVar("J", bound=Job)

_lock = threading.Lock()
_current: tuple[str, str, Job] | None = None  # (kind, tab, job) of the latest job started
_sweeps: OrderedDict[str, Job] = OrderedDict()


def busy(tab: str | None = None) -> str:
    """Why nothing can start now (one line), or "" when nothing runs."""
    with _lock:
        return _busy(tab)


def _busy(tab: str | None) -> str:
    if _current is None or not _current[2].running:
        return ""
    kind, owner, _job = _current
    where = "" if owner == tab else " in another tab"
    if kind == "sweep":
        return (f"a sweep is running{where}: wait for it or cancel it "
                "(Sweep tab below the canvas)")
    return f"a run is in progress{where}: wait for it or cancel it"


def sweep_running() -> bool:
    with _lock:
        return _current is not None and _current[0] == "sweep" and _current[2].running


def start(kind: str, tab: str, begin: Callable[[], J]) -> J:
    """Call ``begin`` (which starts a run or a sweep and returns it) unless something runs;
    then a GraphError says what runs. ``kind`` is "run" or "sweep"."""
    global _current
    with _lock:
        reason = _busy(tab)
        if reason:
            raise GraphError([problem("busy", reason)])
        job = begin()
        _current = (kind, tab, job)
        if kind == "sweep":
            _sweeps.pop(tab, None)
            _sweeps[tab] = job
            while len(_sweeps) > KEEP_SWEEPS:
                _sweeps.popitem(last=False)
        return job


def sweep_of(tab: str) -> Job | None:
    """The last sweep started from tab ``tab`` in this process (running or not)."""
    with _lock:
        return _sweeps.get(tab)
