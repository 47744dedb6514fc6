"""Content-addressed cache of node outputs, with a device memory budget and host spill."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

from graphkit.devices import host_device
from graphkit.types import value_nbytes, value_to


@dataclass
class Entry:
    """The outputs of one node run, by port name."""

    outputs: dict[str, Any]
    nbytes: int
    on_host: bool = False


@dataclass
class CacheStats:
    """Counters for tests, reports and benchmarks."""

    hits: int = 0
    misses: int = 0
    spills: int = 0
    drops: int = 0


class OutputCache:
    """Node outputs by content key, least recently used first out.

    ``device_budget`` bounds bytes on the execution device: over it, the least recently used
    entries move to host memory. ``host_budget`` bounds bytes there: over it, entries are
    dropped. Keys pinned by a running plan are never dropped.
    """

    def __init__(self, device_budget: int | None = None, host_budget: int | None = None) -> None:
        self.device_budget = device_budget
        self.host_budget = host_budget
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.device_bytes = 0
        self.host_bytes = 0
        self.stats = CacheStats()
        self._pins: Counter[str] = Counter()
        self.lock = threading.RLock()

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def peek(self, key: str) -> dict[str, Any] | None:
        """Outputs without touching recency or moving them (None if absent)."""
        entry = self.entries.get(key)
        return entry.outputs if entry else None

    def touch(self, key: str) -> dict[str, Any] | None:
        """Count a hit and refresh recency without moving the outputs (None if absent)."""
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                self.stats.misses += 1
                return None
            self.stats.hits += 1
            self.entries.move_to_end(key)
            return entry.outputs

    def get(self, key: str, device: torch.device | None = None) -> dict[str, Any] | None:
        """Outputs for ``key``, brought back to ``device`` if they were spilled; None on a miss."""
        with self.lock:
            if self.touch(key) is None:
                return None
            entry = self.entries[key]
            if entry.on_host and device is not None:
                entry.outputs = {k: value_to(v, device) for k, v in entry.outputs.items()}
                entry.on_host = False
                self.host_bytes -= entry.nbytes
                self.device_bytes += entry.nbytes
                self._enforce(keep=key)
            return entry.outputs

    def put(self, key: str, outputs: dict[str, Any]) -> None:
        """Store a node's outputs (as the most recently used entry)."""
        with self.lock:
            self.discard(key)
            size = sum(value_nbytes(v) for v in outputs.values())
            self.entries[key] = Entry(outputs, size)
            self.device_bytes += size
            self._enforce(keep=key)

    def spill_all(self) -> None:
        """Move every entry to host memory (after the device ran out of memory)."""
        with self.lock:
            budget, self.device_budget = self.device_budget, 0
            self._spill(keep=None)
            self.device_budget = budget

    def discard(self, key: str) -> None:
        """Forget one entry."""
        with self.lock:
            entry = self.entries.pop(key, None)
            if entry is not None:
                self._uncount(entry)

    def clear(self) -> None:
        """Forget everything (pins stay)."""
        with self.lock:
            self.entries.clear()
            self.device_bytes = self.host_bytes = 0

    def pin(self, key: str, count: int = 1) -> None:
        """Protect ``key`` from being dropped until unpinned as many times."""
        with self.lock:
            self._pins[key] += count

    def unpin(self, key: str) -> None:
        with self.lock:
            self._pins[key] -= 1
            if self._pins[key] <= 0:
                del self._pins[key]
                self._enforce()

    def unpin_all(self) -> None:
        with self.lock:
            self._pins.clear()
            self._enforce()

    def _uncount(self, entry: Entry) -> None:
        if entry.on_host:
            self.host_bytes -= entry.nbytes
        else:
            self.device_bytes -= entry.nbytes

    def _enforce(self, keep: str | None = None) -> None:
        if self.device_budget is not None and self.device_bytes > self.device_budget:
            self._spill(keep)
        if self.host_budget is not None and self.host_bytes > self.host_budget:
            self._drop(keep)

    def _spill(self, keep: str | None) -> None:
        host = host_device()
        for unpinned_first in (True, False):
            for key, entry in list(self.entries.items()):
                if self.device_bytes <= self.device_budget:  # type: ignore[operator]
                    return
                if entry.on_host or key == keep or (unpinned_first and key in self._pins):
                    continue
                entry.outputs = {k: value_to(v, host) for k, v in entry.outputs.items()}
                entry.on_host = True
                self.device_bytes -= entry.nbytes
                self.host_bytes += entry.nbytes
                self.stats.spills += 1

    def _drop(self, keep: str | None) -> None:
        for key, entry in list(self.entries.items()):
            if self.host_bytes <= self.host_budget:  # type: ignore[operator]
                return
            if not entry.on_host or key == keep or key in self._pins:
                continue
            del self.entries[key]
            self.host_bytes -= entry.nbytes
            self.stats.drops += 1
