"""Run and cancel buttons, live per-node progress, and previews of a node's outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from graphkit.editor import files
from graphkit.editor.previews import image_source, preview
from graphkit.editor.runner import NodeStatus, RunRecord
from graphkit.editor.session import Editor
from graphkit.types import Image, SavedFiles

POLL_SECONDS = 0.3
PROGRESS_COLUMNS = 3
ICONS = {"waiting": ":material/schedule:", "running": ":material/progress_activity:",
         "cached": ":material/cached:", "done": ":material/check_circle:",
         "failed": ":material/error:", "skipped": ":material/skip_next:",
         "cancelled": ":material/cancel:"}


def status_words(status: NodeStatus) -> str:
    """A few words for a node's state in a run."""
    if status.state == "running":
        return f"running step {status.step}/{status.total}" if status.total else "running"
    if status.state == "cancelled":
        return f"cancelled at step {status.step}/{status.total}" if status.total else "cancelled"
    if status.state == "done":
        return f"ran in {status.seconds:.2f} s"
    if status.state in ("failed", "skipped"):
        return f"{status.state}: {status.message}"
    return status.state


def canvas_status(ed: Editor) -> dict[str, str]:
    """Short per-node labels of the last run, for the canvas."""
    if ed.run is None:
        return {}
    out = {}
    for nid, s in ed.run.snapshot().items():
        out[nid] = {"done": f"ran {s.seconds or 0:.2f}s", "running": "running"}.get(
            s.state, s.state)
    return out


def _start(ed: Editor) -> None:
    if ed.run is not None and ed.run.running:
        return
    problems = ed.checked().problems
    if problems:
        ed.notify("error", "the graph cannot run yet: " + "; ".join(map(str, problems[:5]))
                  + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
        return
    record = ed.start_run()
    if record.thread is not None:
        record.thread.join(timeout=0.25)  # small graphs finish before the page redraws


def _cancel(ed: Editor) -> None:
    if ed.run is not None:
        ed.run.control.cancel()


def run_bar(ed: Editor) -> None:
    """The run and cancel buttons, and the progress of the current run (polled while it runs)."""
    running = ed.run is not None and ed.run.running
    left, mid, _rest = st.columns([1, 1, 4])
    left.button("Run", key="run", icon=":material/play_arrow:", type="primary",
                on_click=_start, args=(ed,), disabled=running, use_container_width=True)
    mid.button("Cancel", key="cancel", icon=":material/stop:", on_click=_cancel, args=(ed,),
               disabled=not running, use_container_width=True)
    st.fragment(_progress, run_every=POLL_SECONDS if running else None)(ed)


def _progress(ed: Editor) -> None:
    record = ed.run
    if record is None:
        st.caption("Not run yet in this session.")
        return
    if record.running:
        st.session_state["polled-run"] = record
    elif st.session_state.get("polled-run") is record:
        st.session_state["polled-run"] = None
        st.rerun(scope="app")  # refresh the canvas and previews with the outcome
    progress_table(record)


def progress_table(record: RunRecord) -> None:
    """One line per node: state, step progress, seconds."""
    (st.error if (record.error or (record.result and record.result.failed)) else st.caption)(
        record.summary)
    for line in record.problems:
        st.markdown(f":red[{line}]")
    statuses = list(record.snapshot().items())
    cols = st.columns(PROGRESS_COLUMNS) if len(statuses) > 2 else [st.container()]
    for i, (nid, status) in enumerate(statuses):  # across columns: the canvas stays in view
        with cols[i % len(cols)]:
            st.markdown(f"{ICONS.get(status.state, '')} **{nid}** {status_words(status)}")
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
        st.caption("Not part of the last run (no output node needs it).")
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
            st.caption(f"{port}: no value (not computed or failed)")
            continue
        if isinstance(value, SavedFiles):
            for path in value.paths:
                _saved_file(Path(path), record.result.run_id, "node")
            continue
        shown = preview(port, value, under)
        if shown.image is not None:
            st.image(shown.image, caption=f"{port}: {shown.text}")
            if isinstance(value, Image):
                st.download_button(f"Download {port} PNG",
                                   data=files.image_png(value.pixels, record.graph_json, node_id),
                                   file_name=f"{node_id}_{port}.png", mime="image/png",
                                   key=f"dl:{record.result.run_id}:{node_id}:{port}")
        else:
            st.caption(f"{port}: {shown.text}")
        for line in shown.extra:
            st.caption(line)


def _saved_file(path: Path, run_id: str, where: str) -> None:
    if path.suffix.lower() != ".png" or not path.is_file():
        return
    data = path.read_bytes()
    st.image(data, caption=path.name)
    st.download_button(f"Download {path.name}", data=data, file_name=path.name,
                       mime="image/png", key=f"dl:{where}:{run_id}:{path}")


def written_files(ed: Editor) -> None:
    """Every file the last run wrote, as a gallery."""
    record = ed.run
    if record is None or record.running or record.result is None or not record.result.files:
        return
    pngs = [p for p in record.result.files if p.suffix.lower() == ".png" and p.is_file()]
    cols = st.columns(min(len(pngs), 4) or 1)
    for i, path in enumerate(pngs):
        with cols[i % len(cols)]:
            _saved_file(path, record.result.run_id, "gallery")
