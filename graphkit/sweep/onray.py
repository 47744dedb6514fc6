"""Sweeps on a Ray cluster: Ray Data ``map_batches`` over an actor pool of sweep workers.

Each worker actor holds one model manager, one scheduler and one output cache for its
whole life, and runs its batches of variations with the same code as a local sweep
(:func:`graphkit.sweep.local.run_variations`) into a private temporary folder. It sends
back each variation's row and the bytes of the files it wrote (the PNGs, with their graph
inside), then deletes them; the driver writes those files into the sweep folder and the
row into the manifest, so workers need no shared disk for outputs. Models, input images
and the graph's folder must be readable at the same paths on every worker machine.

What crosses to workers is plain data only: the graph as JSON text, the overrides as JSON
text, folders as strings and GRAPHKIT_*/HF_* settings (tokens excepted). Nothing from a
graph file is ever pickled; workers parse the JSON as any graph file is parsed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphkit.context import RunControl
from graphkit.errors import GraphError, problem
from graphkit.fileio import atomic_write_bytes
from graphkit.sweep.local import DEFAULT_BATCH, run_variations
from graphkit.sweep.manifest import folder_name
from graphkit.sweep.spec import Variation

if TYPE_CHECKING:
    from graphkit.sweep.run import SweepPlan

_SETTINGS = ("GRAPHKIT_", "HF_")


def worker_settings(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The GRAPHKIT_* and HF_* settings workers get (never a token: workers use their own)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k.startswith(_SETTINGS) and "TOKEN" not in k}


class SweepWorker:
    """A Ray Data callable class: one per actor, models loaded once and kept."""

    def __init__(self, graph_json: str, base_dir: str, inputs: list[str], total: int,
                 batch: int, device: str, settings: dict[str, str]) -> None:
        os.environ.update(worker_settings(settings))
        from graphkit.api import Graph, default_scheduler
        from graphkit.devices import pick_device

        self.graph = Graph.from_json(graph_json, Path(base_dir))
        self.inputs = [Path(p) for p in inputs]
        self.total = total
        self.batch = batch
        self.device = pick_device(device)
        self.scheduler = default_scheduler()  # one per actor process, within budgets
        self.scratch = Path(tempfile.mkdtemp(prefix="graphkit-sweep-"))

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        variations = [Variation(int(i), json.loads(str(s)))
                      for i, s in zip(batch["index"], batch["overrides"], strict=True)]
        out: dict[str, list[Any]] = {"index": [], "row": [], "names": [], "blob": []}
        rows = run_variations(
            self.graph, variations, lambda v: self.scratch / folder_name(v.index, self.total),
            device=self.device, inputs=self.inputs, batch=self.batch,
            scheduler=self.scheduler, root=self.scratch)
        for row in rows:
            data = [(self.scratch / name).read_bytes() for name in row["files"]]
            for name in row["files"]:
                (self.scratch / name).unlink()
            out["index"].append(row["index"])
            out["row"].append(json.dumps(row))
            out["names"].append(json.dumps([[n, len(d)] for n, d in
                                            zip(row["files"], data, strict=True)]))
            out["blob"].append(b"".join(data))
        return out

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "scratch", ""), ignore_errors=True)


def run_on_ray(plan: SweepPlan, *, inputs: list[Path], control: RunControl,
               workers: int | None = None, address: str | None = None
               ) -> Iterator[dict[str, Any]]:
    """Yield each variation's row once its files are written into the sweep folder."""
    try:
        import ray
    except ImportError:
        raise GraphError([problem("sweep", "--on ray needs Ray: pip install 'graphkit[ray]'")]
                         ) from None
    todo = plan.todo
    if not todo:
        return
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or None,
                 include_dashboard=False, logging_level="warning")
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        batch = plan.batch if plan.batch_given else DEFAULT_BATCH["cuda" if gpus else "cpu"]
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # rows are the progress
        items = [{"index": v.index, "overrides": json.dumps(v.set)} for v in todo]
        dataset = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / batch))
        results = dataset.map_batches(
            SweepWorker,
            fn_constructor_kwargs={
                "graph_json": plan.graph.dumps(),
                "base_dir": str(plan.graph.base_dir.resolve()),
                "inputs": [str(p.resolve()) for p in inputs],
                "total": len(plan.variations),
                "batch": batch,
                "device": "cuda" if gpus else "cpu",
                "settings": {**worker_settings(),
                             **({"GRAPHKIT_MODELS": plan.models} if plan.models else {})},
            },
            compute=ray.data.ActorPoolStrategy(size=workers or max(1, gpus)),
            batch_size=batch,
            num_gpus=1 if gpus else 0,
        )
        for record in results.iter_rows():
            row = json.loads(record["row"])
            _write_files(plan.out, json.loads(record["names"]), record["blob"])
            yield row
            if control.cancelled:
                return
    finally:
        if started_here:
            ray.shutdown()


def _write_files(out: Path, names: list[list[Any]], blob: bytes) -> None:
    """Write a variation's files (names relative to the sweep folder) atomically."""
    root = out.resolve()
    offset = 0
    for name, size in names:
        target = (root / name).resolve()
        if not target.is_relative_to(root) or target == root:
            raise ValueError(f"a worker sent a file name outside the sweep folder: {name!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, blob[offset:offset + size])
        offset += size
