"""The Streamlit editor page.

Sidebar: the graph's file, examples, uploads, the node palette. Main area: a header (name,
file, model profile, where outputs go), the run bar, the canvas with the inspector beside
it, and panels below the canvas, one tab each (``PANELS``).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

import streamlit as st

from graphkit.editor import (
    canvas,
    canvas_events,
    jobs,
    panels,
    runview,
    sampoints,
    sweepview,
    tabs,
)
from graphkit.editor.guard import callback, one_line
from graphkit.editor.inspector import inspector
from graphkit.editor.session import Editor
from graphkit.editor.text import md_text

CANVAS_KEY = "canvas"
FIRST_PANEL_KEY = "first-panel"

# Panels below the canvas, one tab each, in this order: (title, function drawing it for the
# tab's Editor). A new panel (a parameter sweep, say) is one more entry.
PANELS: list[tuple[str, Callable[[Editor], None]]] = [
    ("Run", runview.run_panel),
    ("Files written", runview.written_files),
    (sweepview.TITLE, sweepview.sweep_panel),
]
SIDEBAR_WIDTH = 240
PAGE_STYLE = """<style>
[data-testid="stMainBlockContainer"] { padding: 1.4rem 1.5rem 2rem 1.5rem; }
</style>"""


def editor() -> Editor:
    """This browser tab's editor; the tab id lives in the page address (``?tab=``), so a
    reload of the page finds the tab's autosave."""
    ed = st.session_state.get("editor")
    if ed is None:
        asked = st.query_params.get("tab")
        session, alive = tabs.this_session()
        if tabs.claim(asked, session, alive):
            ed = Editor.start(tab=asked)
        else:  # a duplicated page: the same address as a page still open
            ed = Editor.start(copy_of=asked)
        tabs.claim(ed.tab, session, alive)
        st.session_state["editor"] = ed
    if st.query_params.get("tab") != ed.tab:
        st.query_params["tab"] = ed.tab
    return ed


def show_notices(ed: Editor) -> None:
    for level, text in ed.notices:
        getattr(st, level, st.info)(md_text(one_line(text, 600)))
    ed.notices.clear()


def model_profile() -> str:
    """The model profile runs use ('hub' or 'tiny')."""
    from graphkit.models import get_manager

    try:
        return get_manager().profile
    except Exception:  # noqa: BLE001 - a bad setting shows when a run loads a model
        return "hub"


def header(ed: Editor) -> None:
    """The graph's name and file, the model profile and where outputs go."""
    left, right = st.columns([4, 1.4], vertical_alignment="center")
    with left:
        mark = " ●" if ed.opened.file is not None and ed.modified else ""
        st.subheader(md_text((ed.doc.name or "untitled graph") + mark), anchor=False)
        where = (f"File {ed.opened.file}" if ed.opened.file is not None
                 else "Not saved yet (Ctrl+S asks for a name)")
        st.caption(md_text(f"{where} · outputs go to {ed.out_dir}"))
    with right:
        if model_profile() == "tiny":
            st.badge("Model profile: tiny", icon=":material/science:", color="orange",
                     help="Every default model maps to a tiny random-weight test model: runs "
                          "are fast and their images are noise. Start the editor without "
                          "--models tiny for the real models.")


@callback
def _on_canvas_edit(ed: Editor) -> None:
    payload = canvas.sent_edit(CANVAS_KEY)
    if payload is not None:
        canvas_events.handle(ed, payload)


def canvas_panel(ed: Editor) -> None:
    """The canvas. While a run goes, the run bar's polling redraws the page when a node's
    state or step changes (see ``runview.redraw_on_progress``)."""
    problems = ed.problems()
    state = canvas.CanvasState(
        rev=ed.doc_rev, graph=ed.opened_count, view_key=ed.view_key, acked=ed.acked,
        selected=ed.canvas_selection or ([ed.selected] if ed.selected else []),
        focus=ed.focus, running=runview.running(ed), clipboard=len(ed.clipboard))
    statuses = ed.run.snapshot() if ed.run is not None else {}
    runview.drawn(statuses)
    data = canvas.canvas_data(ed.doc, ed.reg, problems, statuses, state)
    try:
        canvas.show(data, CANVAS_KEY, lambda: _on_canvas_edit(ed))
    except Exception as exc:  # noqa: BLE001 - e.g. a missing bundle: say so, keep the page
        st.error(md_text(one_line(f"the canvas cannot be shown: {exc}")))
    ed.focus = None


def page(ed: Editor) -> None:
    with st.sidebar:
        panels.files_panel(ed)
        panels.palette(ed)
    header(ed)
    runview.run_bar(ed)
    problems = ed.problems()
    # Nothing above the canvas comes and goes: messages and questions go beside it, so the
    # canvas never shifts under the mouse (nor is it mounted again).
    left, right = st.columns([7, 3], gap="small")
    with left:
        canvas_panel(ed)
    with right:
        show_notices(ed)
        panels.save_prompts(ed)
        if problems:
            more = " …" if len(problems) > 3 else ""
            st.warning(md_text(f"{len(problems)} problem(s): "
                               + "; ".join(map(str, problems[:3])) + more))
        inspector(ed, problems)
        if ed.selected in ed.doc.nodes:
            if sampoints.wants_points(ed, ed.selected):
                sampoints.point_picker(ed, ed.selected)
            runview.node_outputs(ed, ed.selected)
    # A reloaded page whose tab has a sweep opens on the Sweep tab (decided once per page).
    first = st.session_state.setdefault(
        FIRST_PANEL_KEY, sweepview.TITLE if jobs.sweep_of(ed.tab) is not None else None)
    panel_tabs = st.tabs([t for t, _ in PANELS], default=first)
    for (_title, draw), tab in zip(PANELS, panel_tabs, strict=True):
        with tab:
            draw(ed)


def main() -> None:
    st.set_page_config(page_title="graphkit editor", page_icon="🧩", layout="wide",
                       initial_sidebar_state=SIDEBAR_WIDTH)
    st.html(PAGE_STYLE)
    ed = editor()
    ed.commit()  # edits the callbacks of this run made: one undo step
    st.session_state[runview.PAGE_KEY] = True
    try:
        page(ed)
    except Exception as exc:  # a readable line instead of a traceback page; the graph stays
        st.error(md_text(one_line(f"The editor hit an unexpected error: {type(exc).__name__}: "
                                  f"{exc}. Your graph is kept (autosaved); undo the last "
                                  "change or reload the page.")))
        with st.expander("Details"):
            st.code(traceback.format_exc(), language=None)
    finally:
        st.session_state[runview.PAGE_KEY] = False
        ed.autosave()


main()
