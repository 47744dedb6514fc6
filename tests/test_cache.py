"""The output cache: hits and misses, Merkle content keys, budgets, spills, drops, pins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import Toy, chain

from graphkit.api import Graph
from graphkit.cache import OutputCache
from graphkit.context import RunContext
from graphkit.registry import node
from graphkit.scheduler import Scheduler, content_key
from graphkit.types import Image, SavedFiles, value_nbytes


def blob(n_floats: int, fill: float = 0.0) -> dict[str, Any]:
    """Outputs holding one tensor of ``n_floats`` float32 values."""
    return {"image": Image(torch.full((1, 1, 1, n_floats), fill))}


SIZE = value_nbytes(blob(25)["image"])  # 100 bytes


def test_hits_and_misses_counted() -> None:
    cache = OutputCache()
    assert cache.get("a") is None
    cache.put("a", blob(25))
    assert "a" in cache and len(cache) == 1
    assert cache.get("a") is not None and cache.get("a") is not None
    assert cache.get("b") is None
    assert (cache.stats.hits, cache.stats.misses) == (2, 2)
    assert cache.device_bytes == SIZE == 100


def test_peek_does_not_count_or_reorder() -> None:
    cache = OutputCache()
    cache.put("a", blob(25))
    cache.put("b", blob(25))
    assert cache.peek("a") is not None and cache.peek("zzz") is None
    assert (cache.stats.hits, cache.stats.misses) == (0, 0)
    assert list(cache.entries) == ["a", "b"]


def test_device_budget_spills_least_recently_used_to_host() -> None:
    """Over the device budget the LRU entry moves to host; recency follows get()."""
    cache = OutputCache(device_budget=2 * SIZE)
    cache.put("a", blob(25))
    cache.put("b", blob(25))
    cache.get("a")  # now b is least recently used
    cache.put("c", blob(25))
    assert cache.entries["b"].on_host
    assert not cache.entries["a"].on_host and not cache.entries["c"].on_host
    assert cache.stats.spills == 1 and cache.stats.drops == 0
    assert (cache.device_bytes, cache.host_bytes) == (2 * SIZE, SIZE)
    assert len(cache) == 3


def test_spilled_entry_comes_back_on_get() -> None:
    """Getting a spilled entry for a device moves it back and counts bytes there again."""
    cache = OutputCache(device_budget=SIZE)
    cache.put("a", blob(25, 1.0))
    cache.put("b", blob(25, 2.0))
    assert cache.entries["a"].on_host
    out = cache.get("a", torch.device("cpu"))
    assert out is not None and torch.equal(out["image"].pixels, torch.full((1, 1, 1, 25), 1.0))
    assert not cache.entries["a"].on_host
    assert cache.entries["b"].on_host  # made room for a
    assert cache.device_bytes == SIZE and cache.host_bytes == SIZE


def test_host_budget_drops_entries() -> None:
    """Over the host budget, the oldest host entries are dropped."""
    cache = OutputCache(device_budget=SIZE, host_budget=SIZE)
    for key in "abcd":
        cache.put(key, blob(25))
    assert list(cache.entries) == ["c", "d"]
    assert cache.entries["c"].on_host and not cache.entries["d"].on_host
    assert cache.stats.spills == 3 and cache.stats.drops == 2
    assert (cache.device_bytes, cache.host_bytes) == (SIZE, SIZE)


def test_pinned_entry_never_dropped() -> None:
    """A pinned key survives any pressure; unpinning lets it go."""
    cache = OutputCache(device_budget=0, host_budget=0)
    cache.pin("a", 2)
    cache.put("a", blob(25))
    for key in "bcd":
        cache.put(key, blob(25))
    assert "a" in cache and cache.entries["a"].on_host
    assert cache.stats.drops >= 2
    cache.unpin("a")
    assert "a" in cache
    cache.unpin("a")
    assert "a" not in cache


def test_discard_and_clear_keep_byte_counts_right() -> None:
    cache = OutputCache(device_budget=SIZE)
    cache.put("a", blob(25))
    cache.put("b", blob(25))
    cache.discard("a")
    assert (cache.device_bytes, cache.host_bytes) == (SIZE, 0)
    cache.put("b", blob(50))  # replacing an entry recounts it
    assert cache.device_bytes == 2 * SIZE
    cache.clear()
    assert (len(cache), cache.device_bytes, cache.host_bytes) == (0, 0, 0)


# --- content keys, through the scheduler --------------------------------------------------

def test_content_key_covers_type_version_params_and_inputs(toy: Toy) -> None:
    """The key changes with params, type version, and any upstream key."""
    graph = toy.graph(chain(2))
    checked = graph.checked()
    keys: dict[str, str] = {}
    for nid in checked.order:
        keys[nid] = content_key(checked.nodes[nid], keys)
    n1 = checked.nodes["n1"]
    assert content_key(n1, keys) == keys["n1"]
    n1.params = {**n1.params, "offset": 9.0}
    assert content_key(n1, keys) != keys["n1"]
    n1.params = {**n1.params, "offset": 1.0}
    assert content_key(n1, {**keys, "src": "other"}) != keys["n1"]
    spec = n1.spec
    n1.spec = type(spec)(**{**spec.__dict__, "version": "1.0.1"})
    assert content_key(n1, keys) != keys["n1"]


def test_changing_one_param_reruns_it_and_descendants(toy: Toy, scheduler: Scheduler) -> None:
    """Only the changed node and what depends on it run again; keys elsewhere are stable."""
    nodes = chain(4)
    nodes["side"] = {"type": "toy.add", "inputs": {"a": "src.image"}}
    nodes["out2"] = {"type": "toy.sink", "inputs": {"image": "side.image"}}
    graph = toy.graph(nodes)
    first = toy.run(graph, scheduler)
    assert sorted(first.executed) == sorted(nodes) and sorted(toy.calls) == sorted(nodes)
    graph.set_param("n2", "offset", 20.0)
    second = toy.run(graph, scheduler)
    assert sorted(second.executed) == ["n2", "n3", "n4", "out"] == sorted(toy.calls)
    assert sorted(second.cached) == ["n1", "out2", "side", "src"]
    changed = {n for n in nodes if first.keys[n] != second.keys[n]}
    assert changed == {"n2", "n3", "n4", "out"}


def test_fully_cached_rerun_executes_nothing(toy: Toy, scheduler: Scheduler) -> None:
    graph = toy.graph(chain(3))
    toy.run(graph, scheduler)
    hits_before = scheduler.cache.stats.hits
    again = toy.run(graph, scheduler)
    assert again.executed == [] and toy.calls == []
    assert sorted(again.cached) == sorted(chain(3))
    assert scheduler.cache.stats.hits - hits_before == len(chain(3))


def test_changing_last_param_runs_exactly_one_node(
    graphs_dir: Path, tmp_path: Path, scheduler: Scheduler
) -> None:
    """Renaming the output of an example graph re-runs the save node only."""
    graph = Graph.load(graphs_dir / "mask_composite.json")
    first = graph.run(tmp_path, device="cpu", scheduler=scheduler)
    assert first.ok and len(first.executed) == len(graph.doc.nodes)
    graph.set_param("save", "name", "renamed")
    second = graph.run(tmp_path, device="cpu", scheduler=scheduler)
    assert second.executed == ["save"]
    assert len(second.cached) == len(graph.doc.nodes) - 1
    assert (tmp_path / "renamed.png").is_file()


def test_tiny_device_budget_spills_and_rerun_still_cached(toy: Toy) -> None:
    """With a tiny device budget values go to host; a re-run is still fully cached."""
    scheduler = Scheduler(OutputCache(device_budget=1))
    graph = toy.graph(chain(3))
    assert toy.run(graph, scheduler).ok
    stats = scheduler.cache.stats
    assert stats.spills > 0 and stats.drops == 0
    assert any(e.on_host for e in scheduler.cache.entries.values())
    again = toy.run(graph, scheduler)
    assert again.executed == [] and again.ok


def record_node(toy: Toy, seen: list[torch.Tensor]) -> None:
    @node("toy.record", output_node=True, into=toy.reg)
    def record(ctx: RunContext, image: Image) -> SavedFiles:
        """Keeps what it was given."""
        seen.append(image.pixels.clone())
        return SavedFiles(())


def early_needed_late(toy: Toy) -> Graph:
    """src feeds n1 -> n2 -> n3 and also the last node, which adds n3 and src."""
    nodes = chain(3, value=0.5)
    del nodes["out"]
    nodes["src"]["params"]["size"] = 32
    nodes["last"] = {"type": "toy.add", "inputs": {"a": "n3.image", "b": "src.image"}}
    nodes["out"] = {"type": "toy.record", "inputs": {"image": "last.image"}}
    return toy.graph(nodes)


def test_pinned_value_survives_tiny_budget_mid_run(toy: Toy) -> None:
    """An early output the last node needs is not dropped, however small the budget."""
    seen: list[torch.Tensor] = []
    record_node(toy, seen)
    scheduler = Scheduler(OutputCache(device_budget=1, host_budget=1))
    result = toy.run(early_needed_late(toy), scheduler)
    assert result.ok, result.failed
    assert scheduler.cache.stats.drops > 0
    expected = torch.full((1, 3, 32, 32), 0.5 + 1 + 2 + 3) + torch.full((1, 3, 32, 32), 0.5)
    (value,) = seen
    assert torch.equal(value, expected)


def test_without_pins_the_same_run_would_lose_the_value(
    toy: Toy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control for the test above: with pinning disabled, the early value is dropped."""
    record_node(toy, [])
    monkeypatch.setattr(OutputCache, "pin", lambda self, key, count=1: None)
    scheduler = Scheduler(OutputCache(device_budget=1, host_budget=1))
    result = toy.run(early_needed_late(toy), scheduler)
    assert "last" in result.failed
