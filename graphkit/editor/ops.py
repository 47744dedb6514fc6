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
    own_output_names(doc, reg, [node_id])
    return node_id


def own_output_names(doc: GraphDoc, reg: Registry, node_ids: list[str]) -> None:
    """Give each of ``node_ids`` output file names no other node writes (``name`` ->
    ``name_2``...), so an added, duplicated or pasted save node never overwrites another."""
    def taken_by_others(node_id: str) -> set[str]:
        names = set()
        for other_id, entry in doc.nodes.items():
            spec = reg.get(entry.type)
            if other_id == node_id or spec is None:
                continue
            for name in spec.output_params:
                value = entry.params.get(name, spec.params[name].default)
                if isinstance(value, str):
                    names.add(value.casefold())
        return names

    for node_id in node_ids:
        entry = doc.nodes[node_id]
        spec = reg.get(entry.type)
        for name in spec.output_params if spec is not None else ():
            value = entry.params.get(name, spec.params[name].default)  # type: ignore[union-attr]
            taken = taken_by_others(node_id)
            if not isinstance(value, str) or value.casefold() not in taken:
                continue
            stem, n = value, 2
            match = re.fullmatch(r"(.*?)_([0-9]+)", value, re.ASCII)
            if match:
                stem, n = match.group(1), int(match.group(2)) + 1
            while f"{stem}_{n}".casefold() in taken:
                n += 1
            entry.params[name] = f"{stem}_{n}"


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


def duplicate_node(doc: GraphDoc, node_id: str, new_id: str | None = None,
                   reg: Registry | None = None) -> str:
    """A copy of a node (type, params and input links; nothing reads from it yet); with
    ``reg``, output file names are made its own (see ``own_output_names``)."""
    entry = _entry(doc, node_id)
    new_id = new_id or unique_id(doc, node_id)
    _check_new_id(doc, new_id)
    doc.nodes[new_id] = NodeEntry.model_validate(copy.deepcopy(entry.model_dump()))
    positions = doc.ui.get("positions")
    if isinstance(positions, dict) and isinstance(positions.get(node_id), list):
        x, y, *_ = positions[node_id] + [0, 0]  # type: ignore[operator]
        positions[new_id] = [x + 40, y + 80]  # type: ignore[operator]
    if reg is not None:
        own_output_names(doc, reg, [new_id])
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
    if not isinstance(node_id, str) or not is_node_id(node_id):
        _refuse("node_id", "node ids are letters, digits, '_' or '-', starting with a letter "
                "or '_' (at most 64)", node_id, "id")
    if node_id in doc.nodes:
        _refuse("duplicate_id", "a node with this id exists", node_id, "id")


def _drop_ui_key(doc: GraphDoc, node_id: str) -> None:
    for value in doc.ui.values():
        if isinstance(value, dict):
            value.pop(node_id, None)


# canvas edits ------------------------------------------------------------------------------
def move_nodes(doc: GraphDoc, where: dict[str, tuple[float, float]]) -> None:
    """Store new positions for existing nodes (``ui.positions``); unknown ids are refused."""
    from graphkit.editor.layout import set_positions

    for node_id in where:
        _entry(doc, node_id)
    set_positions(doc, where)


def first_input_for(reg: Registry, type_id: str, given: PortType) -> str | None:
    """The first input of a node type that a value of type ``given`` may feed."""
    spec = reg.get(type_id)
    if spec is None:
        return None
    return next((n for n, i in spec.inputs.items() if can_connect(given, i.type)), None)


def first_output_for(reg: Registry, type_id: str, wanted: PortType) -> str | None:
    """The first output of a node type that may feed an input of type ``wanted``."""
    spec = reg.get(type_id)
    if spec is None:
        return None
    return next((n for n, t in spec.outputs.items() if can_connect(t, wanted)), None)


