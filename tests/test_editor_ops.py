"""Editor logic without a browser: edit operations, widget choice, canvas data, files, runs."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch
from conftest import GRAPHS
from PIL import Image as PILImage
from tiny_fixture import shared_tiny_root

from graphkit.api import Graph
from graphkit.editor import files, ops, sampoints
from graphkit.editor.previews import draw_points, image_source, overlay, preview
from graphkit.editor.runner import start_run
from graphkit.editor.widgets import plan_widget
from graphkit.errors import GraphError
from graphkit.graph import GraphDoc, load_doc
from graphkit.pngmeta import encode_png
from graphkit.registry import registry
from graphkit.scheduler import Scheduler
from graphkit.types import Image, Mask, Prompt

REG = registry()


@pytest.fixture
def doc(graphs_dir: Path) -> GraphDoc:
    return load_doc(graphs_dir / "mask_composite.json")


# ids --------------------------------------------------------------------------------------
def test_unique_id_from_type_and_collisions() -> None:
    d = GraphDoc()
    assert ops.unique_id(d, "image.resize") == "resize"
    ops.add_node(d, REG, "image.resize")
    assert ops.unique_id(d, "image.resize") == "resize_2"
    ops.add_node(d, REG, "image.resize")
    assert list(d.nodes) == ["resize", "resize_2"]
    assert ops.unique_id(d, "resize_2") == "resize_3"
    assert ops.unique_id(d, "9 bad id!") == "n_9_bad_id"
    assert ops.unique_id(d, "") == "node"


def test_add_refuses_unknown_type_and_bad_or_taken_ids(doc: GraphDoc) -> None:
    with pytest.raises(GraphError, match="unknown node type"):
        ops.add_node(doc, REG, "nope.nothing")
    with pytest.raises(GraphError, match="exists"):
        ops.add_node(doc, REG, "image.resize", "photo")
    with pytest.raises(GraphError, match="node ids"):
        ops.add_node(doc, REG, "image.resize", "has space")
    new = ops.add_node(doc, REG, "mask.invert")
    assert doc.nodes[new].type == "mask.invert" and doc.nodes[new].params == {}


# remove, duplicate, rename ----------------------------------------------------------------
def test_remove_disconnects_readers_and_forgets_position(doc: GraphDoc) -> None:
    cut = ops.remove_node(doc, "soft")
    assert "soft" not in doc.nodes
    assert sorted(cut) == [("blend", "mask"), ("mask_view", "mask")]
    assert "mask" not in doc.nodes["blend"].inputs
    assert "soft" not in doc.ui["positions"]
    with pytest.raises(GraphError):
        ops.remove_node(doc, "soft")


def test_duplicate_copies_params_and_inputs_independently(doc: GraphDoc) -> None:
    new = ops.duplicate_node(doc, "grow")
    assert new == "grow_2"
    assert doc.nodes[new].params == {"pixels": 6}
    assert doc.nodes[new].inputs == {"mask": "region.mask"}
    ops.set_param(doc, new, "pixels", 9)
    assert doc.nodes["grow"].params["pixels"] == 6
    assert doc.ui["positions"][new] == [620, 80]  # grow is at [580, 0]


def test_rename_updates_links_positions_and_keeps_order(doc: GraphDoc) -> None:
    order = list(doc.nodes)
    ops.rename_node(doc, "soft", "feathered")
    assert list(doc.nodes) == [("feathered" if n == "soft" else n) for n in order]
    assert doc.nodes["blend"].inputs["mask"] == "feathered.mask"
    assert doc.nodes["mask_view"].inputs["mask"] == "feathered.mask"
    assert doc.ui["positions"]["feathered"] == [0, 408]
    assert Graph(doc, GRAPHS).validate() == []
    with pytest.raises(GraphError, match="exists"):
        ops.rename_node(doc, "feathered", "grow")
    with pytest.raises(GraphError, match="node ids"):
        ops.rename_node(doc, "feathered", "a.b")
    ops.rename_node(doc, "grow", "grow")  # a no-op


# links ------------------------------------------------------------------------------------
def test_compatible_sources_match_types_and_exclude_cycles(doc: GraphDoc) -> None:
    # grow's input takes a Mask: photo.mask, texture.mask, region.mask; not soft (downstream).
    assert ops.compatible_sources(doc, REG, "grow", "mask") == [
        "photo.mask", "texture.mask", "region.mask"]
    # region's image input: no descendant of region (grow, soft, blend...) is offered.
    assert ops.compatible_sources(doc, REG, "region", "image") == [
        "photo.image", "texture.image", "fit.image"]
    assert "blend.image" in ops.compatible_sources(doc, REG, "save_mask", "image")


def test_connect_refuses_wrong_type_cycle_and_missing(doc: GraphDoc) -> None:
    with pytest.raises(GraphError, match="gives Image but this input takes Mask"):
        ops.connect(doc, REG, "photo.image", "grow", "mask")
    with pytest.raises(GraphError, match="cycle"):
        ops.connect(doc, REG, "blend.image", "region", "image")
    with pytest.raises(GraphError, match="not an output"):
        ops.connect(doc, REG, "ghost.image", "region", "image")
    with pytest.raises(GraphError, match="no such input"):
        ops.connect(doc, REG, "photo.image", "region", "nope")
    ops.connect(doc, REG, "fit.image", "region", "image")
    assert doc.nodes["region"].inputs["image"] == "fit.image"


def test_disconnect_then_problem_is_on_that_field(doc: GraphDoc) -> None:
    ops.disconnect(doc, "blend", "mask")
    ops.disconnect(doc, "blend", "mask")  # twice is fine
    problems = Graph(doc, GRAPHS).validate()
    assert [(p.node, p.field, p.code) for p in problems] == [("blend", "mask", "missing_input")]


def test_set_and_reset_param_with_live_problem(doc: GraphDoc) -> None:
    ops.set_param(doc, "grow", "pixels", 10_000)
    problems = Graph(doc, GRAPHS).validate()
    assert [(p.node, p.field) for p in problems] == [("grow", "pixels")]
    ops.reset_param(doc, "grow", "pixels")
    assert "pixels" not in doc.nodes["grow"].params and Graph(doc, GRAPHS).validate() == []


# widgets ----------------------------------------------------------------------------------
def _param_plan(type_id: str, name: str):  # noqa: ANN202 - test helper
    return plan_widget(name, REG.get(type_id).params[name].schema)


def test_widgets_follow_the_schema() -> None:
    assert _param_plan("image.resize", "method").kind == "select"
    assert _param_plan("image.resize", "method").options == ["bicubic", "bilinear", "nearest",
                                                             "area"]
    width = _param_plan("image.resize", "width")
    assert (width.kind, width.numeric, width.minimum, width.maximum) == ("number", "int", 0,
                                                                         16384)
    grow = _param_plan("mask.grow", "pixels")
    assert (grow.kind, grow.minimum, grow.maximum) == ("slider", -512, 512)
    assert _param_plan("mask.threshold", "value").kind == "slider"
    assert _param_plan("text.prompt", "text").kind == "textarea"
    assert _param_plan("image.load", "path").kind == "text"
    assert _param_plan("mask.region", "box").kind == "json"
    assert plan_widget("seed", {"type": "integer", "minimum": 0}).kind == "seed"
    assert plan_widget("model", {"type": "string"}).kind == "model"
    assert plan_widget("flag", {"type": "boolean"}).kind == "checkbox"
    optional = plan_widget("revision", {"anyOf": [{"type": "string"}, {"type": "null"}]})
    assert optional.kind == "text"


# SAM points -------------------------------------------------------------------------------
def test_picker_clicks_become_image_pixels() -> None:
    # a 640x480 image shown 448 wide (336 high): display pixels scale by 640/448
    x, y = sampoints.click_to_pixels({"x": 224, "y": 168, "width": 448, "height": 336}, 640, 480)
    assert (x, y) == (320.0, 240.0)
    assert sampoints.click_to_pixels({"x": 448, "y": 336, "width": 448, "height": 336},
                                     640, 480) == (639.0, 479.0)  # the edge stays inside
    assert sampoints.click_to_pixels({"x": 10, "y": 20}, 256, 256) == (10.0, 20.0)  # unscaled


# previews ---------------------------------------------------------------------------------
def test_previews_of_values_and_mask_over_its_image(doc: GraphDoc) -> None:
    img = Image(torch.zeros(1, 3, 8, 6))
    mask = Mask(torch.ones(1, 1, 8, 6))
    shown = preview("mask", mask, img)
    assert shown.image is not None and shown.image.size == (6, 8)
    assert shown.image.getpixel((0, 0))[0] > 100  # tinted over black
    assert "100.0% covered" in shown.text
    assert preview("image", img).image.size == (6, 8)
    assert preview("prompt", Prompt("a fox", "blur")).text.startswith("prompt: a fox")
    assert image_source(doc, REG, "soft") == ("photo", "image")
    assert image_source(doc, REG, "photo") is None
    pic = overlay(PILImage.new("RGB", (4, 4)), PILImage.new("L", (4, 4), 0))
    assert pic.getpixel((1, 1)) == (0, 0, 0)
    dotted = draw_points(PILImage.new("RGB", (40, 40)), [[10, 10, 1], [30, 30, 0], "junk"])
    assert dotted.getpixel((10, 10))[1] > 150 and dotted.getpixel((30, 30))[0] > 150


# files ------------------------------------------------------------------------------------
def test_uploads_json_png_and_bad_ones(doc: GraphDoc, tmp_path: Path) -> None:
    text = Graph(doc).dumps()
    opened = files.open_upload("g.json", text.encode(), tmp_path)
    assert list(opened.doc.nodes) == sorted(doc.nodes)
    png = encode_png(PILImage.new("RGB", (4, 4)), text)
    assert set(files.open_upload("out.png", png, tmp_path).doc.nodes) == set(doc.nodes)
    with pytest.raises(GraphError, match="malformed JSON"):
        files.open_upload("bad.json", b"{nodes:", tmp_path)
    with pytest.raises(GraphError, match="carries no graphkit graph"):
        files.open_upload("plain.png", encode_png(PILImage.new("RGB", (2, 2)), ""), tmp_path)
    with pytest.raises(GraphError, match="the PNG is truncated"):
        files.open_upload("broken.png", b"\x89PNG\r\n\x1a\nrubbish", tmp_path)
    with pytest.raises(GraphError, match="unknown key"):
        files.open_upload("g.json", json.dumps({"nodes": {}, "extra": 1}).encode(), tmp_path)


def test_session_round_trip_and_garbage(doc: GraphDoc, tmp_path: Path) -> None:
    path = tmp_path / "ws" / "tab.json"
    graph_file = tmp_path / "g.json"
    files.save_session(path, files.Opened(doc, tmp_path, "g.json", graph_file, "ab12"))
    back = files.load_session(path)
    assert back is not None and back.base_dir == tmp_path and back.source == "g.json"
    assert (back.file, back.digest) == (graph_file, "ab12")
    assert back.doc.nodes == doc.nodes
    path.write_text("{not json")
    assert files.load_session(path) is None
    assert files.load_session(tmp_path / "missing.json") is None
    assert files.examples_dir().name == "graphs"


def test_image_png_carries_the_graph(doc: GraphDoc, tmp_path: Path) -> None:
    data = files.image_png(torch.rand(1, 3, 5, 7), Graph(doc).dumps(), "blend")
    assert set(files.doc_from_png(data).nodes) == set(doc.nodes)


# runs -------------------------------------------------------------------------------------
def test_edit_and_rerun_runs_only_the_edited_node_and_descendants(
    doc: GraphDoc, graphs_dir: Path, tmp_path: Path
) -> None:
    sched = Scheduler()
    graph = Graph(doc, graphs_dir)
    first = start_run(graph, tmp_path / "out", scheduler=sched, background=False)
    assert first.ok and len(first.executed) == 10 and first.cached == []
    ops.set_param(doc, "grow", "pixels", 12)
    second = start_run(graph, tmp_path / "out", scheduler=sched, background=False)
    assert second.ok
    assert set(second.executed) == {"grow"} | ops.downstream(doc, "grow")
    assert set(second.executed) == {"grow", "soft", "blend", "mask_view", "save", "save_mask"}
    assert set(second.cached) == {"photo", "texture", "fit", "region"}
    assert second.nodes["photo"].state == "cached" and second.nodes["grow"].state == "done"
    assert "6 ran, 4 cached" in second.summary


def test_run_reports_problems_and_node_failures_without_raising(
    doc: GraphDoc, graphs_dir: Path, tmp_path: Path
) -> None:
    ops.disconnect(doc, "blend", "mask")
    bad = start_run(Graph(doc, graphs_dir), tmp_path / "out", scheduler=Scheduler(),
                    background=False)
    assert not bad.ok and bad.result is None
    assert bad.problems == ["node 'blend' 'mask': required input (Mask) is not connected"]
    ops.connect(doc, REG, "soft.mask", "blend", "mask")
    ops.set_param(doc, "photo", "path", "inputs/missing.png")  # refused before the run
    missing = start_run(Graph(doc, graphs_dir), tmp_path / "out", scheduler=Scheduler(),
                        background=False)
    assert not missing.ok and missing.result is None
    assert missing.problems[0].startswith("node 'photo' 'path': file 'inputs/missing.png' not")
    (tmp_path / "broken.png").write_text("not an image")  # there, but fails when it runs
    ops.set_param(doc, "photo", "path", "broken.png")
    failed = start_run(Graph(doc, graphs_dir), tmp_path / "out", inputs=[tmp_path],
                       scheduler=Scheduler(), background=False)
    assert not failed.ok and failed.nodes["photo"].state == "failed"
    assert "not a readable image" in failed.nodes["photo"].message
    assert failed.nodes["blend"].state == "skipped"


def test_cancel_stops_a_background_run(doc: GraphDoc, graphs_dir: Path, tmp_path: Path) -> None:
    graph = Graph(doc, graphs_dir)
    record = start_run(graph, tmp_path / "out", scheduler=Scheduler(), background=True)
    record.control.cancel()
    record.thread.join(timeout=30)
    assert not record.running
    assert record.result is not None
    assert record.result.cancelled or record.result.ok  # it may finish before the cancel lands


def test_a_node_stopped_by_cancel_is_not_left_running() -> None:
    from graphkit.editor.runner import RunRecord
    from graphkit.editor.runview import status_words
    from graphkit.events import NodeCancelled, NodeProgress, NodeStarted

    record = RunRecord(graph_json="{}")
    record(NodeStarted("r", "gen", "sdxl.text2image"))
    record(NodeProgress("r", "gen", 2, 50))
    record(NodeCancelled("r", "gen", "sdxl.text2image", 0.5))  # as the scheduler emits it
    record.settle()
    status = record.snapshot()["gen"]
    assert status.state == "cancelled" and status_words(status) == "cancelled at step 2/50"

    crashed = RunRecord(graph_json="{}")  # a run that raised: no last event for the node
    crashed(NodeStarted("r", "gen", "sdxl.text2image"))
    crashed.settle()
    assert crashed.snapshot()["gen"].state == "failed"


def _diffusion_registered() -> bool:
    if REG.get("sdxl.text2image") is None:
        try:
            importlib.import_module("nodes.sdxl")
        except Exception:  # noqa: BLE001 - skipped below
            return False
    return REG.get("sdxl.text2image") is not None


def test_tiny_sdxl_edit_reruns_only_generation(tmp_path: Path,
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    if not _diffusion_registered():
        pytest.skip("sdxl nodes are not available")
    from graphkit import models

    models.configure(profile="tiny", tiny_root=shared_tiny_root(tmp_path_factory), device="cpu")
    d = GraphDoc(name="tiny sdxl")
    ops.add_node(d, REG, "text.prompt", "prompt", {"text": "a red fox"})
    ops.add_node(d, REG, "sdxl.text2image", "gen", {"width": 64, "height": 64, "steps": 2})
    ops.add_node(d, REG, "image.save", "save")
    ops.connect(d, REG, "prompt.prompt", "gen", "prompt")
    ops.connect(d, REG, "gen.image", "save", "image")
    sched, graph = Scheduler(), Graph(d, tmp_path)
    first = start_run(graph, tmp_path / "out", scheduler=sched, background=False)
    assert first.ok, first.summary
    assert first.nodes["gen"].total == 2
    ops.set_param(d, "gen", "seed", 5)
    second = start_run(graph, tmp_path / "out", scheduler=sched, background=False)
    assert second.ok and second.executed == ["gen", "save"] and second.cached == ["prompt"]


def test_added_duplicated_and_pasted_saves_write_their_own_files(doc: GraphDoc) -> None:
    first = ops.add_node(doc, REG, "image.save")
    second = ops.add_node(doc, REG, "image.save")
    copy_id = ops.duplicate_node(doc, "save", reg=REG)
    pasted = ops.paste_nodes(doc, ops.copy_nodes(doc, [copy_id, first]), None, reg=REG)
    names = [doc.nodes[n].params.get("name", "image") for n in
             ("save", first, second, copy_id, *pasted)]
    assert len({n.casefold() for n in names}) == len(names), names
    assert doc.nodes[second].params["name"] == "image_2"
    problems = Graph(doc, GRAPHS).validate()
    assert not [p for p in problems if p.code == "duplicate_output"], problems
