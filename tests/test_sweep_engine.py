"""Scheduler groups: items share outputs by key, batching nodes run items in one call."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
import torch

from graphkit.api import Graph
from graphkit.context import RunContext, RunControl, Sandbox
from graphkit.graph import GraphDoc
from graphkit.registry import Batching, Param, Registry, RegistryError, node
from graphkit.scheduler import RunItem, Scheduler
from graphkit.types import Image, SavedFiles


def batch_registry(calls: list[tuple[str, int]]) -> Registry:
    """const -> noise (batching over seed and image) -> sink; calls record (node, items)."""
    reg = Registry()

    @node("toy.const", into=reg)
    def const(ctx: RunContext, value: float = 0.0) -> Image:
        calls.append((ctx.node_id, 1))
        return Image(torch.full((1, 3, 2, 2), float(value)))

    def noise_batch(ctx: RunContext, items: list[dict[str, Any]], scale: float = 1.0
                    ) -> list[Image]:
        calls.append((ctx.node_id, len(items)))
        if any(it["seed"] == 13 for it in items):
            raise RuntimeError("unlucky seed")
        return [Image(it["image"].pixels + scale * it["seed"]) for it in items]

    @node("toy.noise", into=reg, batching=Batching(("seed", "image"), noise_batch))
    def noise(ctx: RunContext, image: Image, seed: Annotated[int, Param(ge=0)] = 0,
              scale: float = 1.0) -> Image:
        return noise_batch(ctx, [{"image": image, "seed": seed}], scale)[0]

    @node("toy.sink", output_node=True, into=reg)
    def sink(ctx: RunContext, image: Image) -> SavedFiles:
        calls.append((ctx.node_id, 1))
        return SavedFiles(())

    return reg


def _items(reg: Registry, tmp_path: Path, variations: list[dict[str, Any]]) -> list[RunItem]:
    items = []
    for i, params in enumerate(variations):
        graph = Graph(GraphDoc.model_validate({"nodes": {
            "src": {"type": "toy.const", "params": {"value": params.get("value", 1.0)}},
            "gen": {"type": "toy.noise", "params": {"seed": params["seed"],
                                                    "scale": params.get("scale", 1.0)},
                    "inputs": {"image": "src.image"}},
            "out": {"type": "toy.sink", "inputs": {"image": "gen.image"}},
        }}), tmp_path, reg)
        checked = graph.checked()
        assert checked.ok, checked.problems
        items.append(RunItem(checked, Sandbox([tmp_path], tmp_path / f"{i:05d}")))
    return items


def test_items_differing_in_seed_run_in_one_batch_call(tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []
    reg = batch_registry(calls)
    items = _items(reg, tmp_path, [{"seed": s} for s in range(5)])
    results = Scheduler().run_group(items, device=torch.device("cpu"), max_batch=4)
    assert [r.ok for r in results] == [True] * 5
    # the shared upstream node ran once; gen ran as one call of 4 and one of 1
    assert calls.count(("src", 1)) == 1
    assert [c for c in calls if c[0] == "gen"] == [("gen", 4), ("gen", 1)]
    assert results[0].executed == ["src", "gen", "out"]
    assert [r.cached for r in results[1:]] == [["src"]] * 4
    for seed, result in enumerate(results):
        assert torch.equal(result.value("gen").pixels, torch.full((1, 3, 2, 2), 1.0 + seed))


def test_items_differing_in_other_params_are_not_batched_together(tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []
    reg = batch_registry(calls)
    variations = [{"seed": 1, "scale": 1.0}, {"seed": 2, "scale": 2.0},
                  {"seed": 3, "scale": 1.0}]
    results = Scheduler().run_group(_items(reg, tmp_path, variations),
                                    device=torch.device("cpu"), max_batch=8)
    assert sorted(c for c in calls if c[0] == "gen") == [("gen", 1), ("gen", 2)]
    expected = [1 + 1.0, 1 + 4.0, 1 + 3.0]
    assert [r.value("gen").pixels[0, 0, 0, 0].item() for r in results] == expected


def test_a_failing_batch_is_retried_item_by_item(tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []
    reg = batch_registry(calls)
    items = _items(reg, tmp_path, [{"seed": s} for s in (12, 13, 14)])
    results = Scheduler().run_group(items, device=torch.device("cpu"), max_batch=3)
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].failed == {"gen": "RuntimeError: unlucky seed"}
    assert results[1].skipped == ["out"]
    assert [c for c in calls if c[0] == "gen"] == [("gen", 3), ("gen", 1), ("gen", 1),
                                                    ("gen", 1)]


def test_max_batch_one_calls_each_item_alone(tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []
    reg = batch_registry(calls)
    Scheduler().run_group(_items(reg, tmp_path, [{"seed": s} for s in range(3)]),
                          device=torch.device("cpu"), max_batch=1)
    assert [c for c in calls if c[0] == "gen"] == [("gen", 1)] * 3


def test_cancelled_group_marks_every_item(tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []
    reg = batch_registry(calls)
    control = RunControl()
    control.cancel()
    results = Scheduler().run_group(_items(reg, tmp_path, [{"seed": 1}, {"seed": 2}]),
                                    device=torch.device("cpu"), control=control)
    assert all(r.cancelled and not r.executed for r in results)
    assert calls == []


def test_batching_must_name_params_or_inputs_and_not_an_output_node() -> None:
    reg = Registry()

    def run(ctx: RunContext, items: list[dict[str, Any]]) -> list[Image]:
        return []

    with pytest.raises(RegistryError, match="batching over"):
        @node("toy.bad", into=reg, batching=Batching(("nope",), run))
        def bad(ctx: RunContext, seed: int = 0) -> Image:
            raise AssertionError

    with pytest.raises(RegistryError, match="output nodes"):
        @node("toy.bad_out", into=reg, output_node=True, batching=Batching(("seed",), run))
        def bad_out(ctx: RunContext, seed: int = 0) -> SavedFiles:
            raise AssertionError
