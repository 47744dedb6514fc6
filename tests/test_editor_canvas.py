"""The canvas without a browser: the data it draws, the edits it sends (checked as untrusted
input, then applied through the editing operations), layout, undo history, input images."""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from graphkit.api import Graph
from graphkit.editor import canvas, canvas_events, inputs, layout, ops
from graphkit.editor.history import MAX_STEPS, History
from graphkit.editor.runner import NodeStatus
from graphkit.editor.session import Editor, tab_file
from graphkit.errors import GraphError
from graphkit.graph import GraphDoc, dumps_doc, load_doc
from graphkit.registry import registry
from graphkit.types import can_connect

REG = registry()


@pytest.fixture
def ws(tmp_path: Path, graphs_dir: Path) -> Path:
    folder = tmp_path / "ws"
    folder.mkdir()
    shutil.copyfile(graphs_dir / "mask_composite.json", folder / "masks.json")
    shutil.copytree(graphs_dir / "inputs", folder / "inputs")
    return folder


@pytest.fixture
def ed(ws: Path) -> Editor:
    return Editor.start(ws, "tab001", ws / "masks.json")


def send(ed: Editor, *events: dict[str, Any], client: str = "c1") -> None:
    """Deliver events as the canvas does, numbering them after the last one applied."""
    first = ed.acked.get(client, 0) + 1
    payload = {"client": client, "sent": 1,
               "events": [{"seq": first + i, **e} for i, e in enumerate(events)]}
    canvas_events.handle(ed, payload)


def errors(ed: Editor) -> list[str]:
    found = [text for level, text in ed.notices if level == "error"]
    ed.notices.clear()
    return found


# the data the canvas draws -------------------------------------------------------------------
def test_compatibility_table_is_graphkits_rule(toy: Any) -> None:
    tables = canvas.type_tables(toy.reg)
    outs = {t.name: t for s in toy.reg.specs.values() for t in s.outputs.values()}
    ins = {i.type.name: i.type for s in toy.reg.specs.values() for i in s.inputs.values()}
    for out_name, out in outs.items():
        assert tables.accepts[out_name] == sorted(n for n, t in ins.items()
                                                  if can_connect(out, t))
    assert "Latent" in tables.accepts["Latent[space=sdxl]"]  # any latent decoder takes it
    assert "Latent[space=kandinsky2.2]" not in tables.accepts["Latent[space=sdxl]"]
    assert {c["type"] for c in tables.catalog} == set(toy.reg.specs)


def test_node_views_carry_ports_types_params_problems_and_state(ed: Editor) -> None:
    ops.disconnect(ed.doc, "blend", "mask")
    problems = ed.checked().problems
    statuses = {"grow": NodeStatus("running", 3, 8), "photo": NodeStatus("cached")}
    data = canvas.canvas_data(ed.doc, ed.reg, problems, statuses,
                              canvas.CanvasState(rev=4, graph=1, selected=["grow", "gone"]))
    json.dumps(data)  # plain JSON
    views = {v["id"]: v for v in data["nodes"]}
    blend = views["blend"]
    assert [(p["name"], p["type"], p["connected"]) for p in blend["inputs"]] == [
        ("background", "Image", True), ("foreground", "Image", True), ("mask", "Mask", False)]
    assert blend["outputs"] == [{"name": "image", "type": "Image"}]
    assert blend["problems"] == ["mask: required input (Mask) is not connected"]
    assert views["grow"]["params"] == [["pixels", "6"]]
    assert views["grow"]["status"] == {"state": "running", "step": 3, "total": 8,
                                       "text": "running step 3/8"}
    assert views["photo"]["status"]["state"] == "cached" and views["save"]["status"] is None
    assert (views["grow"]["x"], views["grow"]["y"]) == (580, 0)
    assert views["photo"]["colour"] == canvas.CATEGORY_COLOURS["image"]
    assert data["selected"] == ["grow"] and data["rev"] == 4
    edges = {(e["source"], e["sourcePort"], e["target"], e["targetPort"]): e["type"]
             for e in data["edges"]}
    assert edges[("region", "mask", "grow", "mask")] == "Mask"
    assert ("soft", "mask", "blend", "mask") not in edges
    assert data["colours"]["Mask"] == canvas.TYPE_COLOURS["Mask"]


