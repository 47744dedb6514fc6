"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pytest
import torch
from editor_server import launch_chromium
from tiny_fixture import tiny_manager  # noqa: F401 - a fixture for every module

from graphkit.api import Graph
from graphkit.context import NodeInputError, RunContext
from graphkit.graph import GraphDoc
from graphkit.registry import Param, Registry, node
from graphkit.scheduler import RunResult, Scheduler
from graphkit.types import Image, Latent, SavedFiles

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"


@pytest.fixture
def scheduler() -> Scheduler:
    """A scheduler with its own empty cache, so tests do not share cached outputs."""
    return Scheduler()


@pytest.fixture
def graphs_dir() -> Path:
    return GRAPHS


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless chromium, driven by playwright, shared by a module's tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        try:
            yield chromium
        finally:
            chromium.close()


# --- toy node types for engine tests -------------------------------------------------------
# A fresh Registry with small counting nodes, so engine tests need no models.

def toy_registry(calls: list[str]) -> Registry:
    """A fresh registry of tiny node types; every execution appends its node id to ``calls``."""
    reg = Registry()

    @node("toy.const", category="toy", into=reg)
    def const(ctx: RunContext, value: Annotated[float, Param(ge=-10, le=10)] = 0.0,
              size: Annotated[int, Param(ge=1, le=256)] = 4) -> Image:
        """A square image filled with one value."""
        calls.append(ctx.node_id)
        return Image(torch.full((1, 3, size, size), float(value), device=ctx.device))

    @node("toy.add", category="toy", into=reg)
    def add(ctx: RunContext, a: Image, b: Image | None = None, offset: float = 0.0) -> Image:
        """a + b + offset."""
        calls.append(ctx.node_id)
        out = a.pixels + offset
        return Image(out + b.pixels if b is not None else out)

    @node("toy.steps", category="toy", into=reg)
    def steps(ctx: RunContext, image: Image, n: Annotated[int, Param(ge=1)] = 3) -> Image:
        """Reports n progress steps."""
        calls.append(ctx.node_id)
        for i in range(1, n + 1):
            ctx.progress(i, n)
        return Image(image.pixels.clone())

    @node("toy.fail", category="toy", into=reg)
    def fail(ctx: RunContext, image: Image) -> Image:
        """Always raises an internal error."""
        calls.append(ctx.node_id)
        raise RuntimeError("boom")

    @node("toy.refuse", category="toy", into=reg)
    def refuse(ctx: RunContext, image: Image) -> Image:
        """Always refuses its input."""
        calls.append(ctx.node_id)
        raise NodeInputError("limit", "too big for this node")

    @node("toy.sink", category="toy", output_node=True, into=reg)
    def sink(ctx: RunContext, image: Image) -> SavedFiles:
        """An output node that writes nothing."""
        calls.append(ctx.node_id)
        return SavedFiles(())

    @node("toy.sdxl_latent", category="toy", into=reg)
    def sdxl_latent(ctx: RunContext) -> Latent.where(space="sdxl"):  # type: ignore[valid-type]
        """An SDXL latent."""
        calls.append(ctx.node_id)
        return Latent(torch.zeros(1, 4, 2, 2), "sdxl")

    @node("toy.kandinsky_decode", category="toy", into=reg)
    def kandinsky_decode(
        ctx: RunContext, latent: Latent.where(space="kandinsky2.2")  # type: ignore[valid-type]
    ) -> Image:
        """Takes only Kandinsky latents."""
        calls.append(ctx.node_id)
        return Image(torch.zeros(1, 3, 2, 2))

    @node("toy.any_decode", category="toy", into=reg)
    def any_decode(ctx: RunContext, latent: Latent) -> Image:
        """Takes latents of any space."""
        calls.append(ctx.node_id)
        return Image(torch.zeros(1, 3, 2, 2))

    return reg


@dataclass
class Toy:
    """A toy registry, the ids of the nodes it executed, and a folder to run in."""

    reg: Registry
    calls: list[str]
    root: Path
    results: list[RunResult] = field(default_factory=list)

    def graph(self, nodes: dict[str, Any]) -> Graph:
        """A Graph over the toy registry from a ``nodes`` mapping as written in a file."""
        return Graph(GraphDoc.model_validate({"nodes": nodes}), self.root, self.reg)

    def run(self, graph: Graph, scheduler: Scheduler, **kwargs: Any) -> RunResult:
        """Run on the CPU into ``root/out``, clearing ``calls`` first."""
        self.calls.clear()
        result = graph.run(self.root / "out", device="cpu", scheduler=scheduler, **kwargs)
        self.results.append(result)
        return result


@pytest.fixture
def toy(tmp_path: Path) -> Toy:
    """Toy node types in a fresh registry (see ``toy_registry``)."""
    calls: list[str] = []
    return Toy(toy_registry(calls), calls, tmp_path)


def chain(length: int, value: float = 1.0) -> dict[str, Any]:
    """const -> n1 -> ... -> n<length> -> out (a toy.sink)."""
    nodes: dict[str, Any] = {"src": {"type": "toy.const", "params": {"value": value}}}
    prev = "src"
    for i in range(1, length + 1):
        nodes[f"n{i}"] = {"type": "toy.add", "params": {"offset": float(i)},
                          "inputs": {"a": f"{prev}.image"}}
        prev = f"n{i}"
    nodes["out"] = {"type": "toy.sink", "inputs": {"image": f"{prev}.image"}}
    return nodes
