"""The inspector: the selected node's params, input links, id, and its problems beside them."""

from __future__ import annotations

import json
import random
from typing import Any

import streamlit as st

from graphkit.editor import inputs, jobs, ops
from graphkit.editor.guard import callback
from graphkit.editor.session import Editor
from graphkit.editor.text import md_text
from graphkit.editor.widgets import WidgetPlan, coerce_number, plan_widget
from graphkit.errors import Problem
from graphkit.registry import NodeSpec, ParamSpec

NOT_CONNECTED = "(not connected)"
SEED_MAX = 2**32 - 1


def _key(ed: Editor, node_id: str, *parts: str) -> str:
    return ":".join([str(ed.revision), node_id, *parts])


def _show_problems(problems: list[Problem]) -> None:
    for p in problems:
        st.markdown(f":red[:material/warning: {md_text(p.message)}]")


# params -----------------------------------------------------------------------------------
@callback
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


@callback
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
        st.markdown(f":red[:material/warning: {md_text(error)}]")
    spec = ed.reg.get(entry.type)
    if spec is not None and param.name in spec.file_params:
        image_picker(ed, node_id, param.name)


# input images -----------------------------------------------------------------------------
@callback
def _pick_image(ed: Editor, node_id: str, name: str, key: str) -> None:
    choice = st.session_state.get(key)
    if choice:
        ops.set_param(ed.doc, node_id, name, choice)
        ed.touched()


@callback
def _upload_image(ed: Editor, node_id: str, name: str, key: str) -> None:
    upload = st.session_state.get(key)
    if upload is None:
        return
    rel = inputs.save_upload(ed.workspace, upload.name, upload.getvalue())
    ops.set_param(ed.doc, node_id, name, rel)
    ed.touched()
    ed.notify("success", f"stored {rel} in the workspace and set {node_id}.{name}")


def image_picker(ed: Editor, node_id: str, name: str) -> None:
    """Pick one of the workspace's input images, or upload one into the workspace."""
    current = ed.doc.nodes[node_id].params.get(name)
    found = inputs.list_images(ed.workspace)
    with st.expander("Workspace images", expanded=not found):
        if found:
            key = _key(ed, node_id, "pick", name)
            st.selectbox("Use a workspace image", [None, *found], key=key,
                         index=(found.index(current) + 1) if current in found else 0,
                         format_func=lambda p: "choose…" if p is None else p,
                         on_change=_pick_image, args=(ed, node_id, name, key))
        key = _key(ed, node_id, "upload", name)
        st.file_uploader("Upload an image into the workspace", type=["png", "jpg", "jpeg",
                                                                      "webp"],
                         key=key, on_change=_upload_image, args=(ed, node_id, name, key))
        st.caption(md_text(f"Stored in {inputs.inputs_dir(ed.workspace)}"))


# inputs -----------------------------------------------------------------------------------
@callback
def _on_link(ed: Editor, node_id: str, port: str, key: str) -> None:
    choice = st.session_state.get(key)
    if choice in (None, NOT_CONNECTED):
        ops.disconnect(ed.doc, node_id, port)
    else:
        ops.connect(ed.doc, ed.reg, choice, node_id, port)


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
@callback
def _rename(ed: Editor, node_id: str, key: str) -> None:
    new = (st.session_state.get(key) or "").strip()
    ops.rename_node(ed.doc, node_id, new)
    ed.selected = new
    ed.canvas_selection = [new if n == node_id else n for n in ed.canvas_selection]
    ed.touched()


@callback
def _duplicate(ed: Editor, node_id: str) -> None:
    ed.selected = ed.focus = ops.duplicate_node(ed.doc, node_id, reg=ed.reg)
    ed.canvas_selection = [ed.selected]
    ed.touched()


@callback
def _remove(ed: Editor, node_id: str) -> None:
    cut = ops.remove_node(ed.doc, node_id)
    ed.selected = None
    ed.canvas_selection = [n for n in ed.canvas_selection if n in ed.doc.nodes]
    if cut:
        ed.notify("info", f"removed '{node_id}'; disconnected "
                  + ", ".join(f"{n}.{p}" for n, p in cut))
    ed.touched()


@callback
def _run_to(ed: Editor, node_id: str) -> None:
    ed.run_graph([node_id])


@callback
def _select(ed: Editor, key: str) -> None:
    ed.selected = st.session_state.get(key)
    ed.canvas_selection = [ed.selected] if ed.selected else []


def node_picker(ed: Editor) -> None:
    """A select of every node (the canvas selects too)."""
    ids = list(ed.doc.nodes)
    if not ids:
        return
    key = f"{ed.revision}:pick:{ed.selected}"
    index = ids.index(ed.selected) if ed.selected in ids else None
    st.selectbox("Node", ids, index=index, key=key, on_change=_select, args=(ed, key),
                 placeholder="choose a node…",
                 format_func=lambda n: f"{n}  ({ed.doc.nodes[n].type})")


def inspector(ed: Editor, problems: list[Problem]) -> None:
    """The selected node's editor."""
    node_picker(ed)
    node_id = ed.selected
    if node_id not in ed.doc.nodes:
        st.info("Select a node on the canvas, add one from the palette, or open a graph.")
        return
    entry = ed.doc.nodes[node_id]
    spec = ed.reg.get(entry.type)
    mine = [p for p in problems if p.node == node_id]
    st.subheader(md_text(node_id), anchor=False)
    st.caption(md_text(f"{entry.type}" + (f" — {spec.title}" if spec else "")))
    if spec and spec.doc:
        st.caption(md_text(spec.doc))
    st.button("Run to here", key=_key(ed, node_id, "run-to"), icon=":material/play_arrow:",
              on_click=_run_to, args=(ed, node_id), disabled=ed.run is not None
              and ed.run.running or jobs.sweep_running(), help="Run only what this node needs")
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
