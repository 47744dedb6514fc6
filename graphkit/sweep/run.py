"""A whole sweep: check it, claim the output folder, skip finished work, run the rest
locally or on Ray, and record every variation in the manifest as it finishes."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from graphkit.context import RunControl
from graphkit.devices import pick_device
from graphkit.errors import GraphError, problem
from graphkit.events import Listener
from graphkit.limits import limits
from graphkit.scheduler import Scheduler
from graphkit.sweep.events import SweepFinished, SweepListener, SweepStarted, VariationFinished
from graphkit.sweep.local import default_batch, run_variations
from graphkit.sweep.manifest import Manifest, describe, folder_name
from graphkit.sweep.spec import Sweep, Variation, build_sweep

if TYPE_CHECKING:
    from graphkit.api import Graph

BACKENDS = ("local", "ray")


@dataclass
class SweepOutcome:
    """Rows of every variation that has one (by index), and whether the sweep was cancelled."""

    total: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows if row["status"] == status)


@dataclass
class SweepPlan:
    """A checked sweep ready to run: where, how, and which variations are left."""

    graph: Graph
    sweep: Sweep
    out: Path
    device: torch.device
    batch: int
    on: str
    variations: list[Variation]
    manifest: Manifest
    finished: dict[int, dict[str, Any]]
    batch_given: bool = False
    models: str | None = None

    @property
    def todo(self) -> list[Variation]:
        return [v for v in self.variations if v.index not in self.finished]

    def folder(self, variation: Variation) -> Path:
        return self.out / folder_name(variation.index, len(self.variations))


def prepare(graph: Graph, axes: Sweep | Mapping[str, Any] | Iterable[str], out: str | Path,
            *, zip: bool = False, on: str = "local", batch: int | None = None,
            device: str | torch.device | None = None, models: str | None = None) -> SweepPlan:
    """Check everything before anything runs; GraphError (exit 2 on the CLI) on bad input.

    ``models`` picks the model profile as for ``Graph.run`` (None: the process's)."""
    problems = graph.checked().problems  # input files are checked where each variation runs
    if problems:
        raise GraphError(problems)
    sweep = axes if isinstance(axes, Sweep) else build_sweep(graph, axes, zip)
    if models not in (None, "hub", "tiny"):
        raise _bad(f"models={models!r}: use 'hub' or 'tiny' (or leave it out)")
    if on not in BACKENDS:
        raise _bad(f"sweeps run on {' or '.join(BACKENDS)}, not '{on}'")
    if on == "ray" and importlib.util.find_spec("ray") is None:
        raise _bad("--on ray needs Ray: pip install 'graphkit[ray]'")
    try:
        dev = device if isinstance(device, torch.device) else pick_device(device)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    max_batch = limits().max_batch
    if batch is not None and not 1 <= batch <= max_batch:
        raise _bad(f"--batch must be 1 to {max_batch} (GRAPHKIT_LIMIT_MAX_BATCH), not {batch}")
    if Path(out).exists() and not Path(out).is_dir():
        raise _bad(f"--out '{out}' exists and is not a folder")
    variations = sweep.variations()
    manifest = Manifest(Path(out))
    manifest.claim(describe(graph.dumps(), sweep.describe(), [v.set for v in variations]))
    return SweepPlan(graph, sweep, Path(out), dev, batch or default_batch(dev), on,
                     variations, manifest, manifest.finished(manifest.rows()),
                     batch is not None, models)


def execute(plan: SweepPlan, *, inputs: Iterable[str | Path] = (),
            control: RunControl | None = None, listener: SweepListener | None = None,
            node_listeners: Iterable[Listener] = (), scheduler: Scheduler | None = None,
            workers: int | None = None, ray_address: str | None = None) -> SweepOutcome:
    """Run what is left of a prepared sweep; each row reaches the manifest as it finishes."""
    control = control or RunControl()
    emit = listener or (lambda _event: None)
    outcome = SweepOutcome(len(plan.variations))
    started = time.perf_counter()
    emit(SweepStarted(len(plan.variations), len(plan.finished), plan.batch, plan.on,
                      str(plan.out)))
    by_index: dict[int, dict[str, Any]] = {}
    for index in sorted(plan.finished):
        row = {**plan.finished[index], "status": "skipped", "executed": [], "cached": [],
               "seconds": 0.0}
        row.pop("error", None)
        by_index[index] = row
        emit(VariationFinished(row, len(by_index), outcome.total))
    inputs = [Path(p) for p in inputs]
    rows: Iterator[dict[str, Any]]
    if plan.on == "ray":
        from graphkit.sweep.onray import run_on_ray

        rows = run_on_ray(plan, inputs=inputs, control=control, workers=workers,
                          address=ray_address)
    else:
        rows = run_variations(
            plan.graph, plan.todo, plan.folder, device=plan.device, inputs=inputs,
            batch=plan.batch, control=control, scheduler=scheduler,
            listeners=node_listeners, root=plan.out, models=plan.models)
    for row in rows:
        plan.manifest.append(row)
        by_index[row["index"]] = row
        emit(VariationFinished(row, len(by_index), outcome.total))
    outcome.rows = [by_index[i] for i in sorted(by_index)]
    outcome.cancelled = control.cancelled and len(by_index) < outcome.total
    outcome.seconds = time.perf_counter() - started
    emit(SweepFinished(outcome.count("done"), outcome.count("failed"),
                       outcome.count("skipped"), outcome.cancelled, outcome.seconds,
                       outcome.rows))
    return outcome


def run_sweep(graph: Graph, axes: Sweep | Mapping[str, Any] | Iterable[str],
              out: str | Path, *, zip: bool = False, on: str = "local",
              batch: int | None = None, device: str | torch.device | None = None,
              models: str | None = None, **options: Any) -> SweepOutcome:
    """:func:`prepare` then :func:`execute` (options: inputs, control, listener, ...)."""
    return execute(prepare(graph, axes, out, zip=zip, on=on, batch=batch, device=device,
                           models=models), **options)


def _bad(message: str) -> GraphError:
    return GraphError([problem("sweep", message)])
