"""The graph canvas: the view data Python sends the browser, and the component that draws it.

The canvas (graphkit/editor/frontend, React Flow) draws what ``canvas_data`` describes and
reports edits as small events (see ``canvas_events``). Everything that decides validity is
computed here from graphkit: which output types may feed which input types comes from
``graphkit.types.can_connect``, once per registry, and travels as a table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphkit.editor.layout import positions
from graphkit.editor.runner import NodeStatus, status_words
from graphkit.errors import Problem
from graphkit.graph import GraphDoc, split_ref
from graphkit.registry import NodeSpec, Registry
from graphkit.types import PortType, can_connect

COMPONENT_NAME = "graphkit.canvas"
CATEGORY_COLOURS = {
    "text": "#f9e3a3",
    "image": "#c4e1fb",
    "mask": "#ddd2f6",
    "generate": "#c8efc2",
    "condition": "#f8d0cc",
    "segment": "#fbd9b8",
    "upscale": "#bfe5ee",
}
TYPE_COLOURS = {
    "Prompt": "#d4a72c",
    "Image": "#2f81f7",
    "Mask": "#8957e5",
    "Latent": "#db61a2",
    "ImageEmbeds": "#e16f24",
    "SavedFiles": "#6e7781",
    "Int": "#1a7f37",
    "Float": "#2da44e",
    "Text": "#bf8700",
    "Bool": "#57606a",
}
UNKNOWN_COLOUR = "#d0d7de"
MIN_READABLE_ZOOM = 0.75  # node titles are 16 px: 12 px on screen at this zoom
KEY_PARAMS = 3
PARAM_TEXT = 28


def _hue_colour(name: str, lightness: int) -> str:
    hue = int(hashlib.sha1(name.encode()).hexdigest()[:4], 16) % 360
    return f"hsl({hue}, 55%, {lightness}%)"


def category_colour(category: str) -> str:
    """A fixed header colour per node category (other categories get a stable pastel)."""
    return CATEGORY_COLOURS.get(category) or _hue_colour(category, 86)


def type_colour(port_type: PortType) -> str:
    """A fixed colour per port value class (Image, Mask, Latent...)."""
    base = port_type.name.split("[", 1)[0]
    return TYPE_COLOURS.get(base) or _hue_colour(base, 45)


@dataclass
class TypeTables:
    """Per registry: port colours, which output types feed which input types, the catalog."""

    accepts: dict[str, list[str]] = field(default_factory=dict)
    colours: dict[str, str] = field(default_factory=dict)
    catalog: list[dict[str, Any]] = field(default_factory=list)


_TABLES: dict[tuple[int, tuple[str, ...]], TypeTables] = {}


def type_tables(reg: Registry) -> TypeTables:
    """The tables for ``reg`` (computed once per registry and set of node types)."""
    key = (id(reg), tuple(sorted(reg.specs)))
    if key not in _TABLES:
        if len(_TABLES) > 8:
            _TABLES.clear()
        _TABLES[key] = _tables(reg)
    return _TABLES[key]


def _tables(reg: Registry) -> TypeTables:
    outs: dict[str, PortType] = {}
    ins: dict[str, PortType] = {}
    for spec in reg.specs.values():
        outs.update({t.name: t for t in spec.outputs.values()})
        ins.update({i.type.name: i.type for i in spec.inputs.values()})
    tables = TypeTables()
    for name, out in sorted(outs.items()):
        tables.accepts[name] = sorted(n for n, inp in ins.items() if can_connect(out, inp))
    for name, port_type in {**ins, **outs}.items():
        tables.colours[name] = type_colour(port_type)
    for type_id in sorted(reg.specs):
        spec = reg.specs[type_id]
        tables.catalog.append({
            "type": type_id,
            "title": spec.title,
            "category": spec.category,
            "doc": (spec.doc.splitlines() or [""])[0][:200],
            "inputs": [[n, i.type.name] for n, i in spec.inputs.items()],
            "outputs": [[n, t.name] for n, t in spec.outputs.items()],
        })
    return tables


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(str(text).split())
    return text if len(text) <= PARAM_TEXT else text[: PARAM_TEXT - 1] + "…"


def key_params(params: dict[str, Any], spec: NodeSpec | None) -> list[list[str]]:
    """A few params to show on the node: those set in the file first, then defaults."""
    if spec is None:
        return [[k, _short(v)] for k, v in list(params.items())[:KEY_PARAMS]]
    chosen = [n for n in spec.params if n in params]
    chosen += [n for n, p in spec.params.items() if n not in params and not p.required
               and p.default is not None and n != "model"]
    return [[n, _short(params.get(n, spec.params[n].default))] for n in chosen[:KEY_PARAMS]]


def status_view(status: NodeStatus) -> dict[str, Any]:
    return {"state": status.state, "step": status.step, "total": status.total,
            "text": status_words(status)}


def _problem_text(p: Problem) -> str:
    return f"{p.field}: {p.message}" if p.field else p.message


def node_views(doc: GraphDoc, reg: Registry, problems: list[Problem],
               statuses: dict[str, NodeStatus]) -> list[dict[str, Any]]:
    """One view per node: title, ports with their types, key params, problems, run state."""
    where = positions(doc)
    by_node: dict[str, list[str]] = {}
    for p in problems:
        if p.node is not None:
            by_node.setdefault(p.node, []).append(_problem_text(p))
    views = []
    for node_id, entry in doc.nodes.items():
        spec = reg.get(entry.type)
        x, y = where.get(node_id, (0.0, 0.0))
        inputs = ([{"name": n, "type": i.type.name, "optional": i.optional,
                    "connected": n in entry.inputs} for n, i in spec.inputs.items()]
                  if spec else [])
        outputs = [{"name": n, "type": t.name} for n, t in spec.outputs.items()] if spec else []
        status = statuses.get(node_id)
        views.append({
            "id": node_id,
            "type": entry.type,
            "title": spec.title if spec else f"unknown type {entry.type}",
            "colour": category_colour(spec.category) if spec else UNKNOWN_COLOUR,
            "x": x,
            "y": y,
            "inputs": inputs,
            "outputs": outputs,
            "params": key_params(entry.params, spec),
            "problems": by_node.get(node_id, []),
            "status": status_view(status) if status else None,
        })
    return views


def edge_views(doc: GraphDoc, reg: Registry) -> list[dict[str, str]]:
    """One view per link whose two ends exist."""
    edges = []
    for node_id, entry in doc.nodes.items():
        spec = reg.get(entry.type)
        for port, ref in entry.inputs.items():
            parts = split_ref(ref)
            if (parts is None or parts[0] not in doc.nodes or spec is None
                    or port not in spec.inputs):
                continue
            src = reg.get(doc.nodes[parts[0]].type)
            out = src.outputs.get(parts[1]) if src else None
            if out is None:
                continue
            edges.append({"source": parts[0], "sourcePort": parts[1], "target": node_id,
                          "targetPort": port, "type": out.name})
    return edges


@dataclass
class CanvasState:
    """What the canvas shows besides the graph itself."""

    rev: int = 0
    graph: int = 0
    view_key: str = ""
    acked: dict[str, int] = field(default_factory=dict)
    selected: list[str] = field(default_factory=list)
    focus: str | None = None
    running: bool = False
    clipboard: int = 0


def canvas_data(doc: GraphDoc, reg: Registry, problems: list[Problem],
                statuses: dict[str, NodeStatus], state: CanvasState) -> dict[str, Any]:
    """Everything the canvas draws, as JSON-ready data."""
    tables = type_tables(reg)
    return {
        "rev": state.rev,
        "graph": state.graph,
        "viewKey": state.view_key,
        "acked": dict(state.acked),
        "nodes": node_views(doc, reg, problems, statuses),
        "edges": edge_views(doc, reg),
        "accepts": tables.accepts,
        "colours": tables.colours,
        "catalog": tables.catalog,
        "selected": [n for n in state.selected if n in doc.nodes],
        "focus": state.focus if state.focus in doc.nodes else None,
        "running": state.running,
        "clipboard": state.clipboard,
        "minZoom": MIN_READABLE_ZOOM,
    }


# the component --------------------------------------------------------------------------
_COMPONENT: Any = None


def _component() -> Any:
    """The registered component (registered on first use, inside a script run)."""
    global _COMPONENT
    if _COMPONENT is None:
        import streamlit as st

        _COMPONENT = st.components.v2.component(
            COMPONENT_NAME, js="canvas-*.js", css="canvas-*.css", isolate_styles=False)
    return _COMPONENT


def show(data: dict[str, Any], key: str, on_edit: Callable[[], None]) -> None:
    """Draw the canvas; ``on_edit`` runs (before the next script run) when it sends edits."""
    _component()(key=key, data=data, on_edit_change=on_edit, width="stretch", height="content")


def sent_edit(key: str) -> Any:
    """The edit payload the canvas with ``key`` sent for this run (None when none)."""
    import streamlit as st

    value = st.session_state.get(key)
    getter = getattr(value, "get", None)
    return getter("edit") if callable(getter) else None
