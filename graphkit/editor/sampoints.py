"""Point picking for SAM nodes: click the input image to add foreground/background points."""

from __future__ import annotations

from typing import Any

import streamlit as st

from graphkit.editor import ops
from graphkit.editor.guard import callback
from graphkit.editor.previews import draw_points
from graphkit.editor.session import Editor
from graphkit.imaging import pixels_to_pil
from graphkit.types import Image

SAM_TYPES = {"sam.mask"}
SEND_MAX = 1024  # the picture sent to the browser is at most this wide or high


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


def click_to_pixels(click: dict[str, Any], width: int, height: int) -> tuple[float, float]:
    """Where a click on the shown (maybe scaled) picture falls in the image's own pixels.

    ``click`` is what the image-coordinates component reports: x, y in display pixels and
    the displayed width and height. The result is clamped to the image.
    """
    shown_w = click.get("width") or width
    shown_h = click.get("height") or height
    x = float(click["x"]) * width / shown_w
    y = float(click["y"]) * height / shown_h
    return min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)


@callback
def _on_click(ed: Editor, node_id: str, key: str, width: int, height: int) -> None:
    value = st.session_state.get(key)
    if not value or "x" not in value:
        return
    fg = not st.session_state.get(_mode_key(node_id), False)
    add_point(ed, node_id, *click_to_pixels(value, width, height), fg)
    ed.touched()  # the inspector's points field shows the new list


def _mode_key(node_id: str) -> str:
    """Where the foreground/background choice is kept (not a widget key: it outlives runs
    during which the toggle is not drawn)."""
    return f"sam-background:{node_id}"


def _on_mode(node_id: str, key: str) -> None:
    st.session_state[_mode_key(node_id)] = bool(st.session_state.get(key))


@callback
def _clear(ed: Editor, node_id: str) -> None:
    ops.set_param(ed.doc, node_id, "points", [])
    ed.touched()


@callback
def _undo(ed: Editor, node_id: str) -> None:
    ops.set_param(ed.doc, node_id, "points", points_of(ed, node_id)[:-1])
    ed.touched()


@callback
def _load_input(ed: Editor, node_id: str) -> None:
    ref = ed.doc.nodes[node_id].inputs.get("image")
    if not ref:
        ed.notify("error", f"connect an image to '{node_id}' first")
        return
    if ed.run_graph([ref.split(".", 1)[0]]) and ed.run is not None and ed.run.thread:
        ed.run.thread.join(timeout=5)


def point_picker(ed: Editor, node_id: str) -> None:
    """The input image with its points; a click adds one."""
    st.markdown("**Points** — click the image to add one")
    image = _input_image(ed, node_id)
    if image is None and ed.run is not None and ed.run.running:
        st.caption("The image shows here when the run ends.")
        return
    if image is None:
        st.caption("Run the graph (or load just the input) to pick points on its image.")
        st.button("Load input image", key=f"sam-load:{node_id}", on_click=_load_input,
                  args=(ed, node_id))
        return
    from streamlit_image_coordinates import streamlit_image_coordinates

    pic = draw_points(pixels_to_pil(image.pixels[:1])[0], points_of(ed, node_id),
                      radius=max(3, image.width // 100))
    pic.thumbnail((SEND_MAX, SEND_MAX))  # shown as wide as the column, whatever its size
    toggle_key = f"sam-bg:{node_id}"
    st.toggle("Background points", value=bool(st.session_state.get(_mode_key(node_id))),
              key=toggle_key, on_change=_on_mode, args=(node_id, toggle_key))
    key = f"sam-click:{ed.revision}:{node_id}:{len(points_of(ed, node_id))}"
    # Clicks come in display pixels with the displayed size: _on_click scales them to the
    # input image's own pixels.
    streamlit_image_coordinates(pic, width="stretch", key=key, cursor="crosshair",
                                png_compression_level=1,
                                on_click=lambda: _on_click(ed, node_id, key, image.width,
                                                           image.height))
    left, right = st.columns(2)
    left.button("Undo point", key=f"sam-undo:{node_id}", on_click=_undo, args=(ed, node_id))
    right.button("Clear points", key=f"sam-clear:{node_id}", on_click=_clear, args=(ed, node_id))
    st.caption(f"{len(points_of(ed, node_id))} points (green: foreground, red: background), "
               f"stored as [x, y, label] in {image.width}x{image.height} pixels")