def add_wired(doc: GraphDoc, reg: Registry, type_id: str, at: tuple[float, float],
              from_ref: str | None = None, to_ref: str | None = None) -> str:
    """Add a node at ``at``, linked from the output ``from_ref`` into its first input that
    takes it, or from its first fitting output into the input ``to_ref``; returns its id.

    Nothing changes when the node cannot be linked as asked.
    """
    from graphkit.editor.layout import set_positions

    before = copy_doc_state(doc)
    node_id = add_node(doc, reg, type_id)
    try:
        if from_ref is not None:
            given = output_type(doc, reg, from_ref)
            port = first_input_for(reg, type_id, given) if given is not None else None
            if port is None:
                _refuse("type_mismatch", f"'{type_id}' has no input that takes '{from_ref}'",
                        node_id)
            connect(doc, reg, from_ref, node_id, port)  # type: ignore[arg-type]
        if to_ref is not None:
            parts = split_ref(to_ref)
            if parts is None:
                _refuse("missing_port", f"'{to_ref}' is not a node.port reference", node_id)
            wanted = input_type(doc, reg, *parts)  # type: ignore[misc]
            out = first_output_for(reg, type_id, wanted)
            if out is None:
                _refuse("type_mismatch", f"'{type_id}' has no output that '{to_ref}' takes",
                        node_id)
            connect(doc, reg, f"{node_id}.{out}", *parts)  # type: ignore[misc]
    except GraphError:
        restore_doc_state(doc, before)
        raise
    set_positions(doc, {node_id: at})
    return node_id


def copy_doc_state(doc: GraphDoc) -> dict[str, Any]:
    """A deep copy of the document's content (see ``restore_doc_state``)."""
    return copy.deepcopy(doc.model_dump())


def restore_doc_state(doc: GraphDoc, state: dict[str, Any]) -> None:
    """Put back what ``copy_doc_state`` copied (the same object stays in use)."""
    back = GraphDoc.model_validate(state)
    doc.name, doc.nodes, doc.ui = back.name, back.nodes, back.ui


def copy_nodes(doc: GraphDoc, node_ids: list[str]) -> list[dict[str, Any]]:
    """Clipboard entries for nodes: id, entry and position (independent of ``doc``)."""
    from graphkit.editor.layout import positions

    where = positions(doc)
    out = []
    for node_id in node_ids:
        entry = _entry(doc, node_id)
        out.append({"id": node_id, "entry": copy.deepcopy(entry.model_dump()),
                    "pos": list(where[node_id]) if node_id in where else None})
    return out


def paste_nodes(doc: GraphDoc, clip: list[dict[str, Any]], at: tuple[float, float] | None,
                keep_inputs: bool = False, reg: Registry | None = None) -> list[str]:
    """Add copies of clipboard entries with new ids; returns the new ids.

    Links among the copies point to the copies. Links from nodes outside the copied set are
    kept when ``keep_inputs`` (and the source still exists), else dropped. The copies keep
    their arrangement, their top left corner at ``at`` (or 40 px right and down of where
    the originals were). With ``reg``, output file names are made the copies' own.
    """
    from graphkit.editor.layout import set_positions

    new_ids: dict[str, str] = {}
    for item in clip:
        new_ids[item["id"]] = unique_id_among(doc, item["id"], set(new_ids.values()))
    known = [tuple(item["pos"]) for item in clip if item.get("pos")]
    left = min((p[0] for p in known), default=0.0)
    top = min((p[1] for p in known), default=0.0)
    dx, dy = (at[0] - left, at[1] - top) if at is not None else (40.0, 40.0)
    where: dict[str, tuple[float, float]] = {}
    for i, item in enumerate(clip):
        entry = NodeEntry.model_validate(copy.deepcopy(item["entry"]))
        inputs = {}
        for port, ref in entry.inputs.items():
            parts = split_ref(ref)
            if parts is not None and parts[0] in new_ids:
                inputs[port] = f"{new_ids[parts[0]]}.{parts[1]}"
            elif keep_inputs and parts is not None and parts[0] in doc.nodes:
                inputs[port] = ref
        entry.inputs = inputs
        node_id = new_ids[item["id"]]
        doc.nodes[node_id] = entry
        pos = item.get("pos")
        where[node_id] = ((pos[0] + dx, pos[1] + dy) if pos
                          else (left + dx + 30 * i, top + dy + 30 * i))
    set_positions(doc, where)
    if reg is not None:
        own_output_names(doc, reg, list(new_ids.values()))
    return list(new_ids.values())


def unique_id_among(doc: GraphDoc, base: str, taken: set[str]) -> str:
    """``unique_id`` that also avoids ``taken`` (ids handed out but not added yet)."""
    probe = GraphDoc(nodes={**doc.nodes, **{t: NodeEntry(type="x.taken") for t in taken}})
    return unique_id(probe, base)

