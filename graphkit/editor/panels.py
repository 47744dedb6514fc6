"""Sidebar panels (the graph's file, examples, upload, download; the node palette) and the
boxes a save can open (a name for a graph with no file yet; a file changed on disk)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import streamlit as st

from graphkit.editor import files, layout, ops
from graphkit.editor.guard import callback
from graphkit.editor.session import Editor
from graphkit.editor.text import md_text
from graphkit.graph import GraphDoc


@callback
def _open_example(ed: Editor, key: str) -> None:
    path = st.session_state.get(key)
    if not path:
        return
    # Back to "choose…": picking the same example again (say, to drop edits) reopens it.
    st.session_state[key] = None
    opened = files.open_path(Path(path))
    opened.file = opened.digest = None  # an example is saved under a name in the workspace
    ed.replace(opened)
    ed.notify("success", f"opened the example {Path(path).name}")


@callback
def _on_upload(ed: Editor, key: str) -> None:
    upload = st.session_state.get(key)
    if upload is None:
        return
    try:
        opened = files.open_upload(upload.name, upload.getvalue(), ed.workspace)
    except Exception:
        ed.notify("error", f"could not open {upload.name}; the graph you were editing is "
                  "unchanged")
        raise
    ed.replace(opened)
    ed.notify("success", f"opened {upload.name}")


@callback
def _save(ed: Editor) -> None:
    ed.save()


@callback
def _save_as(ed: Editor, key: str) -> None:
    ed.save_as(str(st.session_state.get(key) or ""))


@callback
def _overwrite(ed: Editor) -> None:
    ed.save_in_place(overwrite=True)


@callback
def _reload(ed: Editor) -> None:
    ed.reload_from_disk()


@callback
def _new_graph(ed: Editor) -> None:
    ed.replace(files.Opened(GraphDoc(name="untitled"), ed.workspace, ""))


@callback
def _rename_graph(ed: Editor, key: str) -> None:
    ed.doc.name = str(st.session_state.get(key) or "")[:500]


def save_as_form(ed: Editor, where: str) -> None:
    """A name field and a button that save the graph as NAME.json in the workspace."""
    key = f"{ed.opened_count}:{where}:save-as-name"
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.text_input("Save in the workspace as", value=files.slug(ed.doc.name), key=key,
                    help=f"A file name; .json is added. Workspace: {ed.workspace}")
    right.button("Save as", key=f"{where}:save-as", on_click=_save_as, args=(ed, key),
                 use_container_width=True)


def save_prompts(ed: Editor) -> None:
    """What a save asks, shown above the canvas: a name, or reload-or-overwrite."""
    if ed.conflict and ed.opened.file is not None:
        with st.container(border=True):
            st.warning(md_text(f"{ed.opened.file} changed on disk since this tab read it "
                               "(another tab or program). Reload it (Ctrl+Z brings your "
                               "version back), or overwrite it with your version."),
                       icon=":material/sync_problem:")
            st.button("Reload from disk", key="conflict-reload", on_click=_reload,
                      args=(ed,), use_container_width=True, icon=":material/sync:")
            st.button("Overwrite with my version", key="conflict-overwrite", on_click=_overwrite,
                      args=(ed,), use_container_width=True, type="primary",
                      icon=":material/save:")
            st.caption("Or save your version under another name (sidebar, Save as).")
    if ed.asking_name and ed.opened.file is None:
        with st.container(border=True):
            save_as_form(ed, "ask")


def files_panel(ed: Editor) -> None:
    """The graph's name and file; save, save as, reload; examples, upload, download."""
    st.header("Graph")
    key = f"{ed.revision}:graph-name"
    st.text_input("Name", value=ed.doc.name, key=key, on_change=_rename_graph, args=(ed, key))
    if ed.opened.file is not None:
        state = "unsaved changes" if ed.modified else "saved"
        st.caption(md_text(f"File: {ed.opened.file} ({state})"))
    else:
        st.caption(md_text("Not saved yet: Save asks for a name in the workspace "
                           f"({ed.workspace})"))
    left, right = st.columns(2)
    left.button("Save", key="save", on_click=_save, args=(ed,), use_container_width=True,
                help="Ctrl+S: write the graph file in place", type="primary",
                icon=":material/save:")
    right.button("New", key="new", on_click=_new_graph, args=(ed,), use_container_width=True,
                 icon=":material/add:")
    if ed.opened.file is not None:
        st.button("Reload from disk", key="reload", on_click=_reload, args=(ed,),
                  use_container_width=True, help="Read the graph file again (undo brings "
                  "your version back)")
    with st.expander("Save as…"):
        save_as_form(ed, "side")
    examples = files.list_examples()
    if examples:
        st.selectbox("Open an example", [None, *map(str, examples)], key="example",
                     format_func=lambda p: "choose…" if p is None else Path(p).name,
                     placeholder="choose…",
                     on_change=_open_example, args=(ed, "example"))
    st.file_uploader("Open a graph (JSON or a graphkit PNG)", type=["json", "png"],
                     key="upload", on_change=_on_upload, args=(ed, "upload"))
    st.download_button("Download graph JSON", data=lambda: ed.graph().copy().dumps(),
                       file_name=f"{files.slug(ed.doc.name)}.json", mime="application/json",
                       key="download-json", on_click="ignore")
    st.caption(md_text(f"Workspace: {ed.workspace}. This tab's work is autosaved; reloading "
                       "the page brings it back."))


@callback
def _add(ed: Editor, type_id: str) -> None:
    at = layout.beside(ed.doc, ed.reg, ed.selected)
    node_id = ops.add_wired(ed.doc, ed.reg, type_id, at)
    ed.selected = ed.focus = node_id
    ed.canvas_selection = [node_id]
    ed.touched()


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
                st.caption(f"`{spec.type_id}` {md_text(first)}")
    st.caption("On the canvas: drop a link on empty space, or double-click it, to search "
               "node types there.")
    for pack, error in sorted(ed.reg.failed_packs.items()):
        st.warning(md_text(f"node pack '{pack}' failed to load: {error}"))
