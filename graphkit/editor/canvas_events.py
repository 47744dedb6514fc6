"""Edits sent by the canvas: checked as untrusted input, then applied through ``ops``.

The browser sends ``{"client": id, "events": [{"seq": n, "op": ..., ...}], "sent": ms}``.
Anything not of that exact shape (unknown keys or ops, ids that are not node ids, numbers
that are not finite or out of range, too many items) is refused as a whole with one line;
the graph is kept. Each well-formed event is applied once: the last sequence number applied
per client is remembered and sent back, so a resent batch changes nothing twice.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphkit.editor import ops
from graphkit.editor.guard import one_line
from graphkit.errors import GraphError, problem

if TYPE_CHECKING:
    from graphkit.editor.session import Editor

CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
NODE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")  # node ids as graph files have them
PORT_REF = re.compile(rf"{NODE.pattern}\.[A-Za-z_][A-Za-z0-9_]{{0,63}}")  # "node.port"
TYPE_ID = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
MAX_EVENTS = 100
MAX_IDS = 10_000
MAX_SEQ = 2**53
COORD_LIMIT = 1e6
MAX_CLIENTS = 16

# op -> {field: kind}; kinds: node, ref, nodes, refs, coord, bool, type, positions
FIELDS: dict[str, dict[str, str]] = {
    "connect": {"src": "ref", "dst": "ref"},
    "disconnect": {"dst": "ref"},
    "move": {"positions": "positions"},
    "delete": {"nodes": "nodes", "inputs": "refs"},
    "add": {"type": "type", "x": "coord", "y": "coord", "from": "ref?", "to": "ref?"},
    "copy": {"nodes": "nodes"},
    "paste": {"x": "coord", "y": "coord", "keep_inputs": "bool"},
    "duplicate": {"nodes": "nodes"},
    "select": {"nodes": "nodes"},
    "undo": {},
    "redo": {},
    "save": {},
    "run_to": {"node": "node"},
}


class BadEditError(ValueError):
    """A canvas message that is not of the expected shape (one line)."""


@dataclass(frozen=True)
class Edit:
    """One checked edit: its sequence number, op and fields."""

    seq: int
    op: str
    args: dict[str, Any]


def _fullmatch(pattern: re.Pattern[str], value: Any, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadEditError(f"{what} is not valid: {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _coord(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadEditError(f"{what} is not a number: {_shown(value)}")
    if not math.isfinite(value) or abs(value) > COORD_LIMIT:
        raise BadEditError(f"{what} is out of range (finite, within +-{COORD_LIMIT:.0e}): "
                      f"{_shown(value)}")
    return float(value)


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadEditError(f"{what} is not a list")
    if len(value) > MAX_IDS:
        raise BadEditError(f"{what} has {len(value)} items; at most {MAX_IDS}")
    return value


def _field(kind: str, value: Any, what: str) -> Any:
    if kind == "node":
        return _fullmatch(NODE, value, what)
    if kind == "ref":
        return _fullmatch(PORT_REF, value, what)
    if kind == "nodes":
        return [_fullmatch(NODE, v, what) for v in _list(value, what)]
    if kind == "refs":
        return [_fullmatch(PORT_REF, v, what) for v in _list(value, what)]
    if kind == "coord":
        return _coord(value, what)
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadEditError(f"{what} is not true or false")
        return value
    if kind == "type":
        if not isinstance(value, str) or len(value) > 200 or not TYPE_ID.fullmatch(value):
            raise BadEditError(f"{what} is not a node type id: {_shown(value)}")
        return value
    if kind == "positions":
        if not isinstance(value, dict):
            raise BadEditError(f"{what} is not an object")
        if len(value) > MAX_IDS:
            raise BadEditError(f"{what} has {len(value)} entries; at most {MAX_IDS}")
        out = {}
        for node_id, point in value.items():
            _fullmatch(NODE, node_id, f"{what} key")
            if not isinstance(point, list) or len(point) != 2:
                raise BadEditError(f"{what}[{node_id}] is not an [x, y] pair")
            out[node_id] = (_coord(point[0], f"{what}[{node_id}] x"),
                            _coord(point[1], f"{what}[{node_id}] y"))
        return out
    raise AssertionError(kind)


def parse_event(raw: Any) -> Edit:
    """One event, checked (``BadEditError`` says what is wrong)."""
    if not isinstance(raw, dict):
        raise BadEditError("an event is not an object")
    op = raw.get("op")
    if not isinstance(op, str) or op not in FIELDS:
        raise BadEditError(f"unknown edit {_shown(op)}")
    seq = raw.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 < seq < MAX_SEQ:
        raise BadEditError(f"'{op}' has no valid sequence number")
    spec = FIELDS[op]
    extra = set(raw) - set(spec) - {"op", "seq"}
    if extra:
        names = ", ".join(sorted(repr(k) for k in extra))[:80]
        raise BadEditError(f"'{op}' has unknown fields: {names}")
    args = {}
    for name, kind in spec.items():
        optional = kind.endswith("?")
        kind = kind.rstrip("?")
        if name not in raw or (optional and raw[name] is None):
            if optional:
                continue
            raise BadEditError(f"'{op}' lacks '{name}'")
        args[name] = _field(kind, raw[name], f"'{op}' {name}")
    return Edit(seq, op, args)


def parse_payload(raw: Any) -> tuple[str, list[Edit]]:
    """The client id and the checked events of one canvas message."""
    if not isinstance(raw, dict):
        raise BadEditError("the message is not an object")
    extra = set(raw) - {"client", "events", "sent"}
    if extra:
        names = ", ".join(sorted(repr(k) for k in extra))[:80]
        raise BadEditError(f"the message has unknown fields: {names}")
    client = _fullmatch(CLIENT_ID, raw.get("client"), "the client id")
    events = raw.get("events")
    if not isinstance(events, list) or not events:
        raise BadEditError("the message carries no events")
    if len(events) > MAX_EVENTS:
        raise BadEditError(f"the message carries {len(events)} events; at most {MAX_EVENTS}")
    parsed = [parse_event(e) for e in events]
    seqs = [e.seq for e in parsed]
    if seqs != sorted(set(seqs)):
        raise BadEditError("event sequence numbers are not increasing")
    return client, parsed


# applying ---------------------------------------------------------------------------------
def _split(ref: str) -> tuple[str, str]:
    node, port = ref.split(".", 1)
    return node, port


def apply(ed: Editor, edit: Edit) -> None:
    """Apply one checked edit to the tab's editor (a GraphError says why one is refused)."""
    doc, reg, a = ed.doc, ed.reg, edit.args
    if edit.op == "connect":
        ops.connect(doc, reg, a["src"], *_split(a["dst"]))
    elif edit.op == "disconnect":
        node, port = _split(a["dst"])
        ops.input_type(doc, reg, node, port)  # a node and input that exist
        ops.disconnect(doc, node, port)
    elif edit.op == "move":
        ops.move_nodes(doc, a["positions"])
    elif edit.op == "delete":
        _delete(ed, a["nodes"], a["inputs"])
    elif edit.op == "add":
        node_id = ops.add_wired(doc, reg, a["type"], (a["x"], a["y"]), a.get("from"), a.get("to"))
        _select(ed, [node_id], focus=True)
    elif edit.op == "copy":
        ed.clipboard = ops.copy_nodes(doc, a["nodes"])
    elif edit.op == "paste":
        if ed.clipboard:
            _select(ed, ops.paste_nodes(doc, ed.clipboard, (a["x"], a["y"]), a["keep_inputs"],
                                        reg),
                    focus=True)
    elif edit.op == "duplicate":
        clip = ops.copy_nodes(doc, a["nodes"])
        _select(ed, ops.paste_nodes(doc, clip, None, keep_inputs=True, reg=reg), focus=True)
    elif edit.op == "select":
        _select(ed, [n for n in a["nodes"] if n in doc.nodes], touch=False)
    elif edit.op == "undo":
        ed.undo()
    elif edit.op == "redo":
        ed.redo()
    elif edit.op == "save":
        ed.save()
    elif edit.op == "run_to":
        if a["node"] not in doc.nodes:
            raise GraphError([problem("missing_node", "no such node", a["node"])])
        ed.run_graph([a["node"]])


