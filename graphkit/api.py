"""The Python API: load, edit, validate, run and save graphs in a few lines.

    import graphkit
    g = graphkit.load("graphs/mask_composite.json")
    g.set_param("grow", "pixels", 12)
    result = g.run(out="out")
    g.save("edited.json")
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from graphkit.cache import OutputCache
from graphkit.context import RunControl, Sandbox
from graphkit.devices import pick_device
from graphkit.environment import whole_number
from graphkit.errors import GraphError, Problem, problem
from graphkit.events import Listener
from graphkit.fileio import folder_problem
from graphkit.graph import (
    GraphDoc,
    NodeEntry,
    copy_doc,
    doc_from_raw,
    dumps_doc,
    load_doc,
    parse_json,
    save_doc,
)
from graphkit.inputs import input_problems
from graphkit.limits import limits
from graphkit.overrides import parse_value, split_override
from graphkit.registry import Registry, registry
from graphkit.scheduler import RunResult, Scheduler
from graphkit.suggest import with_hint
from graphkit.validate import Checked, check

DEFAULT_DEVICE_CACHE_MB = 4096
DEFAULT_HOST_CACHE_MB = 8192
_SCHEDULER: Scheduler | None = None


def default_scheduler() -> Scheduler:
    """The process scheduler: its cache lives as long as the process, across graphs.

    Budgets come from GRAPHKIT_CACHE_DEVICE_MB and GRAPHKIT_CACHE_HOST_MB (4 and 8 GiB).
    """
    global _SCHEDULER
    if _SCHEDULER is None:
        device_mb = whole_number(os.environ, "GRAPHKIT_CACHE_DEVICE_MB", DEFAULT_DEVICE_CACHE_MB)
        host_mb = whole_number(os.environ, "GRAPHKIT_CACHE_HOST_MB", DEFAULT_HOST_CACHE_MB)
        _SCHEDULER = Scheduler(OutputCache(device_mb << 20, host_mb << 20))
    return _SCHEDULER


class Graph:
    """A graph document plus the folder its relative input paths are read from."""

    def __init__(self, doc: GraphDoc | None = None, base_dir: Path | None = None,
                 reg: Registry | None = None) -> None:
        self.doc = doc if doc is not None else GraphDoc()
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self.registry = reg if reg is not None else registry()
        self._checked: Checked | None = None
        self._checked_text: str | None = None

    # construction ------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, reg: Registry | None = None) -> Graph:
        """Read a graph file (or a PNG carrying a graph)."""
        path = Path(path)
        if path.suffix.lower() == ".png":
            from graphkit.pngmeta import read_graph_text

            text = read_graph_text(path)
            if len(text) > limits().max_graph_bytes:
                raise GraphError([problem("limit", f"the graph in this PNG is {len(text)} "
                                          f"characters; the limit is {limits().max_graph_bytes} "
                                          "(GRAPHKIT_LIMIT_MAX_GRAPH_BYTES)")], str(path))
            try:
                doc = doc_from_raw(parse_json(text))
            except GraphError as exc:
                exc.source = str(path)
                raise
        else:
            doc = load_doc(path, limits().max_graph_bytes)
        return cls(doc, path.parent, reg)

    @classmethod
    def from_json(cls, text: str, base_dir: Path | None = None) -> Graph:
        return cls(doc_from_raw(parse_json(text)), base_dir)

    def copy(self) -> Graph:
        return Graph(copy_doc(self.doc), self.base_dir, self.registry)

    # editing ----------------------------------------------------------------------------
    def add_node(self, node_id: str, type_id: str, params: dict[str, Any] | None = None,
                 inputs: dict[str, str] | None = None) -> None:
        if node_id in self.doc.nodes:
            raise GraphError([problem("duplicate_id", "a node with this id exists", node_id)])
        self.doc.nodes[node_id] = NodeEntry(type=type_id, params=params or {},
                                            inputs=inputs or {})

    def set_param(self, node_id: str, name: str, value: Any) -> None:
        self._entry(node_id).params[name] = value

    def connect(self, src: str, dst: str) -> None:
        """Link ``"node.port"`` (an output) to ``"node.port"`` (an input)."""
        node_id, _, port = dst.partition(".")
        self._entry(node_id).inputs[port] = src

    def apply_overrides(self, overrides: Iterable[str]) -> None:
        """Apply ``NODE.PARAM=VALUE`` settings; see ``graphkit.overrides.parse_value``."""
        for item in overrides:
            node_id, name, raw = split_override(item)
            if node_id not in self.doc.nodes:
                message = with_hint("no such node in the graph", node_id, self.doc.nodes)
                raise GraphError([problem("override", message, node_id, name)])
            spec = self.registry.get(self.doc.nodes[node_id].type)
            param = spec.params.get(name) if spec is not None else None
            schema = param.schema if param else None
            self.set_param(node_id, name, parse_value(raw, schema, node_id, name))

    def _entry(self, node_id: str) -> NodeEntry:
        try:
            return self.doc.nodes[node_id]
        except KeyError:
            raise GraphError([problem("missing_node", "no such node", node_id)]) from None

    # checking ---------------------------------------------------------------------------
    def checked(self) -> Checked:
        """Check result, reused while the document is unchanged."""
        text = self.doc.model_dump_json()
        if self._checked is None or text != self._checked_text:
            self._checked = check(self.doc, self.registry, limits())
            self._checked_text = text
        return self._checked

    def validate(self, inputs: Iterable[str | Path] = ()) -> list[Problem]:
        """Every problem with this graph (empty when it may run), input files included:
        they are looked for in the graph's folder and ``inputs``, as a run would."""
        checked = self.checked()
        return [*checked.problems, *input_problems(checked, self._sandbox(inputs))]

    def _sandbox(self, inputs: Iterable[str | Path], out: str | Path | None = None) -> Sandbox:
        return Sandbox([self.base_dir, *map(Path, inputs)], Path(out) if out is not None else None)

    # running ----------------------------------------------------------------------------
    def run(
        self,
        out: str | Path = "out",
        *,
        device: str | torch.device | None = None,
        inputs: Iterable[str | Path] = (),
        targets: Iterable[str] | None = None,
        listeners: Iterable[Listener] = (),
        control: RunControl | None = None,
        scheduler: Scheduler | None = None,
        models: str | None = None,
    ) -> RunResult:
        """Validate, then run what the output nodes need; raises GraphError on bad input
        (input files a run needs included, like any other problem, before anything runs).

        ``models`` picks the model profile for this run: ``"tiny"`` (random-weight
        stand-ins, offline) or ``"hub"`` (the real weights); by default the process's
        (``GRAPHKIT_MODELS``, else hub).
        """
        if models not in (None, "hub", "tiny"):
            raise ValueError(f"models={models!r}: use 'hub' or 'tiny' (or leave it out)")
        checked = self.checked()
        inputs = list(inputs)
        out_problem = folder_problem(Path(out))
        if out_problem:
            raise GraphError([problem("out", f"output folder {out_problem}")])
        sandbox = self._sandbox(inputs, out)
        targets = list(targets) if targets is not None else None
        problems = [*checked.problems, *input_problems(checked, sandbox, targets)]
        if problems:
            raise GraphError(problems)
        dev = device if isinstance(device, torch.device) else pick_device(device)
        extras, salts = model_profile(checked, models)
        return (scheduler or default_scheduler()).run(
            checked, device=dev, sandbox=sandbox, control=control, targets=targets,
            listeners=listeners, graph_json=self.dumps(), extras=extras, salts=salts,
        )

    # sweeping ---------------------------------------------------------------------------
    def sweep(self, axes: Mapping[str, Any] | Iterable[str], out: str | Path = "out", *,
              zip: bool = False, on: str = "local", batch: int | None = None,
              device: str | torch.device | None = None, models: str | None = None,
              **options: Any) -> list[dict[str, Any]]:
        """Run this graph over many values; return the manifest rows (see graphkit.sweep).

        ``axes`` maps ``"NODE.PARAM"`` to a list of values or a SPEC string (``"0..15"``,
        ``"a,b"``, ``"@prompts.txt"``); ``models`` as for :meth:`run`. Options: inputs,
        control, listener, scheduler, workers and ray_address (``on="ray"``).
        """
        from graphkit.sweep import run_sweep

        return run_sweep(self, axes, out, zip=zip, on=on, batch=batch, device=device,
                         models=models, **options).rows

    def start_sweep(self, axes: Mapping[str, Any] | Iterable[str], out: str | Path = "out",
                    *, zip: bool = False, on: str = "local", batch: int | None = None,
                    device: str | torch.device | None = None, listener: Any = None,
                    models: str | None = None, **options: Any) -> Any:
        """Check a sweep, then run it in a background thread: a graphkit.sweep.SweepJob."""
        from graphkit.sweep import SweepJob, prepare

        plan = prepare(self, axes, out, zip=zip, on=on, batch=batch, device=device,
                       models=models)
        return SweepJob(plan, listener, **options).start()

    # saving -----------------------------------------------------------------------------
    def dumps(self) -> str:
        """Deterministic JSON text, with each node's type version and pack filled in."""
        for entry in self.doc.nodes.values():
            spec = self.registry.get(entry.type)
            if spec is not None:
                same_major = entry.version is None or entry.version.split(".")[0] == str(spec.major)
                if same_major:
                    entry.version = spec.version
                entry.pack = spec.pack
        return dumps_doc(self.doc)

    def save(self, path: str | Path) -> None:
        """Write the graph file atomically."""
        self.dumps()
        save_doc(self.doc, Path(path))


def model_profile(checked: Checked, models: str | None
                  ) -> tuple[dict[str, Any], dict[str, str]]:
    """The run's model manager (for the profile asked for) and, for each node that loads a
    model, a cache salt naming the profile: a tiny run's outputs never serve a hub run."""
    from graphkit.requirements import is_model_param

    loaders = [nid for nid, node in checked.nodes.items()
               if any(is_model_param(name) for name in node.spec.params)]
    if not loaders and models is None:
        return {}, {}
    from graphkit.models import manager_for

    manager = manager_for(models)
    salt = f"models:{manager.profile}"
    if manager.profile == "tiny":
        salt += f":{manager.tiny_root}"
    return {"models": manager}, dict.fromkeys(loaders, salt)


def load(path: str | Path) -> Graph:
    """Load a graph file or a graphkit PNG."""
    return Graph.load(path)
