"""Run, run-to-here and cancel, the run's per-node progress, and previews of node outputs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import streamlit as st

from graphkit.editor import files, jobs
from graphkit.editor.guard import callback
from graphkit.editor.previews import image_source, preview
from graphkit.editor.runner import NodeStatus, RunRecord, status_words
from graphkit.editor.session import Editor
from graphkit.editor.text import md_text
from graphkit.types import Image, SavedFiles

POLL_SECONDS = 0.5
PROGRESS_HEIGHT = 260  # the per-node list scrolls inside this height
ICONS = {"waiting": ":material/schedule:", "running": ":material/progress_activity:",
         "cached": ":material/cached:", "done": ":material/check_circle:",
         "failed": ":material/error:", "skipped": ":material/skip_next:",
         "cancelled": ":material/cancel:"}
FINISHED_KEY = "polled-run"
DRAWN_KEY = "canvas-drawn-states"
PAGE_KEY = "drawing-the-page"  # true while the whole page runs (not a fragment alone)
STEP_REDRAW = 1.0  # seconds between page redraws for step progress alone


def running(ed: Editor) -> bool:
    return ed.run is not None and ed.run.running


def rerun_when_finished(ed: Editor) -> None:
    """Called by polling fragments: the run they watched is over, so redraw the whole page
    (canvas states, previews, files) once."""
    record = ed.run
    if record is not None and record.running:
        st.session_state[FINISHED_KEY] = record
    elif record is not None and st.session_state.get(FINISHED_KEY) is record:
        st.session_state[FINISHED_KEY] = None
        st.rerun(scope="app")


@callback
def _start(ed: Editor) -> None:
    ed.run_graph()


@callback
def _run_to(ed: Editor, node_id: str) -> None:
    ed.run_graph([node_id])


@callback
def _cancel(ed: Editor) -> None:
    if ed.run is not None:
        ed.run.control.cancel()


@callback
def _undo(ed: Editor) -> None:
    ed.undo()


@callback
def _redo(ed: Editor) -> None:
    ed.redo()


def run_bar(ed: Editor) -> None:
    """Run, cancel, undo and redo buttons, and one line on the current run."""
    busy = running(ed)
    if busy:  # drawn while it runs: the polling below redraws the page when it ends
        st.session_state[FINISHED_KEY] = ed.run
    sweeping = jobs.sweep_running()  # the Sweep tab's polling redraws the page when it ends
    run, cancel, undo, redo, state = st.columns([1.3, 1.5, 0.6, 0.6, 5],
                                                vertical_alignment="center")
    run.button("Run", key="run", icon=":material/play_arrow:", type="primary",
               on_click=_start, args=(ed,), disabled=busy or sweeping, use_container_width=True,
               help="Run every output node (only what changed since the last run runs again)"
               + ("; off while a sweep runs" if sweeping else ""))
    cancel.button("Cancel", key="cancel", icon=":material/stop:", on_click=_cancel, args=(ed,),
                  disabled=not busy, use_container_width=True)
    undo.button("", key="undo", icon=":material/undo:", on_click=_undo, args=(ed,),
                disabled=not ed.history.undo_stack, use_container_width=True,
                help="Undo (Ctrl+Z)")
    redo.button("", key="redo", icon=":material/redo:", on_click=_redo, args=(ed,),
                disabled=not ed.history.redo_stack, use_container_width=True,
                help="Redo (Ctrl+Shift+Z)")
    with state:
        st.fragment(_summary, run_every=POLL_SECONDS if busy else None)(ed)


def drawn(statuses: dict[str, NodeStatus]) -> None:
    """The canvas was drawn with these node states (see ``redraw_on_progress``)."""
    st.session_state[DRAWN_KEY] = (_signature(statuses), time.monotonic())


def _signature(statuses: dict[str, NodeStatus]) -> tuple[tuple[str, str, int], ...]:
    return tuple((nid, s.state, s.step) for nid, s in statuses.items())


def redraw_on_progress(ed: Editor) -> None:
    """While a run goes: redraw the page (the canvas shows each node's state) when a node's
    state changed since the canvas was drawn, or its step, at most every ``STEP_REDRAW`` s.

    Only from a polling rerun of a fragment: during a run of the whole page, the canvas is
    about to be drawn anyway."""
    if not running(ed) or st.session_state.get(PAGE_KEY):
        return
    now = _signature(ed.run.snapshot())  # type: ignore[union-attr]
    shown, at = st.session_state.get(DRAWN_KEY, ((), 0.0))
    if now == shown:
        return
    states_changed = [(n, s) for n, s, _ in now] != [(n, s) for n, s, _ in shown]
    if states_changed or time.monotonic() - at >= STEP_REDRAW:
        st.rerun(scope="app")


def _summary(ed: Editor) -> None:
    rerun_when_finished(ed)
    redraw_on_progress(ed)
    record = ed.run
    if jobs.sweep_running() and not running(ed):
        st.caption(md_text(jobs.busy(ed.tab)))
        return
    if record is None:
        st.caption(md_text(f"Not run yet in this tab. Outputs go to {ed.out_dir}"))
        return
    failed = bool(record.error or (record.result and record.result.failed))
    text = md_text(record.summary)
    if failed:
        st.markdown(f":red[{text}]")
    else:
        st.markdown(text)


def run_panel(ed: Editor) -> None:
    """The per-node list of the last run, scrolling in a box of fixed height (redrawn with
    the page, which the run bar redraws as the run goes)."""
    record = ed.run
    if record is None:
        st.caption(md_text(f"Not run yet in this tab. Run writes its files to {ed.out_dir}"))
        return
    progress_list(record)


def progress_list(record: RunRecord) -> None:
    """One line per node: state, step progress, seconds; problems that stopped the run."""
    for line in record.problems:
        st.markdown(f":red[{md_text(line)}]")
    with st.container(height=PROGRESS_HEIGHT, border=True):
        for nid, status in record.snapshot().items():
            st.markdown(f"{ICONS.get(status.state, '')} **{md_text(nid)}** "
                        f"{md_text(status_words(status))}")
            if status.state == "running" and status.total:
                st.progress(min(status.step / status.total, 1.0))


def _value(record: RunRecord, node_id: str, port: str) -> Any:
    if record.result is None or node_id not in record.result.keys:
        return None
    try:
        return record.result.value(node_id, port)
    except KeyError:
        return None


def node_outputs(ed: Editor, node_id: str) -> None:
    """Previews of the selected node's outputs from the last run, with PNG downloads."""
    record = ed.run
    spec = ed.reg.get(ed.doc.nodes[node_id].type) if node_id in ed.doc.nodes else None
    if record is None or record.running or spec is None or record.result is None:
        return
    if node_id not in record.result.keys:
        st.caption("Not part of the last run.")
        return
    st.markdown("**Output**" + ("" if ed.run_is_current else " (from the last run; edited since)"))
    under = None
    src = image_source(ed.doc, ed.reg, node_id)
    if src is not None:
        candidate = _value(record, *src)
        under = candidate if isinstance(candidate, Image) else None
    for port in spec.outputs:
        value = _value(record, node_id, port)
        if value is None:
            st.caption(md_text(f"{port}: no value (not computed or failed)"))
            continue
        if isinstance(value, SavedFiles):
            for path in value.paths:
                _saved_file(Path(path), record.result.run_id, "node")
            continue
        shown = preview(port, value, under)
        if shown.image is not None:
            st.image(shown.image, caption=md_text(f"{port}: {shown.text}"))
            if isinstance(value, Image):
                st.download_button(f"Download {port} PNG",
                                   data=files.image_png(value.pixels, record.graph_json, node_id),
                                   file_name=f"{node_id}_{port}.png", mime="image/png",
                                   key=f"dl:{record.result.run_id}:{node_id}:{port}")
        else:
            st.caption(md_text(f"{port}: {shown.text}"))
        for line in shown.extra:
            st.caption(md_text(line))


def _saved_file(path: Path, run_id: str, where: str) -> None:
    if path.suffix.lower() != ".png" or not path.is_file():
        return
    data = path.read_bytes()
    st.image(data, caption=md_text(path.name))
    st.download_button(md_text(f"Download {path.name}"), data=data, file_name=path.name,
                       mime="image/png", key=f"dl:{where}:{run_id}:{path}")


def written_files(ed: Editor) -> None:
    """Every file the last run wrote, as a gallery, with the folder they are in."""
    record = ed.run
    if record is None or record.running or record.result is None or not record.result.files:
        st.caption(md_text(f"Files the graph's output nodes write go to {ed.out_dir}"))
        return
    st.caption(md_text(f"Written to {ed.out_dir}"))
    pngs = [p for p in record.result.files if p.suffix.lower() == ".png" and p.is_file()]
    cols = st.columns(min(len(pngs), 4) or 1)
    for i, path in enumerate(pngs):
        with cols[i % len(cols)]:
            _saved_file(path, record.result.run_id, "gallery")
