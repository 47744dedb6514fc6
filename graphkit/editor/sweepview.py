"""The Sweep tab: pick a node's param, type a SPEC, see what it makes, start or cancel the
sweep, follow its progress and look at its results as a grid of thumbnails.

The progress and the grid are drawn by a polling fragment (the canvas is not drawn again
while a sweep runs); when the sweep ends, the whole page is drawn once, so the Run button
comes back.
"""

from __future__ import annotations

import streamlit as st

from graphkit.editor import jobs, sweeps
from graphkit.editor.guard import callback, one_line
from graphkit.editor.runview import POLL_SECONDS
from graphkit.editor.session import Editor
from graphkit.editor.sweeps import SpecPreview, SweepEntry, Target
from graphkit.editor.text import md_text
from graphkit.errors import GraphError
from graphkit.limits import limits
from graphkit.sweep.local import DEFAULT_BATCH

TITLE = "Sweep"
COLUMNS = 6  # thumbnails per row
PAGE = 24  # thumbnails per page of the grid
FINISHED_KEY = "polled-sweep"
ERROR_KEY = "sweep-error"
PREVIEW_KEY = "sweep-preview"
BATCH_KEY = "sweep-batch"


def folder_name(ed: Editor) -> str:
    """Sweep folders are named after the graph's file, else its name."""
    return ed.opened.file.stem if ed.opened.file is not None else (ed.doc.name or "graph")


def first_line(exc: Exception) -> str:
    """A GraphError's first problem, or the error's type and message; one line."""
    if isinstance(exc, GraphError) and exc.problems:
        return one_line(exc.lines()[0])
    return one_line(f"{type(exc).__name__}: {exc}")


def entry_of(ed: Editor) -> SweepEntry | None:
    entry = jobs.sweep_of(ed.tab)
    return entry if isinstance(entry, SweepEntry) else None


def preview(ed: Editor, target: Target, text: str) -> SpecPreview:
    """The SPEC's preview, computed again only when the node or the SPEC changed."""
    key = sweeps.preview_key(ed.doc, target, text, ed.workspace)
    cached = st.session_state.get(PREVIEW_KEY)
    if cached is not None and cached[0] == key:
        return cached[1]
    found = sweeps.preview_spec(ed.graph(), target, text, ed.workspace)
    st.session_state[PREVIEW_KEY] = (key, found)
    return found


@callback
def _start(ed: Editor, target: Target, spec_key: str) -> None:
    text = str(st.session_state.get(spec_key) or "")
    st.session_state[ERROR_KEY] = None
    batch = st.session_state.get(BATCH_KEY)
    try:
        sweeps.start_sweep(ed.tab, ed.graph(), target, text,
                           int(batch) if batch is not None else None, ed.out_dir,
                           ed.workspace, ed.input_dirs(), name=folder_name(ed))
    except Exception as exc:  # noqa: BLE001 - one line in the tab, the page stays
        st.session_state[ERROR_KEY] = (text, f"the sweep did not start: {first_line(exc)}")


@callback
def _cancel(ed: Editor) -> None:
    entry = entry_of(ed)
    if entry is not None:
        entry.job.cancel()


@callback
def _resume(ed: Editor) -> None:
    st.session_state[ERROR_KEY] = None
    entry = entry_of(ed)
    if entry is None:
        return
    try:
        sweeps.resume_sweep(entry, ed.input_dirs())
    except Exception as exc:  # noqa: BLE001 - one line in the tab, the page stays
        st.session_state[ERROR_KEY] = (entry.spec, f"the sweep did not resume: "
                                                   f"{first_line(exc)}")


def choose_target(ed: Editor) -> Target | None:
    """Node and param selects (the node defaults to the one selected on the canvas)."""
    nodes = sweeps.sweepable_nodes(ed.doc, ed.reg)
    if not nodes:
        st.caption("No node of this graph has a param to sweep (seed, text, number, choice).")
        return None
    default = sweeps.default_node(ed.doc, ed.reg, ed.selected)
    node_col, param_col = st.columns(2)
    node_id = node_col.selectbox(
        "Node to sweep", nodes, index=nodes.index(default) if default in nodes else 0,
        key=f"sweep-node:{ed.opened_count}:{default}",
        format_func=lambda n: f"{n}  ({ed.doc.nodes[n].type})",
        help="Defaults to the node selected on the canvas")
    if node_id not in nodes:
        node_id = nodes[0]
    targets = sweeps.node_targets(ed.doc, ed.reg, node_id)
    names = [t.param for t in targets]
    name = param_col.selectbox("Param", names, key=f"sweep-param:{ed.opened_count}:{node_id}",
                               help="Seeds, prompts and other text, numbers, choices")
    return next((t for t in targets if t.param == name), targets[0])