def _delete(ed: Editor, nodes: list[str], inputs: list[str]) -> None:
    missing = []
    for node_id in nodes:
        if node_id in ed.doc.nodes:
            ops.remove_node(ed.doc, node_id)
        else:
            missing.append(node_id)
    for ref in inputs:
        node, port = _split(ref)
        if node in ed.doc.nodes:
            ops.disconnect(ed.doc, node, port)
    _select(ed, [n for n in ed.canvas_selection if n in ed.doc.nodes])
    if missing:
        raise GraphError([problem("missing_node", "no such node to delete", missing[0])])


def _select(ed: Editor, nodes: list[str], focus: bool = False, touch: bool = True) -> None:
    """Select ``nodes`` on the canvas; the inspector shows the last one (or keeps showing
    one of them). ``focus`` brings the last into view; ``touch`` refreshes the widgets (the
    document changed)."""
    ed.canvas_selection = list(nodes)
    if nodes:
        ed.selected = nodes[-1] if ed.selected not in nodes or focus else ed.selected
    else:
        ed.selected = None
    if focus and nodes:
        ed.focus = nodes[-1]
    if touch:
        ed.touched()


def handle(ed: Editor, raw: Any) -> None:
    """Check and apply one message from the canvas; every refusal is one line on the page."""
    try:
        client, edits = parse_payload(raw)
    except BadEditError as exc:
        ed.notify("error", f"ignored an edit from the canvas: {exc}")
        return
    last = ed.acked.get(client, 0)
    for edit in edits:
        if edit.seq <= last:
            continue  # applied already (a resent message)
        try:
            apply(ed, edit)
        except GraphError as exc:
            ed.fail(exc)
        except Exception as exc:  # noqa: BLE001 - one line; applied once, never resent
            ed.notify("error", one_line(f"the canvas edit '{edit.op}' failed: "
                                        f"{type(exc).__name__}: {exc}"))
        last = edit.seq
        ed.commit()
    ed.acked.pop(client, None)
    ed.acked[client] = last
    while len(ed.acked) > MAX_CLIENTS:
        ed.acked.pop(next(iter(ed.acked)))
