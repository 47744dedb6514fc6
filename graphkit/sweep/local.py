"""Run sweep variations with one scheduler: the code both local sweeps and Ray workers use.

Variations are taken in order, ``batch`` at a time, and each group runs through
:meth:`Scheduler.run_group`: what no swept param reaches runs once (the output cache keeps
it across groups), and nodes that declare batching run the group's items in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from graphkit.context import RunControl, Sandbox
from graphkit.events import Listener
from graphkit.scheduler import RunItem, RunResult, Scheduler
from graphkit.sweep.spec import Variation

if TYPE_CHECKING:
    from graphkit.api import Graph

DEFAULT_BATCH = {"cuda": 8, "mps": 4, "cpu": 4}


def default_batch(device: torch.device) -> int:
    """Variations per pipeline call when ``--batch`` is not given.

    On a GPU one image rarely fills the device, so batching raises throughput (8 fits
    SDXL at 512x512 in fp16 with room to spare; a batch that runs out of memory is
    retried one variation at a time). On the CPU a batch of 4 already amortises the
    per-call work (prompt encoding, scheduler set-up, VAE launch): bench/bench_sweep.py
    measured batch 1 at 0.70x the throughput of one batched call on the tiny models,
    while a bigger batch would mostly add memory and lose more work to a Ctrl-C.
    """
    return DEFAULT_BATCH.get(device.type, 1)


def variation_graph(base: Graph, overrides: dict[str, Any]) -> Graph:
    """A copy of ``base`` with a variation's overrides set."""
    graph = base.copy()
    for key, value in overrides.items():
        node_id, _dot, name = key.partition(".")
        graph.set_param(node_id, name, value)
    return graph


def run_variations(
    base: Graph,
    variations: Sequence[Variation],
    folder_of: Callable[[Variation], Path],
    *,
    device: torch.device,
    inputs: Iterable[Path] = (),
    batch: int = 1,
    control: RunControl | None = None,
    scheduler: Scheduler | None = None,
    listeners: Iterable[Listener] = (),
    root: Path,
    models: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Run each variation into ``folder_of(variation)``; yield its row as it finishes.

    Without ``scheduler``, the process scheduler runs them (the one ``Graph.run`` uses),
    whose output cache keeps within GRAPHKIT_CACHE_DEVICE_MB / GRAPHKIT_CACHE_HOST_MB, so
    a long sweep does not pile up every variation's images in memory. Stops (without a
    row for unfinished variations) when ``control`` is cancelled. Row files are relative
    to ``root``. ``models`` picks the model profile as for ``Graph.run``.
    """
    from graphkit.api import model_profile

    control = control or RunControl()
    if scheduler is None:  # the process scheduler: its cache has memory budgets
        from graphkit.api import default_scheduler

        scheduler = default_scheduler()
    inputs = [Path(p) for p in inputs]
    extras, salts = model_profile(base.checked(), models)
    # Grouping only pays where a node can batch; elsewhere it would only hold rows back.
    if not any(node.spec.batching for node in base.checked().nodes.values()):
        batch = 1
    for start in range(0, len(variations), max(1, batch)):
        if control.cancelled:
            return
        group = variations[start:start + max(1, batch)]
        items: dict[int, RunItem] = {}
        invalid: dict[int, str] = {}
        for variation in group:
            graph = variation_graph(base, variation.set)
            checked = graph.checked()
            if checked.problems:
                invalid[variation.index] = "; ".join(str(p) for p in checked.problems)
                continue
            sandbox = Sandbox([base.base_dir, *inputs], folder_of(variation))
            items[variation.index] = RunItem(checked, sandbox, graph.dumps(), tuple(listeners),
                                             salts=salts)
        results = dict(zip(items, scheduler.run_group(
            list(items.values()), device=device, control=control, extras=extras,
            max_batch=batch),
            strict=True)) if items else {}
        for variation in group:  # rows in sweep order
            if variation.index in invalid:
                yield failed_row(variation, invalid[variation.index])
                continue
            result = results[variation.index]
            if result.cancelled:
                return
            yield row_of(variation, result, items[variation.index], root)


def row_of(variation: Variation, result: RunResult, item: RunItem, root: Path
           ) -> dict[str, Any]:
    """The manifest row of a variation that ran."""
    row: dict[str, Any] = {
        "index": variation.index,
        "set": variation.set,
        "status": "done" if result.ok else "failed",
        "files": [_relative(p, root) for p in result.files],
        "executed": list(result.executed),
        "cached": list(result.cached),
        "seconds": round(sum(result.seconds.values()), 6),
    }
    if not result.ok:
        parts = []
        for node_id, message in result.failed.items():
            type_id = item.checked.nodes[node_id].spec.type_id
            field, _msg = result.user_errors.get(node_id, (None, ""))
            where = f" '{field}'" if field else ""
            parts.append(f"node '{node_id}' ({type_id}){where}: {message}")
        row["error"] = "; ".join(parts)
    return row


def failed_row(variation: Variation, error: str) -> dict[str, Any]:
    """The row of a variation that could not start (its graph is invalid)."""
    return {"index": variation.index, "set": variation.set, "status": "failed", "files": [],
            "executed": [], "cached": [], "seconds": 0.0, "error": error}


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
