"""Point picking for SAM nodes: click the input image to add foreground/background points."""

from __future__ import annotations

from typing import Any

import streamlit as st

from graphkit.editor import ops
from graphkit.editor.previews import draw_points
from graphkit.editor.session import Editor
from graphkit.imaging import pixels_to_pil
from graphkit.types import Image

SAM_TYPES = {"sam.mask"}
SHOW_WIDTH = 448


def wants_points(ed: Editor, node_id: str) -> bool:
    entry = ed.doc.nodes.get(node_id)
    spec = ed.reg.get(entry.type) if entry else None
    return bool(spec and (entry.type in SAM_TYPES or (  # type: ignore[union-attr]
        "points" in spec.params and "image" in spec.inputs and spec.category == "segment")))


def points_of(ed: Editor, node_id: str) -> list[list[Any]]:
    raw = ed.doc.nodes[node_id].params.get("points") or []
    return [list(p) for p in raw if isinstance(p, list)]  # type: ignore[union-attr]


def add_point(ed: Editor, node_id: str, x: float, y: float, foreground: bool) -> None:
    """Append [x, y, label] (image pixels; label 1 = foreground, 0 = background)."""
    pts = points_of(ed, node_id)
    pts.append([int(round(x)), int(round(y)), 1 if foreground else 0])
    ops.set_param(ed.doc, node_id, "points", pts)


def _input_image(ed: Editor, node_id: str) -> Image | None:
    ref = ed.doc.nodes[node_id].inputs.get("image")
    record = ed.run
    if not ref or record is None or record.result is None or record.running:
        return None
    src, port = ref.split(".", 1)
    if src not in record.result.keys:
        return None
    try:
        value = record.result.value(src, port)
    except KeyError:
        return None
    return value if isinstance(value, Image) else None


def _on_click(ed: Editor, node_id: str, key: str, image_width: int) -> None:
    value = st.session_state.get(key)
    if not value or "x" not in value:
        return
    scale = image_width / value["width"] if value.get("width") else 1.0
    fg = not st.session_state.get(f"sam-bg:{node_id}", False)
    add_point(ed, node_id, value["x"] * scale, value["y"] * scale, fg)


def _clear(ed: Editor, node_id: str) -> None:
    ops.set_param(ed.doc, node_id, "points", [])
    ed.touched()


def _undo(ed: Editor, node_id: str) -> None:
    ops.set_param(ed.doc, node_id, "points", points_of(ed, node_id)[:-1])
    ed.touched()


def _load_input(ed: Editor, node_id: str) -> None:
    ref = ed.doc.nodes[node_id].inputs.get("image")
    if not ref:
        ed.notify("error", f"connect an image to '{node_id}' first")
        return
    src = ref.split(".", 1)[0]
    problems = [p for p in ed.checked().problems if p.node in ({src} | ops.upstream(ed.doc, src))]
    if problems:
        ed.notify("error", "; ".join(map(str, problems)))
        return
    record = ed.start_run(targets=[src])
    if record.thread is not None:
        record.thread.join(timeout=5)


def point_picker(ed: Editor, node_id: str) -> None:
    """The input image with its points; a click adds one."""
    st.markdown("**Points** — click the image to add one")
    image = _input_image(ed, node_id)
    if image is None:
        st.caption("Run the graph (or load just the input) to pick points on its image.")
        st.button("Load input image", key=f"sam-load:{node_id}", on_click=_load_input,
                  args=(ed, node_id))
        return
    from streamlit_image_coordinates import streamlit_image_coordinates

    pic = draw_points(pixels_to_pil(image.pixels[:1])[0], points_of(ed, node_id),
                      radius=max(3, image.width // 100))
    width = min(SHOW_WIDTH, pic.width)
    st.toggle("Background points", key=f"sam-bg:{node_id}")
    key = f"sam-click:{ed.revision}:{node_id}:{len(points_of(ed, node_id))}"
    streamlit_image_coordinates(pic, width=width, key=key, cursor="crosshair",
                                on_click=lambda: _on_click(ed, node_id, key, pic.width))
    left, right = st.columns(2)
    left.button("Undo point", key=f"sam-undo:{node_id}", on_click=_undo, args=(ed, node_id))
    right.button("Clear points", key=f"sam-clear:{node_id}", on_click=_clear, args=(ed, node_id))
    st.caption(f"{len(points_of(ed, node_id))} points (green: foreground, red: background), "
               f"stored as [x, y, label] in {image.width}x{image.height} pixels")
