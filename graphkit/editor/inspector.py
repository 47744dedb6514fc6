"""The inspector: the selected node's params, input links, id, and its problems beside them."""

from __future__ import annotations

import json
import random
from typing import Any

import streamlit as st

from graphkit.editor import ops
from graphkit.editor.session import Editor
from graphkit.editor.widgets import WidgetPlan, coerce_number, plan_widget
from graphkit.errors import GraphError, Problem
from graphkit.registry import NodeSpec, ParamSpec

NOT_CONNECTED = "(not connected)"
SEED_MAX = 2**32 - 1


def _key(ed: Editor, node_id: str, *parts: str) -> str:
    return ":".join([str(ed.revision), node_id, *parts])


def _show_problems(problems: list[Problem]) -> None:
    for p in problems:
        st.markdown(f":red[:material/warning: {p.message}]")


def _safe(ed: Editor, action: Any, *args: Any) -> None:
    try:
        action(*args)
    except GraphError as exc:
        ed.fail(exc)


# params -----------------------------------------------------------------------------------
def _on_param(ed: Editor, node_id: str, name: str, key: str, plan: WidgetPlan) -> None:
    raw = st.session_state.get(key)
    ed.field_errors.pop((node_id, name), None)
    if plan.kind == "json":
        try:
            raw = json.loads(raw) if raw.strip() else None
        except json.JSONDecodeError as exc:
            ed.field_errors[(node_id, name)] = f"not valid JSON: {exc.msg} (column {exc.colno})"
            return
    elif plan.numeric:
        raw = coerce_number(raw, plan.numeric)
    if raw is None:
        ops.reset_param(ed.doc, node_id, name)
    else:
        ops.set_param(ed.doc, node_id, name, raw)


def _randomize(ed: Editor, node_id: str, name: str) -> None:
    ops.set_param(ed.doc, node_id, name, random.randint(0, SEED_MAX))
    ed.touched()


def _in_bounds(value: Any, plan: WidgetPlan) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    if plan.numeric == "int" and not isinstance(value, int):
        return False
    return (plan.minimum is None or value >= plan.minimum) and (
        plan.maximum is None or value <= plan.maximum)


def param_widget(ed: Editor, node_id: str, param: ParamSpec) -> None:
    """One widget for one param, writing into the document on change."""
    entry = ed.doc.nodes[node_id]
    plan = plan_widget(param.name, param.schema)
    value = entry.params.get(param.name, param.default)
    key = _key(ed, node_id, "param", param.name)
    label = param.name + (" *" if param.required else "")
    common = {"key": key, "help": plan.help or None, "on_change": _on_param,
              "args": (ed, node_id, param.name, key, plan)}
    numeric_ok = value is None or _in_bounds(value, plan)
    if plan.kind == "select":
        options = list(plan.options)
        if value not in options:
            options.insert(0, value)
        st.selectbox(label, options, index=options.index(value), **common)
    elif plan.kind == "checkbox":
        st.checkbox(label, value=bool(value), **common)
    elif plan.kind == "slider" and numeric_ok and value is not None:
        step = 1 if plan.numeric == "int" else None
        lo, hi = coerce_number(plan.minimum, plan.numeric), coerce_number(plan.maximum,
                                                                          plan.numeric)
        st.slider(label, min_value=lo, max_value=hi, value=value, step=step, **common)
    elif plan.kind in ("slider", "number", "seed"):
        bounds = numeric_ok
        kwargs: dict[str, Any] = {"step": 1 if plan.numeric == "int" else None}
        if bounds:
            kwargs["min_value"] = coerce_number(plan.minimum, plan.numeric)
            kwargs["max_value"] = coerce_number(plan.maximum, plan.numeric)
        shown = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if plan.kind == "seed":
            left, right = st.columns([4, 1], vertical_alignment="bottom")
            with left:
                st.number_input(label, value=shown, **kwargs, **common)
            right.button("", icon=":material/casino:", help="randomize the seed",
                         key=_key(ed, node_id, "randomize", param.name),
                         on_click=_randomize, args=(ed, node_id, param.name))
        else:
            st.number_input(label, value=shown, **kwargs, **common)
    elif plan.kind == "textarea":
        st.text_area(label, value="" if value is None else str(value), height=90, **common)
    elif plan.kind in ("text", "model"):
        st.text_input(label, value="" if value is None else str(value), **common)
    else:
        st.text_area(label, value="" if value is None else json.dumps(value), height=70,
                     **common)
    error = ed.field_errors.get((node_id, param.name))
    if error:
        st.markdown(f":red[:material/warning: {error}]")


