"""The graph canvas: nodes coloured by category, typed edge labels, invalid nodes marked."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from graphkit.graph import GraphDoc, split_ref
from graphkit.registry import Registry

CATEGORY_COLOURS = {
    "text": "#f7d794",
    "image": "#9ad0f5",
    "mask": "#c7b8ea",
    "generate": "#a8e6a1",
    "condition": "#f5b7b1",
    "segment": "#f8c291",
    "upscale": "#82ccdd",
}
INVALID_BORDER = "#d62728"
SELECTED_BORDER = "#1f2937"
X_GAP, Y_GAP = 230, 110


def category_colour(category: str) -> str:
    """A fixed colour per category (unknown ones get a stable pastel)."""
    if category in CATEGORY_COLOURS:
        return CATEGORY_COLOURS[category]
    hue = int(hashlib.md5(category.encode()).hexdigest()[:2], 16)
    return f"hsl({hue * 360 // 256}, 60%, 80%)"


@dataclass
class CanvasNode:
    id: str
    label: str
    title: str
    colour: str
    border: str
    invalid: bool
    x: float
    y: float


@dataclass
class CanvasEdge:
    source: str
    target: str
    label: str


def layout(doc: GraphDoc) -> dict[str, tuple[float, float]]:
    """Saved positions (``ui.positions``), others placed in columns by depth."""
    saved = doc.ui.get("positions") if isinstance(doc.ui.get("positions"), dict) else {}
    depth: dict[str, int] = {}

    def depth_of(nid: str, trail: frozenset[str] = frozenset()) -> int:
        if nid in depth:
            return depth[nid]
        if nid in trail or nid not in doc.nodes:
            return 0
        srcs = [split_ref(r) for r in doc.nodes[nid].inputs.values()]
        d = max([depth_of(p[0], trail | {nid}) + 1 for p in srcs if p] or [0])
        depth[nid] = d
        return d

    placed: dict[str, tuple[float, float]] = {}
    rows: dict[int, int] = {}
    below = 0.0
    for nid, pos in (saved or {}).items():  # type: ignore[union-attr]
        if nid in doc.nodes and isinstance(pos, list) and len(pos) >= 2:
            placed[nid] = (float(pos[0]), float(pos[1]))
            below = max(below, float(pos[1]) + Y_GAP)
    start = below if placed else 0.0
    for nid in doc.nodes:
        if nid in placed:
            continue
        d = depth_of(nid)
        row = rows.get(d, 0)
        rows[d] = row + 1
        placed[nid] = (d * X_GAP, start + row * Y_GAP)
    return placed


def build(doc: GraphDoc, reg: Registry, invalid: set[str], selected: str | None,
          status: dict[str, str] | None = None) -> tuple[list[CanvasNode], list[CanvasEdge]]:
    """Canvas nodes and edges for a document (pure data; rendering is ``render``)."""
    status = status or {}
    where = layout(doc)
    nodes = []
    for nid, entry in doc.nodes.items():
        spec = reg.get(entry.type)
        colour = category_colour(spec.category) if spec else "#dddddd"
        bad = nid in invalid
        mark = " ⚠" if bad else ""
        state = f"\n[{status[nid]}]" if nid in status else ""
        title = f"{nid}: {entry.type}" + (" (has problems)" if bad else "")
        border = INVALID_BORDER if bad else (SELECTED_BORDER if nid == selected else colour)
        x, y = where[nid]
        nodes.append(CanvasNode(nid, f"{nid}{mark}\n{entry.type}{state}", title, colour,
                                border, bad, x, y))
    edges = []
    for nid, entry in doc.nodes.items():
        for port, ref in entry.inputs.items():
            parts = split_ref(ref)
            if parts is None or parts[0] not in doc.nodes:
                continue
            src_spec = reg.get(doc.nodes[parts[0]].type)
            out = src_spec.outputs.get(parts[1]) if src_spec else None
            type_name = out.name if out is not None else "?"
            edges.append(CanvasEdge(parts[0], nid, f"{parts[1]} → {port}\n{type_name}"))
    return nodes, edges


def render(nodes: list[CanvasNode], edges: list[CanvasEdge], selected: str | None,
           height: int = 520, width: int = 900, key: str = "canvas") -> Any:
    """Draw with streamlit-agraph; returns the id of the node last clicked (or None)."""
    import streamlit_agraph
    from streamlit_agraph import Config, Edge, Node

    vis_nodes = [
        Node(id=n.id, label=n.label, title=n.title, shape="box", x=n.x, y=n.y,
             color={"background": n.colour, "border": n.border,
                    "highlight": {"background": n.colour, "border": SELECTED_BORDER}},
             borderWidth=4 if (n.invalid or n.id == selected) else 1,
             font={"face": "monospace", "size": 14, "multi": False},
             margin=10)
        for n in nodes
    ]
    vis_edges = [
        Edge(source=e.source, target=e.target, label=e.label, color="#888888",
             font={"size": 11, "align": "middle", "background": "#ffffff"},
             smooth={"type": "cubicBezier", "forceDirection": "horizontal"})
        for e in edges
    ]
    config = Config(height=height, width=width, directed=True, physics=False,
                    hierarchical=False, interaction={"hover": True, "dragNodes": True})
    del config.groups  # vis-network rejects groups: null
    config.width = "100%"  # follow the column rather than a fixed pixel width
    data = {"nodes": [n.to_dict() for n in vis_nodes], "edges": [e.to_dict() for e in vis_edges]}
    # The component itself, with a key: one iframe that redraws in place as the graph
    # changes (``agraph()`` has no key, so every change would load a new iframe).
    return streamlit_agraph._agraph(data=json.dumps(data), config=json.dumps(config.__dict__),
                                    key=key, default=None)
