"""Editing operations on a graph document: plain functions, no UI.

Each function changes ``doc`` in place and raises ``GraphError`` (with one problem that
names the node and field) when the edit is refused, leaving ``doc`` as it was.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from graphkit.errors import GraphError, problem
from graphkit.graph import GraphDoc, NodeEntry, is_node_id, split_ref
from graphkit.registry import Registry
from graphkit.types import PortType, can_connect

_NOT_ID_CHAR = re.compile(r"[^A-Za-z0-9_\-]+")


def _refuse(code: str, message: str, node: str | None = None, field: str | None = None) -> None:
    raise GraphError([problem(code, message, node, field)])


def _entry(doc: GraphDoc, node_id: str) -> NodeEntry:
    entry = doc.nodes.get(node_id)
    if entry is None:
        _refuse("missing_node", "no such node", node_id)
    return entry  # type: ignore[return-value]


def unique_id(doc: GraphDoc, base: str) -> str:
    """A valid node id not used in ``doc``, derived from ``base`` (a type id or an old id)."""
    stem = base.rsplit(".", 1)[-1] if "." in base else base
    stem = _NOT_ID_CHAR.sub("_", stem).strip("_-") or "node"
    if not re.match(r"[A-Za-z_]", stem, re.ASCII):
        stem = f"n_{stem}"
    stem = stem[:56]
    match = re.fullmatch(r"(.*?)_([0-9]+)", stem, re.ASCII)
    root, n = (match.group(1), int(match.group(2))) if match else (stem, 1)
    candidate = stem
    while candidate in doc.nodes:
        n += 1
        candidate = f"{root}_{n}"
    return candidate


def add_node(doc: GraphDoc, reg: Registry, type_id: str, node_id: str | None = None,
             params: dict[str, Any] | None = None) -> str:
    """Add a node of a registered type (params left at their defaults); returns its id."""
    if reg.get(type_id) is None:
        _refuse("unknown_type", f"unknown node type '{type_id}'", node_id, "type")
    node_id = node_id or unique_id(doc, type_id)
    _check_new_id(doc, node_id)
    doc.nodes[node_id] = NodeEntry(type=type_id, params=dict(params or {}))
    return node_id


def remove_node(doc: GraphDoc, node_id: str) -> list[tuple[str, str]]:
    """Remove a node and every link out of it; returns the (node, port) inputs disconnected."""
    _entry(doc, node_id)
    del doc.nodes[node_id]
    cut = []
    for other_id, entry in doc.nodes.items():
        for port, ref in list(entry.inputs.items()):
            parts = split_ref(ref)
            if parts is not None and parts[0] == node_id:
                del entry.inputs[port]
                cut.append((other_id, port))
    _drop_ui_key(doc, node_id)
    return cut


def duplicate_node(doc: GraphDoc, node_id: str, new_id: str | None = None) -> str:
    """A copy of a node (type, params and input links; nothing reads from it yet)."""
    entry = _entry(doc, node_id)
    new_id = new_id or unique_id(doc, node_id)
    _check_new_id(doc, new_id)
    doc.nodes[new_id] = NodeEntry.model_validate(copy.deepcopy(entry.model_dump()))
    positions = doc.ui.get("positions")
    if isinstance(positions, dict) and isinstance(positions.get(node_id), list):
        x, y, *_ = positions[node_id] + [0, 0]  # type: ignore[operator]
        positions[new_id] = [x + 40, y + 80]  # type: ignore[operator]
    return new_id


def rename_node(doc: GraphDoc, old: str, new: str) -> None:
    """Give a node a new id, keeping its place in the order and every link to it."""
    _entry(doc, old)
    if new == old:
        return
    _check_new_id(doc, new)
    doc.nodes = {(new if k == old else k): v for k, v in doc.nodes.items()}
    for entry in doc.nodes.values():
        for port, ref in entry.inputs.items():
            parts = split_ref(ref)
            if parts is not None and parts[0] == old:
                entry.inputs[port] = f"{new}.{parts[1]}"
    for value in doc.ui.values():
        if isinstance(value, dict) and old in value:
            value[new] = value.pop(old)


def set_param(doc: GraphDoc, node_id: str, name: str, value: Any) -> None:
    """Set one param (validation happens in ``check``, so problems show beside the field)."""
    _entry(doc, node_id).params[name] = value


def reset_param(doc: GraphDoc, node_id: str, name: str) -> None:
    """Drop a param so its default applies."""
    _entry(doc, node_id).params.pop(name, None)


def input_type(doc: GraphDoc, reg: Registry, node_id: str, port: str) -> PortType:
    """The declared type of an input port."""
    spec = reg.get(_entry(doc, node_id).type)
    if spec is None or port not in spec.inputs:
        _refuse("unknown_input", "no such input port", node_id, port)
    return spec.inputs[port].type  # type: ignore[union-attr]


def output_type(doc: GraphDoc, reg: Registry, ref: str) -> PortType | None:
    """The type of the output ``node.port`` names, or None when there is no such output."""
    parts = split_ref(ref)
    if parts is None or parts[0] not in doc.nodes:
        return None
    spec = reg.get(doc.nodes[parts[0]].type)
    return spec.outputs.get(parts[1]) if spec is not None else None


def upstream(doc: GraphDoc, node_id: str) -> set[str]:
    """Every node ``node_id`` reads from, directly or not (itself excluded)."""
    seen: set[str] = set()
    stack = [node_id]
    while stack:
        entry = doc.nodes.get(stack.pop())
        if entry is None:
            continue
        for ref in entry.inputs.values():
            parts = split_ref(ref)
            if parts is not None and parts[0] not in seen:
                seen.add(parts[0])
                stack.append(parts[0])
    seen.discard(node_id)
    return seen


def downstream(doc: GraphDoc, node_id: str) -> set[str]:
    """Every node that reads ``node_id``, directly or not (itself excluded)."""
    readers: dict[str, set[str]] = {}
    for nid, entry in doc.nodes.items():
        for ref in entry.inputs.values():
            parts = split_ref(ref)
            if parts is not None:
                readers.setdefault(parts[0], set()).add(nid)
    seen: set[str] = set()
    stack = [node_id]
    while stack:
        for reader in readers.get(stack.pop(), ()):
            if reader not in seen:
                seen.add(reader)
                stack.append(reader)
    seen.discard(node_id)
    return seen


def compatible_sources(doc: GraphDoc, reg: Registry, node_id: str, port: str) -> list[str]:
    """Outputs (``node.port``) of other nodes that may feed this input without a cycle."""
    wanted = input_type(doc, reg, node_id, port)
    barred = downstream(doc, node_id) | {node_id}
    refs = []
    for src_id, entry in doc.nodes.items():
        spec = reg.get(entry.type)
        if src_id in barred or spec is None:
            continue
        refs.extend(f"{src_id}.{out}" for out, t in spec.outputs.items() if can_connect(t, wanted))
    return refs


def connect(doc: GraphDoc, reg: Registry, src: str, node_id: str, port: str) -> None:
    """Link the output ``src`` (``node.port``) into ``node_id``'s input ``port``."""
    wanted = input_type(doc, reg, node_id, port)
    given = output_type(doc, reg, src)
    if given is None:
        _refuse("missing_port", f"'{src}' is not an output of a node in this graph", node_id, port)
    if not can_connect(given, wanted):  # type: ignore[arg-type]
        _refuse("type_mismatch", f"'{src}' gives {given} but this input takes {wanted}",
                node_id, port)
    src_id = src.split(".", 1)[0]
    if src_id == node_id or src_id in downstream(doc, node_id):
        _refuse("cycle", f"linking '{src}' here would make a cycle", node_id, port)
    doc.nodes[node_id].inputs[port] = src


def disconnect(doc: GraphDoc, node_id: str, port: str) -> None:
    """Remove the link into an input (no-op when it is not connected)."""
    _entry(doc, node_id).inputs.pop(port, None)


def _check_new_id(doc: GraphDoc, node_id: str) -> None:
    if not is_node_id(node_id):
        _refuse("node_id", "node ids are letters, digits, '_' or '-', starting with a letter "
                "or '_' (at most 64)", node_id, "id")
    if node_id in doc.nodes:
        _refuse("duplicate_id", "a node with this id exists", node_id, "id")


def _drop_ui_key(doc: GraphDoc, node_id: str) -> None:
    for value in doc.ui.values():
        if isinstance(value, dict):
            value.pop(node_id, None)
