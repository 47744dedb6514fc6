"""Where nodes go on the canvas: a layered layout for nodes without positions, free spots.

Positions live in the graph file (``ui.positions``, ``[x, y]`` per node id). The editor
writes the layout into the document once, when a graph arrives without them, so that nothing
moves on its own afterwards.
"""

from __future__ import annotations

import math
from typing import Any

from graphkit.graph import GraphDoc, split_ref
from graphkit.registry import Registry

NODE_WIDTH = 220
COLUMN_PITCH = 290  # left edge to left edge of two layers
NODE_GAP = 36  # between nodes stacked in one layer
BAND_GAP = 70  # between two rows of layers
WRAP_AFTER = 6  # a graph deeper than this many layers wraps into rows...
ROW_LAYERS = 4  # ...of this many layers each
COORD_LIMIT = 1e6  # positions are kept within +-this


def positions(doc: GraphDoc) -> dict[str, tuple[float, float]]:
    """The valid saved positions of the document's nodes."""
    raw = doc.ui.get("positions")
    if not isinstance(raw, dict):
        return {}
    out = {}
    for node_id, pos in raw.items():
        if node_id in doc.nodes and _is_point(pos):
            out[node_id] = (float(pos[0]), float(pos[1]))  # type: ignore[index]
    return out


def _is_point(pos: Any) -> bool:
    return (isinstance(pos, list) and len(pos) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool)
                    and math.isfinite(v) and abs(v) <= COORD_LIMIT for v in pos))


def set_positions(doc: GraphDoc, where: dict[str, tuple[float, float]]) -> None:
    """Store positions (rounded to whole pixels) in ``ui.positions``."""
    raw = doc.ui.get("positions")
    table: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
    for node_id, (x, y) in where.items():
        table[node_id] = [round(x), round(y)]
    doc.ui["positions"] = table


def node_height(doc: GraphDoc, reg: Registry, node_id: str) -> float:
    """About how tall the canvas draws a node (ports, a few params)."""
    spec = reg.get(doc.nodes[node_id].type)
    rows = max(len(spec.inputs), len(spec.outputs)) if spec else 1
    params = min(len(spec.params), 3) if spec else 0
    return 66 + 22 * max(rows, 1) + (12 + 17 * params if params else 0)


def layers(doc: GraphDoc) -> dict[str, int]:
    """Each node's layer: 0 for sources, else one more than its deepest input's node."""
    depth: dict[str, int] = {}
    for start in doc.nodes:
        stack: list[tuple[str, bool]] = [(start, False)]
        on_path: set[str] = set()
        while stack:
            node_id, expanded = stack.pop()
            if node_id in depth:
                continue
            feeders = _feeders(doc, node_id)
            if expanded:
                on_path.discard(node_id)
                depth[node_id] = max((depth.get(f, 0) + 1 for f in feeders), default=0)
                continue
            on_path.add(node_id)
            stack.append((node_id, True))
            stack.extend((f, False) for f in feeders if f not in depth and f not in on_path)
    return depth


def _feeders(doc: GraphDoc, node_id: str) -> list[str]:
    out = []
    for ref in doc.nodes[node_id].inputs.values():
        parts = split_ref(ref)
        if parts is not None and parts[0] in doc.nodes and parts[0] != node_id:
            out.append(parts[0])
    return out


def layered(doc: GraphDoc, reg: Registry, only: set[str] | None = None,
            wrap_after: int = WRAP_AFTER, row_layers: int = ROW_LAYERS
            ) -> dict[str, tuple[float, float]]:
    """Positions for ``only`` (default: every node): layers left to right, sources first.

    A graph deeper than ``wrap_after`` layers wraps into rows of at most ``row_layers``
    layers (as even as can be), so a long chain reads like lines of text instead of one
    very long line.
    """
    ids = [n for n in doc.nodes if only is None or n in only]
    if not ids:
        return {}
    depth = layers(doc)
    by_layer: dict[int, list[str]] = {}
    for node_id in ids:
        by_layer.setdefault(depth[node_id], []).append(node_id)
    order = _order_within_layers(doc, by_layer)
    deepest = max(by_layer) + 1
    rows = math.ceil(deepest / row_layers) if deepest > wrap_after else 1
    per_row = math.ceil(deepest / rows)
    placed: dict[str, tuple[float, float]] = {}
    top = 0.0
    for band_start in range(0, deepest, per_row):
        band_height = 0.0
        for layer in range(band_start, min(band_start + per_row, deepest)):
            y = top
            for node_id in order.get(layer, []):
                placed[node_id] = ((layer - band_start) * COLUMN_PITCH, y)
                y += node_height(doc, reg, node_id) + NODE_GAP
            band_height = max(band_height, y - top)
        top += band_height + BAND_GAP - NODE_GAP
    return placed


def _order_within_layers(doc: GraphDoc, by_layer: dict[int, list[str]]) -> dict[int, list[str]]:
    """Nodes of each layer ordered by the mean rank of their feeders (fewer crossings)."""
    rank: dict[str, float] = {}
    order: dict[int, list[str]] = {}
    for layer in sorted(by_layer):
        members = by_layer[layer]

        def centre(node_id: str, members: list[str] = members) -> tuple[float, int]:
            feeders = [rank[f] for f in _feeders(doc, node_id) if f in rank]
            mean = sum(feeders) / len(feeders) if feeders else float(members.index(node_id))
            return mean, members.index(node_id)

        order[layer] = sorted(members, key=centre)
        for i, node_id in enumerate(order[layer]):
            rank[node_id] = float(i)
    return order


def place_missing(doc: GraphDoc, reg: Registry) -> list[str]:
    """Give every node without a saved position one; returns the ids placed.

    All missing: the layered layout. Some missing: laid out the same way below the others.
    """
    known = positions(doc)
    missing = {n for n in doc.nodes if n not in known}
    if not missing:
        return []
    where = layered(doc, reg, missing)
    if known:
        below = max(y + node_height(doc, reg, n) for n, (_x, y) in known.items()) + BAND_GAP
        left = min(x for x, _y in known.values())
        where = {n: (x + left, y + below) for n, (x, y) in where.items()}
    set_positions(doc, where)
    return sorted(missing)


def free_spot(doc: GraphDoc, reg: Registry, near: tuple[float, float],
              height: float = 120.0) -> tuple[float, float]:
    """``near``, or the first place below it where a node of ``height`` overlaps none."""
    boxes = [(x, y, node_height(doc, reg, n)) for n, (x, y) in positions(doc).items()]
    x, y = near
    for _ in range(200):
        clash = [b for b in boxes if x < b[0] + NODE_WIDTH + 20 and b[0] < x + NODE_WIDTH + 20
                 and y < b[1] + b[2] + 20 and b[1] < y + height + 20]
        if not clash:
            break
        y = max(b[1] + b[2] for b in clash) + NODE_GAP
    return _clamp(x), _clamp(y)


def beside(doc: GraphDoc, reg: Registry, node_id: str | None) -> tuple[float, float]:
    """A free spot right of ``node_id`` (or right of the whole graph when there is none)."""
    known = positions(doc)
    if node_id in known:
        x, y = known[node_id]  # type: ignore[index]
        return free_spot(doc, reg, (x + COLUMN_PITCH, y))
    if not known:
        return 0.0, 0.0
    right = max(x for x, _y in known.values()) + COLUMN_PITCH
    top = min(y for _x, y in known.values())
    return free_spot(doc, reg, (right, top))


def _clamp(v: float) -> float:
    return max(-COORD_LIMIT, min(COORD_LIMIT, v))
