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
from graphkit.errors import GraphError, Problem, problem
from graphkit.events import Listener
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
from graphkit.limits import limits
from graphkit.overrides import parse_value, split_override
from graphkit.registry import Registry, registry
from graphkit.scheduler import RunResult, Scheduler
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
        device_mb = int(os.environ.get("GRAPHKIT_CACHE_DEVICE_MB", DEFAULT_DEVICE_CACHE_MB))
        host_mb = int(os.environ.get("GRAPHKIT_CACHE_HOST_MB", DEFAULT_HOST_CACHE_MB))
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
                raise GraphError([problem("override", "no such node in the graph", node_id,
                                          name)])
            spec = self.registry.get(self.doc.nodes[node_id].type)
            param = spec.params.get(name) if spec is not None else None
            self.set_param(node_id, name, parse_value(raw, param.schema if param else None))

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

    def validate(self) -> list[Problem]:
        """Every problem with this graph (empty when it may run)."""
        return self.checked().problems

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
    ) -> RunResult:
        """Validate, then run what the output nodes need; raises GraphError on bad input."""
        checked = self.checked()
        if checked.problems:
            raise GraphError(checked.problems)
        dev = device if isinstance(device, torch.device) else pick_device(device)
        sandbox = Sandbox([self.base_dir, *map(Path, inputs)], Path(out))
        return (scheduler or default_scheduler()).run(
            checked, device=dev, sandbox=sandbox, control=control, targets=targets,
            listeners=listeners, graph_json=self.dumps(),
        )

    # sweeping ---------------------------------------------------------------------------
    def sweep(self, axes: Mapping[str, Any] | Iterable[str], out: str | Path = "out", *,
              zip: bool = False, on: str = "local", batch: int | None = None,
              device: str | torch.device | None = None, **options: Any) -> list[dict[str, Any]]:
        """Run this graph over many values; return the manifest rows (see graphkit.sweep).

        ``axes`` maps ``"NODE.PARAM"`` to a list of values or a SPEC string (``"0..15"``,
        ``"a,b"``, ``"@prompts.txt"``). Options: inputs, control, listener, scheduler,
        workers and ray_address (``on="ray"``).
        """
        from graphkit.sweep import run_sweep

        return run_sweep(self, axes, out, zip=zip, on=on, batch=batch, device=device,
                         **options).rows

    def start_sweep(self, axes: Mapping[str, Any] | Iterable[str], out: str | Path = "out",
                    *, zip: bool = False, on: str = "local", batch: int | None = None,
                    device: str | torch.device | None = None, listener: Any = None,
                    **options: Any) -> Any:
        """Check a sweep, then run it in a background thread: a graphkit.sweep.SweepJob."""
        from graphkit.sweep import SweepJob, prepare

        plan = prepare(self, axes, out, zip=zip, on=on, batch=batch, device=device)
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


def load(path: str | Path) -> Graph:
    """Load a graph file or a graphkit PNG."""
    return Graph.load(path)