# malformed messages ---------------------------------------------------------------------------
GOOD = {"client": "c1", "sent": 1, "events": [{"seq": 1, "op": "undo"}]}
BAD_MESSAGES = [
    None, [], "x", {"client": "c1"}, {**GOOD, "extra": 1}, {**GOOD, "client": "has space"},
    {**GOOD, "client": "x" * 41}, {**GOOD, "events": []}, {**GOOD, "events": {}},
    {**GOOD, "events": [{"seq": i + 1, "op": "undo"} for i in range(101)]},
    {**GOOD, "events": [{"seq": 2, "op": "undo"}, {"seq": 2, "op": "redo"}]},
    {**GOOD, "events": [{"op": "undo"}]}, {**GOOD, "events": [{"seq": True, "op": "undo"}]},
    {**GOOD, "events": [{"seq": -1, "op": "undo"}]}, {**GOOD, "events": [{"seq": 2**60,
                                                                         "op": "undo"}]},
    {**GOOD, "events": [{"seq": 1, "op": "rm -rf"}]},
    {**GOOD, "events": [{"seq": 1, "op": "undo", "node": "a"}]},
    {**GOOD, "events": [{"seq": 1, "op": "connect", "src": "a.b"}]},
    {**GOOD, "events": [{"seq": 1, "op": "connect", "src": "a.b.c", "dst": "x.y"}]},
    {**GOOD, "events": [{"seq": 1, "op": "connect", "src": "a.b\n", "dst": "x.y"}]},
    {**GOOD, "events": [{"seq": 1, "op": "connect", "src": "a.b", "dst": "x.y\u0661"}]},
    {**GOOD, "events": [{"seq": 1, "op": "connect", "src": "1a.b", "dst": "x.y"}]},
    {**GOOD, "events": [{"seq": 1, "op": "connect", "src": ["a", "b"], "dst": "x.y"}]},
    {**GOOD, "events": [{"seq": 1, "op": "move", "positions": {"grow": [math.nan, 0]}}]},
    {**GOOD, "events": [{"seq": 1, "op": "move", "positions": {"grow": [math.inf, 0]}}]},
    {**GOOD, "events": [{"seq": 1, "op": "move", "positions": {"grow": [1e7, 0]}}]},
    {**GOOD, "events": [{"seq": 1, "op": "move", "positions": {"grow": [True, 0]}}]},
    {**GOOD, "events": [{"seq": 1, "op": "move", "positions": {"grow": ["1", 0]}}]},
    {**GOOD, "events": [{"seq": 1, "op": "move", "positions": {"grow": [1, 2, 3]}}]},
    {**GOOD, "events": [{"seq": 1, "op": "move", "positions": {"a b": [1, 2]}}]},
    {**GOOD, "events": [{"seq": 1, "op": "move", "positions": [["grow", 1, 2]]}]},
    {**GOOD, "events": [{"seq": 1, "op": "delete", "nodes": "grow", "inputs": []}]},
    {**GOOD, "events": [{"seq": 1, "op": "delete", "nodes": ["g"] * 10_001, "inputs": []}]},
    {**GOOD, "events": [{"seq": 1, "op": "add", "type": "../etc", "x": 0, "y": 0}]},
    {**GOOD, "events": [{"seq": 1, "op": "add", "type": "a.b" * 100, "x": 0, "y": 0}]},
    {**GOOD, "events": [{"seq": 1, "op": "paste", "x": 0, "y": 0, "keep_inputs": "yes"}]},
    {**GOOD, "events": [{"seq": 1, "op": "run_to", "node": {"id": "grow"}}]},
]


