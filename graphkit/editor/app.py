"""The Streamlit editor page: sidebar (files, palette), canvas, inspector, run and outputs."""

from __future__ import annotations

import traceback

import streamlit as st

from graphkit.editor import canvas, panels, runview, sampoints
from graphkit.editor.inspector import inspector
from graphkit.editor.session import Editor

CANVAS_WIDTH, CANVAS_HEIGHT = 760, 520


def editor() -> Editor:
    """This browser session's editor, restored from the autosave on first use."""
    if "editor" not in st.session_state:
        st.session_state["editor"] = Editor.start()
    return st.session_state["editor"]


def show_notices(ed: Editor) -> None:
    for level, text in ed.notices:
        getattr(st, level, st.info)(text)
    ed.notices.clear()


def canvas_panel(ed: Editor, problems_by_node: set[str]) -> None:
    if not ed.doc.nodes:
        st.info("This graph is empty: open an example or add nodes from the palette.")
        return
    nodes, edges = canvas.build(ed.doc, ed.reg, problems_by_node, ed.selected,
                                runview.canvas_status(ed))
    if ed.canvas_click is not None and ed.canvas_click != ed.selected:
        ed.canvas_epoch += 1  # selected elsewhere since: a fresh canvas forgets its last click
        ed.canvas_click = None
    clicked = canvas.render(nodes, edges, ed.selected, CANVAS_HEIGHT, CANVAS_WIDTH,
                            key=f"canvas:{ed.canvas_epoch}")
    if clicked is not None and clicked != ed.canvas_click:
        ed.canvas_click = clicked
        if clicked in ed.doc.nodes and clicked != ed.selected:
            ed.selected = clicked
            st.rerun()


def page(ed: Editor) -> None:
    with st.sidebar:
        panels.files_panel(ed)
        panels.palette(ed)
    st.title(ed.doc.name or "untitled graph")
    show_notices(ed)
    runview.run_bar(ed)
    problems = ed.checked().problems
    if problems:
        st.warning(f"{len(problems)} problem(s): " + "; ".join(map(str, problems[:3]))
                   + (" …" if len(problems) > 3 else ""))
    left, right = st.columns([3, 2], gap="medium")
    with left:
        canvas_panel(ed, {p.node for p in problems if p.node})
        runview.written_files(ed)
    with right:
        inspector(ed, problems)
        if ed.selected in ed.doc.nodes:
            if sampoints.wants_points(ed, ed.selected):
                sampoints.point_picker(ed, ed.selected)
            runview.node_outputs(ed, ed.selected)


def main() -> None:
    st.set_page_config(page_title="graphkit editor", page_icon="🧩", layout="wide")
    ed = editor()
    try:
        page(ed)
    except Exception as exc:  # a readable message instead of a traceback page; the graph stays
        st.error(f"The editor hit an unexpected error: {type(exc).__name__}: {exc}. "
                 "Your graph is kept (autosaved); undo the last change or reload the page.")
        with st.expander("Details"):
            st.code(traceback.format_exc())
    finally:
        ed.autosave()


main()