# inputs -----------------------------------------------------------------------------------
def _on_link(ed: Editor, node_id: str, port: str, key: str) -> None:
    choice = st.session_state.get(key)
    if choice in (None, NOT_CONNECTED):
        ops.disconnect(ed.doc, node_id, port)
    else:
        _safe(ed, ops.connect, ed.doc, ed.reg, choice, node_id, port)


def input_widget(ed: Editor, node_id: str, spec: NodeSpec, port: str) -> None:
    """A select offering only type-compatible outputs that would not make a cycle."""
    inp = spec.inputs[port]
    current = ed.doc.nodes[node_id].inputs.get(port)
    options = [NOT_CONNECTED, *ops.compatible_sources(ed.doc, ed.reg, node_id, port)]
    if current is not None and current not in options:
        options.append(current)
    key = _key(ed, node_id, "input", port)

    def label_of(ref: str) -> str:
        if ref == NOT_CONNECTED:
            return ref
        out = ops.output_type(ed.doc, ed.reg, ref)
        return f"{ref}  ({out})" if out is not None else f"{ref}  (missing)"

    optional = " (optional)" if inp.optional else ""
    st.selectbox(f"{port}: {inp.type}{optional}", options,
                 index=options.index(current) if current else 0, format_func=label_of,
                 key=key, on_change=_on_link, args=(ed, node_id, port, key))


# node actions -----------------------------------------------------------------------------
def _rename(ed: Editor, node_id: str, key: str) -> None:
    new = (st.session_state.get(key) or "").strip()
    try:
        ops.rename_node(ed.doc, node_id, new)
    except GraphError as exc:
        ed.fail(exc)
        return
    ed.selected = new
    ed.touched()


def _duplicate(ed: Editor, node_id: str) -> None:
    ed.selected = ops.duplicate_node(ed.doc, node_id)
    ed.touched()


def _remove(ed: Editor, node_id: str) -> None:
    cut = ops.remove_node(ed.doc, node_id)
    ed.selected = next(iter(ed.doc.nodes), None)
    if cut:
        ed.notify("info", f"removed '{node_id}'; disconnected "
                  + ", ".join(f"{n}.{p}" for n, p in cut))
    ed.touched()


def _select(ed: Editor, key: str) -> None:
    ed.selected = st.session_state.get(key)


def node_picker(ed: Editor) -> None:
    """A select of every node (the canvas selects too)."""
    ids = list(ed.doc.nodes)
    if not ids:
        return
    key = f"{ed.revision}:pick:{ed.selected}"
    index = ids.index(ed.selected) if ed.selected in ids else 0
    st.selectbox("Node", ids, index=index, key=key, on_change=_select, args=(ed, key),
                 format_func=lambda n: f"{n}  ({ed.doc.nodes[n].type})")


def inspector(ed: Editor, problems: list[Problem]) -> None:
    """The selected node's editor."""
    node_picker(ed)
    node_id = ed.selected
    if node_id not in ed.doc.nodes:
        st.info("Add a node from the palette, or open a graph.")
        return
    entry = ed.doc.nodes[node_id]
    spec = ed.reg.get(entry.type)
    mine = [p for p in problems if p.node == node_id]
    st.subheader(f"{node_id}")
    st.caption(f"{entry.type}" + (f" — {spec.title}" if spec else ""))
    if spec and spec.doc:
        st.caption(spec.doc)
    _show_problems([p for p in mine if p.field is None or (spec and p.field not in spec.params
                                                                   and p.field not in spec.inputs)])
    with st.expander("Id, duplicate, remove"):
        rkey = _key(ed, node_id, "rename")
        st.text_input("Rename to", value=node_id, key=rkey, on_change=_rename,
                      args=(ed, node_id, rkey))
        left, right = st.columns(2)
        left.button("Duplicate", key=_key(ed, node_id, "dup"), on_click=_duplicate,
                    args=(ed, node_id))
        right.button("Remove", key=_key(ed, node_id, "remove"), on_click=_remove,
                     args=(ed, node_id), type="secondary")
    if spec is None:
        return
    if spec.inputs:
        st.markdown("**Inputs**")
        for port in spec.inputs:
            input_widget(ed, node_id, spec, port)
            _show_problems([p for p in mine if p.field == port])
    if spec.params:
        st.markdown("**Params**")
        for param in spec.params.values():
            param_widget(ed, node_id, param)
            _show_problems([p for p in mine if p.field == param.name])
    outs = ", ".join(f"{n}: {t}" for n, t in spec.outputs.items()) or "none"
    st.caption(f"Outputs: {outs}")