@pytest.mark.parametrize("message", BAD_MESSAGES)
def test_malformed_messages_are_refused_in_one_line(ed: Editor, message: Any) -> None:
    before = dumps_doc(ed.doc)
    canvas_events.handle(ed, message)
    (line,) = errors(ed)
    assert line.startswith("ignored an edit from the canvas: ") and "\n" not in line
    assert len(line) < 300
    assert dumps_doc(ed.doc) == before and ed.acked == {}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20)
ops_names = st.sampled_from(sorted(canvas_events.FIELDS))
node_ids = st.sampled_from(["grow", "soft", "photo", "blend", "nope", "a.b", "", "x" * 70])
field_values = st.one_of(json_values, node_ids, st.lists(node_ids, max_size=3),
                         st.sampled_from(["grow.mask", "photo.image", "soft.mask", "x.y"]),
                         st.dictionaries(node_ids, st.lists(st.floats(), max_size=3),
                                         max_size=3))
events = st.fixed_dictionaries({"seq": st.integers(-2, 50), "op": ops_names},
                               optional={k: field_values for k in
                                         ("src", "dst", "nodes", "inputs", "positions", "type",
                                          "x", "y", "from", "to", "keep_inputs", "node")})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(message=st.one_of(json_values, st.fixed_dictionaries(
    {"client": st.sampled_from(["c1", "c2", "bad id"]), "events": st.lists(events, max_size=5)})))
def test_any_message_leaves_a_valid_graph(ed: Editor, message: Any) -> None:
    ed.notices.clear()
    ed.run_graph = lambda targets=None: False  # type: ignore[method-assign] - no runs here
    ed.save = lambda: False  # type: ignore[method-assign] - nor writes
    canvas_events.handle(ed, message)  # never raises
    text = dumps_doc(ed.doc)
    assert load_doc is not None and GraphDoc.model_validate(json.loads(text))
    assert all("\n" not in line for _, line in ed.notices)
    assert all(isinstance(p, list) and len(p) == 2 and all(abs(v) <= 1e6 for v in p)
               for p in ed.doc.ui["positions"].values())


# edits ----------------------------------------------------------------------------------------
def test_connect_replaces_a_link_and_refusals_change_nothing(ed: Editor) -> None:
    send(ed, {"op": "connect", "src": "texture.image", "dst": "region.image"})
    assert ed.doc.nodes["region"].inputs["image"] == "texture.image" and not errors(ed)
    before = dumps_doc(ed.doc)
    send(ed, {"op": "connect", "src": "photo.image", "dst": "grow.mask"})
    assert "gives Image but this input takes Mask" in errors(ed)[0]
    send(ed, {"op": "connect", "src": "blend.image", "dst": "region.image"})
    assert "cycle" in errors(ed)[0]
    send(ed, {"op": "connect", "src": "ghost.image", "dst": "region.image"})
    assert errors(ed)
    assert dumps_doc(ed.doc) == before


def test_disconnect_move_delete(ed: Editor) -> None:
    send(ed, {"op": "disconnect", "dst": "blend.mask"},
         {"op": "move", "positions": {"grow": [12.4, -30], "soft": [900, 40]}})
    assert "mask" not in ed.doc.nodes["blend"].inputs
    assert ed.doc.ui["positions"]["grow"] == [12, -30]
    assert ed.doc.ui["positions"]["soft"] == [900, 40]
    send(ed, {"op": "move", "positions": {"ghost": [0, 0]}})
    assert "no such node" in errors(ed)[0]
    send(ed, {"op": "select", "nodes": ["soft", "grow"]})
    send(ed, {"op": "delete", "nodes": ["soft"], "inputs": ["save.image"]})
    assert "soft" not in ed.doc.nodes and "soft" not in ed.doc.ui["positions"]
    assert "image" not in ed.doc.nodes["save"].inputs
    assert ed.canvas_selection == ["grow"] and not errors(ed)


