"""Sidebar panels: files (examples, upload, download, save) and the node palette."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import streamlit as st

from graphkit.editor import files, ops
from graphkit.editor.session import Editor
from graphkit.errors import GraphError
from graphkit.graph import GraphDoc


def _open_example(ed: Editor, key: str) -> None:
    path = st.session_state.get(key)
    if not path:
        return
    # Back to "choose…": picking the same example again (say, to drop edits) reopens it.
    st.session_state[key] = None
    try:
        ed.replace(files.open_path(Path(path)))
        ed.notify("success", f"opened {Path(path).name}")
    except GraphError as exc:
        ed.fail(exc)


def _on_upload(ed: Editor, key: str) -> None:
    upload = st.session_state.get(key)
    if upload is None:
        return
    try:
        ed.replace(files.open_upload(upload.name, upload.getvalue(), ed.workspace))
        ed.notify("success", f"opened {upload.name}")
    except GraphError as exc:
        ed.notify("error", f"could not open {upload.name}; the graph you were editing is "
                  "unchanged")
        ed.fail(exc)


def _save_to(ed: Editor, key: str) -> None:
    raw = (st.session_state.get(key) or "").strip()
    if not raw:
        ed.notify("error", "type a path to save to")
        return
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = ed.workspace / path
    if path.suffix.lower() != ".json":
        ed.notify("error", f"'{raw}': graph files end in .json")
        return
    roots = [ed.workspace.resolve(), ed.graph().base_dir.resolve()]
    if not any(path.resolve().is_relative_to(root) for root in roots):
        ed.notify("error", f"'{raw}' is outside the workspace ({roots[0]}) and the opened "
                  f"graph's folder ({roots[1]}); save inside one of them")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ed.graph().save(path)
        ed.notify("success", f"saved {path.resolve()}")
    except OSError as exc:
        ed.notify("error", f"could not save to '{raw}': {exc.strerror or exc}")


def _new_graph(ed: Editor) -> None:
    ed.replace(files.Opened(GraphDoc(name="untitled"), ed.workspace, ""))


def _rename_graph(ed: Editor, key: str) -> None:
    ed.doc.name = str(st.session_state.get(key) or "")[:500]


def files_panel(ed: Editor) -> None:
    """Open, upload, download and save graphs."""
    st.header("Graph")
    key = f"{ed.revision}:graph-name"
    st.text_input("Name", value=ed.doc.name, key=key, on_change=_rename_graph, args=(ed, key))
    examples = files.list_examples()
    if examples:
        st.selectbox("Open an example", [None, *map(str, examples)], key="example",
                     format_func=lambda p: "choose…" if p is None else Path(p).name,
                     placeholder="choose…",
                     on_change=_open_example, args=(ed, "example"))
    st.file_uploader("Open a graph (JSON or a graphkit PNG)", type=["json", "png"],
                     key="upload", on_change=_on_upload, args=(ed, "upload"))
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in ed.doc.name) or "graph"
    st.download_button("Download graph JSON", data=ed.graph().copy().dumps(),
                       file_name=f"{stem}.json", mime="application/json", key="download-json")
    path_key = f"{ed.opened_count}:save-path"  # follows the graph opened, not each edit
    st.text_input("Save to path", value=str(ed.workspace / f"{stem}.json"), key=path_key)
    left, right = st.columns(2)
    left.button("Save", key="save", on_click=_save_to, args=(ed, path_key))
    right.button("New graph", key="new", on_click=_new_graph, args=(ed,))
    st.caption(f"Autosaved to {ed.workspace / 'autosave.json'}")


def _add(ed: Editor, type_id: str) -> None:
    try:
        ed.selected = ops.add_node(ed.doc, ed.reg, type_id)
        ed.touched()
    except GraphError as exc:
        ed.fail(exc)


def palette(ed: Editor) -> None:
    """Every registered node type, grouped by category, with search and docstrings."""
    st.header("Add a node")
    query = st.text_input("Search nodes", key="palette-search",
                          placeholder="type, title or words of its description").strip().lower()
    groups = defaultdict(list)
    for type_id in sorted(ed.reg.specs):
        spec = ed.reg.specs[type_id]
        text = f"{type_id} {spec.title} {spec.category} {spec.doc}".lower()
        if query and not all(word in text for word in query.split()):
            continue
        groups[spec.category].append(spec)
    if not groups:
        st.caption("No node type matches.")
    for category in sorted(groups):
        with st.expander(f"{category} ({len(groups[category])})", expanded=bool(query)):
            for spec in groups[category]:
                st.button(spec.title, key=f"add:{spec.type_id}", help=spec.doc or None,
                          icon=":material/add:",
                          on_click=_add, args=(ed, spec.type_id), use_container_width=True)
                first = spec.doc.splitlines()[0] if spec.doc else ""
                st.caption(f"`{spec.type_id}` {first}")
    for pack, error in sorted(ed.reg.failed_packs.items()):
        st.warning(f"node pack '{pack}' failed to load: {error}")