def sweep_form(ed: Editor) -> None:
    """What to sweep and how, the SPEC's preview, and Start / Cancel / Resume."""
    entry = entry_of(ed)
    busy = jobs.busy(ed.tab)
    left, right = st.columns([2, 3], gap="medium")
    with left:
        target = choose_target(ed)
    if target is None:
        return
    spec_key = f"sweep-spec:{ed.opened_count}:{target.key}"
    lim = limits()
    with right:
        spec_col, batch_col = st.columns([4, 1])
        text = spec_col.text_input(
            "Values (SPEC)", key=spec_key,
            placeholder=sweeps.placeholder(target, ed.reg.get(ed.doc.nodes[target.node].type)),
            help="As --sweep on the command line: a comma list (a, b, c), an integer range "
                 "(0..7, both ends included) or @FILE, one value per line, FILE relative to "
                 f"the workspace ({ed.workspace}) and inside it. Press Enter to check it.")
        batch_col.number_input(
            "Batch", key=BATCH_KEY, min_value=1, max_value=lim.max_batch, value=None, step=1,
            placeholder="auto",
            help="Variations per diffusion call when only seeds or prompts differ (auto: "
                 f"{DEFAULT_BATCH['cpu']} on the CPU, {DEFAULT_BATCH['cuda']} on CUDA)")
    shown = preview(ed, target, text or "")
    problems = ed.problems()
    if shown.error:
        st.markdown(f":red[:material/error: {md_text(shown.error)}]")
    elif shown.sweep is not None:
        st.markdown(md_text(f"{target.key}: {shown.words}"))
    else:
        st.caption(md_text(f"Type the values for {target.key}; each value is one run of "
                           "the graph, into its own folder."))
    if problems:
        st.markdown(f":orange[:material/warning: {md_text(one_line(problems[0]))}]")
    sweep_running = entry is not None and entry.running
    start, cancel, resume, note = st.columns([1.2, 1.2, 1.2, 5], vertical_alignment="center")
    start.button("Start sweep", key="sweep-start", icon=":material/play_arrow:",
                 type="primary", use_container_width=True, on_click=_start,
                 args=(ed, target, spec_key),
                 disabled=bool(busy or problems))
    cancel.button("Cancel", key="sweep-cancel", icon=":material/stop:",
                  use_container_width=True, on_click=_cancel, args=(ed,),
                  disabled=not sweep_running,
                  help="Stop after the current step; finished variations are kept")
    last = entry.progress() if entry is not None else None
    unfinished = last is not None and not last.running and last.finished < last.total
    resume.button("Resume", key="sweep-resume", icon=":material/resume:",
                  use_container_width=True, on_click=_resume, args=(ed,),
                  disabled=not unfinished or bool(busy),
                  help="Run the variations the last sweep left undone, into its folder")
    with note:
        error = st.session_state.get(ERROR_KEY)  # (the SPEC it was about, the line)
        if error and error[0] == (text or ""):
            st.markdown(f":red[{md_text(error[1])}]")
        elif busy and not sweep_running:
            st.caption(md_text(busy))
        else:
            st.caption(md_text(f"Each sweep writes into a new folder under "
                               f"{ed.out_dir / sweeps.SWEEPS_DIR}"))


def rerun_when_finished(entry: SweepEntry) -> None:
    """From the polling fragment: the sweep it watched ended, so draw the page once."""
    if entry.running:
        st.session_state[FINISHED_KEY] = entry
    elif st.session_state.get(FINISHED_KEY) is entry:
        st.session_state[FINISHED_KEY] = None
        st.rerun(scope="app")


def progress_and_grid(ed: Editor) -> None:
    """The sweep's progress bar, its folder and the grid of its results."""
    entry = entry_of(ed)
    if entry is None:
        return
    rerun_when_finished(entry)
    progress = entry.progress()
    st.progress(progress.fraction, text=f"{progress.finished} / {progress.total} variations")
    words = sweeps.progress_words(progress, entry.elapsed)
    failed = progress.error is not None or any(r["status"] == "failed" for r in progress.rows)
    st.markdown(f":red[{md_text(words)}]" if failed else md_text(words))
    st.caption(md_text(f"{entry.target.key} = {one_line(entry.spec, 120)} · into "
                       f"{entry.folder} (each variation in its own numbered folder; rows in "
                       "sweep.jsonl)"))
    cells = sweeps.grid_cells(progress.rows, entry.folder, entry.target.key)
    if not cells:
        return
    pages = (len(cells) + PAGE - 1) // PAGE
    first = 0
    if pages > 1:
        page = st.selectbox("Results", range(pages), key=f"sweep-page:{id(entry)}",
                            format_func=lambda i: f"{i * PAGE + 1}–"
                            f"{min((i + 1) * PAGE, len(cells))} of {len(cells)}")
        first = (page or 0) * PAGE
    grid(cells[first:first + PAGE], entry.target.param)


def grid(cells: list[sweeps.Cell], param: str) -> None:
    """Thumbnails labelled with their value; failed variations with their error."""
    for start in range(0, len(cells), COLUMNS):
        columns = st.columns(COLUMNS)
        for cell, column in zip(cells[start:start + COLUMNS], columns, strict=False):
            with column:
                label = f"{param} = {cell.label}"
                picture = sweeps.thumbnail(cell.image) if cell.image is not None else None
                if cell.status == "failed":
                    st.error("failed", icon=":material/error:")
                    st.caption(md_text(label))
                    st.caption(md_text(one_line(cell.error, 120)), help=md_text(cell.error))
                elif picture is not None:
                    more = f" (+{cell.more} more)" if cell.more else ""
                    st.image(picture, caption=md_text(label + more), width="stretch")
                else:
                    st.caption(md_text(f"{label}: {cell.status}, no image"))


def sweep_panel(ed: Editor) -> None:
    """The Sweep tab."""
    sweep_form(ed)
    entry = entry_of(ed)
    if entry is None:
        return
    st.fragment(progress_and_grid, run_every=POLL_SECONDS if entry.running else None)(ed)