def test_undo_redo_cover_every_edit_as_one_step_each(ed: Editor) -> None:
    original = dumps_doc(ed.doc)
    send(ed, {"op": "move", "positions": {"grow": [5, 5]}})
    send(ed, {"op": "disconnect", "dst": "blend.mask"})
    ops.set_param(ed.doc, "grow", "pixels", 30)  # an inspector edit...
    ed.commit()  # ...committed when the page runs
    after = dumps_doc(ed.doc)
    for _ in range(3):
        send(ed, {"op": "undo"})
    assert dumps_doc(ed.doc) == original
    send(ed, {"op": "undo"})
    assert ("info", "nothing to undo") in ed.notices
    send(ed, {"op": "redo"}, {"op": "redo"}, {"op": "redo"})
    assert dumps_doc(ed.doc) == after
    send(ed, {"op": "undo"}, {"op": "move", "positions": {"soft": [1, 1]}})
    assert not ed.history.redo_stack  # a new edit after an undo ends the redo branch


def test_an_edit_that_breaks_is_one_line_and_not_applied_again(
        ed: Editor, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("out of\nmemory")

    monkeypatch.setattr(ops, "move_nodes", broken)
    message = {"client": "cz", "sent": 1, "events": [
        {"seq": 1, "op": "move", "positions": {"grow": [1, 1]}},
        {"seq": 2, "op": "disconnect", "dst": "blend.mask"}]}
    canvas_events.handle(ed, message)
    assert errors(ed) == ["the canvas edit 'move' failed: RuntimeError: out of memory"]
    assert "mask" not in ed.doc.nodes["blend"].inputs  # the next edit still applied
    canvas_events.handle(ed, message)  # resent: nothing happens twice
    assert errors(ed) == [] and ed.acked["cz"] == 2


def test_a_resent_message_is_applied_once(ed: Editor) -> None:
    message = {"client": "cx", "sent": 1, "events": [
        {"seq": 1, "op": "add", "type": "mask.invert", "x": 0, "y": 500}]}
    canvas_events.handle(ed, message)
    canvas_events.handle(ed, {**message, "sent": 2})
    assert [n for n in ed.doc.nodes if n.startswith("invert")] == ["invert"]
    assert ed.acked["cx"] == 1


def test_add_a_node_prewired_from_an_output_or_into_an_input(ed: Editor) -> None:
    send(ed, {"op": "add", "type": "mask.invert", "x": 100, "y": 700, "from": "soft.mask"})
    assert ed.doc.nodes["invert"].inputs == {"mask": "soft.mask"}
    assert ed.doc.ui["positions"]["invert"] == [100, 700]
    assert ed.selected == ed.focus == "invert"
    send(ed, {"op": "add", "type": "image.load", "x": -300, "y": 0, "to": "blend.foreground"})
    assert ed.doc.nodes["blend"].inputs["foreground"] == "load.image"
    before = dumps_doc(ed.doc)
    send(ed, {"op": "add", "type": "text.prompt", "x": 0, "y": 0, "from": "soft.mask"})
    assert "has no input that takes" in errors(ed)[0]
    send(ed, {"op": "add", "type": "no.such", "x": 0, "y": 0})
    assert "unknown node type" in errors(ed)[0]
    assert dumps_doc(ed.doc) == before


def test_copy_paste_and_duplicate_make_new_ids(ed: Editor) -> None:
    send(ed, {"op": "copy", "nodes": ["grow", "soft"]})
    send(ed, {"op": "paste", "x": 0, "y": 800, "keep_inputs": False})
    assert ed.doc.nodes["grow_2"].inputs == {}  # region -> grow came from outside the copy
    assert ed.doc.nodes["soft_2"].inputs == {"mask": "grow_2.mask"}  # remapped
    pos = ed.doc.ui["positions"]
    left = min(pos["grow"][0], pos["soft"][0])
    top = min(pos["grow"][1], pos["soft"][1])
    for old, new in (("grow", "grow_2"), ("soft", "soft_2")):  # the arrangement is kept
        assert pos[new] == [pos[old][0] - left, pos[old][1] - top + 800]
    assert sorted(ed.canvas_selection) == ["grow_2", "soft_2"]
    send(ed, {"op": "delete", "nodes": ["grow"], "inputs": []})  # the clipboard is a copy
    send(ed, {"op": "paste", "x": 0, "y": 1200, "keep_inputs": True})
    assert sorted(ed.canvas_selection) == ["grow", "soft_3"]  # free ids again
    assert ed.doc.nodes["soft_3"].inputs == {"mask": "grow.mask"}
    assert ed.doc.nodes["grow"].inputs == {"mask": "region.mask"}  # kept: Ctrl+Shift+V
    send(ed, {"op": "duplicate", "nodes": ["fit"]})
    assert ed.doc.nodes["fit_2"].inputs == {"image": "texture.image"}
    assert ed.selected == "fit_2" and not errors(ed)
    assert Graph(ed.doc).validate() == [] or all(p.node != "fit_2" for p in
                                                Graph(ed.doc).validate())


def test_save_and_run_to_here_from_the_canvas(ed: Editor, ws: Path) -> None:
    send(ed, {"op": "move", "positions": {"grow": [1, 2]}})
    send(ed, {"op": "save"})
    assert load_doc(ws / "masks.json").ui["positions"]["grow"] == [1, 2]
    send(ed, {"op": "run_to", "node": "soft"})
    ed.run.thread.join(timeout=60)
    assert ed.run.ok and set(ed.run.executed) == {"photo", "region", "grow", "soft"}
    send(ed, {"op": "run_to", "node": "ghost"})
    assert "no such node" in errors(ed)[0]


# layout ----------------------------------------------------------------------------------------
def chain_doc(n: int) -> GraphDoc:
    doc = GraphDoc(name="chain")
    ops.add_node(doc, REG, "image.load", "n0", {"path": "inputs/photo.png"})
    for i in range(1, n):
        ops.add_node(doc, REG, "image.resize", f"n{i}", {"width": 64, "height": 64})
        ops.connect(doc, REG, f"n{i - 1}.image", f"n{i}", "image")
    return doc


def test_a_long_chain_wraps_into_rows_sources_first() -> None:
    doc = chain_doc(50)
    assert layout.place_missing(doc, REG) == sorted(doc.nodes)
    where = layout.positions(doc)
    xs = sorted({x for x, _ in where.values()})
    assert xs == [i * layout.COLUMN_PITCH for i in range(layout.ROW_LAYERS)]
    rows = sorted({y for _, y in where.values()})
    assert len(rows) == math.ceil(50 / layout.ROW_LAYERS)
    order = sorted(where, key=lambda n: (where[n][1], where[n][0]))
    assert order == [f"n{i}" for i in range(50)]  # reads like text: left to right, then down
    heights = {n: layout.node_height(doc, REG, n) for n in doc.nodes}
    boxes = [(x, y, x + layout.NODE_WIDTH, y + heights[n]) for n, (x, y) in where.items()]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_short_graphs_stay_on_one_row_and_nothing_moves_afterwards(graphs_dir: Path) -> None:
    doc = load_doc(graphs_dir / "crop_resize.json")
    layout.place_missing(doc, REG)
    before = dict(layout.positions(doc))
    assert len({y for _x, y in before.values()}) >= 2 and min(x for x, _ in before.values()) == 0
    assert layout.place_missing(doc, REG) == []
    ops.add_wired(doc, REG, "mask.invert", layout.beside(doc, REG, "hard"), "hard.mask")
    after = layout.positions(doc)
    assert {k: after[k] for k in before} == before
    new = after["invert"]
    assert all(new != p for p in before.values())


def test_nodes_without_positions_go_below_the_others(graphs_dir: Path) -> None:
    doc = load_doc(graphs_dir / "mask_composite.json")
    ops.add_node(doc, REG, "mask.invert", "loose")
    placed = layout.place_missing(doc, REG)
    assert placed == ["loose"]
    lowest = max(y + layout.node_height(doc, REG, n) for n, (_x, y) in
                 layout.positions(doc).items() if n != "loose")
    assert layout.positions(doc)["loose"][1] > lowest


# history ---------------------------------------------------------------------------------------
def test_history_commit_undo_redo_and_limit() -> None:
    h = History("a")
    assert not h.commit("a") and h.commit("b") and h.commit("c")
    assert h.undo() == "b" and h.undo() == "a" and h.undo() is None
    assert h.redo() == "b" and h.commit("x") and h.redo() is None
    for i in range(MAX_STEPS + 50):
        h.commit(str(i))
    assert len(h.undo_stack) == MAX_STEPS


# tabs ------------------------------------------------------------------------------------------
def test_each_tab_has_its_own_autosave(ws: Path) -> None:
    one = Editor.start(ws, "aaaaaa", ws / "masks.json")
    two = Editor.start(ws, "bbbbbb", ws / "masks.json")
    ops.set_param(one.doc, "grow", "pixels", 1)
    ops.set_param(two.doc, "grow", "pixels", 2)
    assert one.autosave() and two.autosave()
    assert Editor.start(ws, "aaaaaa").doc.nodes["grow"].params["pixels"] == 1
    assert Editor.start(ws, "bbbbbb").doc.nodes["grow"].params["pixels"] == 2
    assert tab_file(ws, "aaaaaa").is_file() and tab_file(ws, "bbbbbb").is_file()
    fresh = Editor.start(ws, "../../etc", None)  # not a tab id: a new one
    assert fresh.tab != "../../etc" and fresh.autosave_path.parent == tab_file(ws, "x").parent


# input images ----------------------------------------------------------------------------------
def png_bytes(size: tuple[int, int] = (8, 6), colour: tuple[int, int, int] = (1, 2, 3)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_uploaded_images_are_checked_named_and_kept(tmp_path: Path) -> None:
    assert inputs.safe_name("../../a b$.PNG") == "a_b.png"
    assert inputs.safe_name("noext") == "noext.png"
    first = inputs.save_upload(tmp_path, "photo.png", png_bytes())
    assert first == "inputs/photo.png"
    assert inputs.save_upload(tmp_path, "photo.png", png_bytes()) == first  # same bytes
    assert inputs.save_upload(tmp_path, "photo.png", png_bytes(colour=(9, 9, 9))) == (
        "inputs/photo_2.png")
    buf = io.BytesIO()
    PILImage.new("RGB", (4, 4)).save(buf, format="JPEG")
    assert inputs.save_upload(tmp_path, "shot.png", buf.getvalue()) == "inputs/shot.jpg"
    assert inputs.list_images(tmp_path) == ["inputs/photo.png", "inputs/photo_2.png",
                                            "inputs/shot.jpg"]
    for data, words in [(b"GIF89a....", "not a PNG, JPEG or WebP"),
                        (b"\x89PNG\r\n\x1a\nbroken", "not")]:
        with pytest.raises(GraphError, match=words):
            inputs.save_upload(tmp_path, "bad.png", data)
    assert not (tmp_path / "inputs" / "bad.png").exists()


def test_a_missing_input_file_is_a_problem_before_any_run(ed: Editor, ws: Path) -> None:
    assert ed.problems() == []
    ops.set_param(ed.doc, "texture", "path", "inputs/none.png")
    problems = ed.problems()
    assert [(p.node, p.field) for p in problems] == [("texture", "path")]
    assert "not found" in problems[0].message
    assert ed.run_graph(["blend"]) is False  # run to here: refused too
    assert any("texture" in text for _level, text in ed.notices)
    assert ed.run is None
    assert ed.run_graph(["grow"]) is True  # needs no texture
