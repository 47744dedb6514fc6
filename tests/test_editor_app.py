"""The editor app's native widgets under streamlit's AppTest, and the ``edit`` launcher.

The canvas itself is a browser component (tests/test_editor_canvas_browser.py); here the
page around it: files, saving, the inspector, runs, uploads, messages.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image as PILImage
from streamlit.testing.v1 import AppTest

from graphkit.api import Graph, default_scheduler
from graphkit.editor import launch
from graphkit.editor.files import load_session, read_digest
from graphkit.editor.session import FILE_ENV, WORKSPACE_ENV
from graphkit.editor.text import md_text
from graphkit.graph import GraphDoc, load_doc
from graphkit.pngmeta import encode_png

APP = str(Path(__file__).resolve().parent.parent / "graphkit" / "editor" / "app.py")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graphs_dir: Path) -> Path:
    """A workspace holding a copy of the mask example (opened as the launch file)."""
    default_scheduler().cache.clear()  # the app runs on the process cache: start it cold
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copyfile(graphs_dir / "mask_composite.json", ws / "masks.json")
    shutil.copytree(graphs_dir / "inputs", ws / "inputs")
    monkeypatch.setenv(WORKSPACE_ENV, str(ws))
    monkeypatch.setenv(FILE_ENV, str(ws / "masks.json"))
    return ws


def start(tab: str | None = None) -> AppTest:
    """A new browser tab (a new session); ``tab`` is the id in the page address."""
    at = AppTest.from_file(APP, default_timeout=60)
    if tab is not None:
        at.query_params["tab"] = tab
    at.run()
    assert not at.exception, at.exception
    return at


def editor_of(at: AppTest):  # noqa: ANN201 - the tab's Editor
    return at.session_state["editor"]


def widget(elements, suffix: str):  # noqa: ANN001, ANN201 - AppTest element lists
    """The widget whose key ends with ``suffix`` (keys carry a revision prefix)."""
    found = [w for w in elements if w.key and w.key.endswith(suffix)]
    assert len(found) == 1, [w.key for w in elements]
    return found[0]


def select_node(at: AppTest, node_id: str) -> AppTest:
    picker = [s for s in at.selectbox if s.label == "Node"][0]
    return picker.set_value(node_id).run()


def finish_run(at: AppTest) -> AppTest:
    ed = editor_of(at)
    if ed.run is not None and ed.run.thread is not None:
        ed.run.thread.join(timeout=120)
    return at.run()


def autosaved(at: AppTest) -> GraphDoc:
    opened = load_session(editor_of(at).autosave_path)
    assert opened is not None
    return opened.doc


def texts(at: AppTest) -> list[str]:
    return [str(e.value) for kind in ("markdown", "caption", "error", "warning", "info",
                                      "success", "subheader") for e in at.get(kind)]


def bomb_png() -> bytes:
    """A tiny PNG whose header claims 100000 x 100000 pixels (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


# opening, editing, autosave -----------------------------------------------------------------
def test_opens_the_launch_file_and_shows_where_outputs_go(workspace: Path) -> None:
    from graphkit import models

    models.configure(profile="hub")  # whatever other tests left in this process
    try:
        at = start()
    finally:
        models.configure()
    assert at.subheader[0].value == md_text("Ellipse mask: texture composited into a photo")
    picker = [s for s in at.selectbox if s.label == "Node"][0]
    assert picker.options[0] == "photo  (image.load)"  # in the file's order
    assert len(picker.options) == 10
    assert any(b.label == "Run" for b in at.button)
    shown = " ".join(texts(at))
    assert md_text(f"File {workspace / 'masks.json'}") in shown
    assert md_text(str(workspace / "out")) in shown
    assert not [m for m in at.markdown if "-badge[" in m.value]  # the real models
    assert at.query_params["tab"] in (editor_of(at).tab, [editor_of(at).tab])


def test_param_edit_shows_problem_and_is_autosaved(workspace: Path) -> None:
    at = select_node(start(), "grow")
    widget(at.slider, ":grow:param:pixels").set_value(40).run()
    assert autosaved(at).nodes["grow"].params["pixels"] == 40
    at = select_node(at, "photo")
    widget(at.text_input, ":photo:param:path").input("").run()
    assert any("at least 1 character" in m.value for m in at.markdown)
    assert autosaved(at).nodes["photo"].params["path"] == ""


def test_add_connect_rename_remove(workspace: Path) -> None:
    at = start()
    at.button(key="add:mask.invert").click().run()
    ed = editor_of(at)
    assert ed.selected == "invert" and "invert" in ed.doc.nodes
    assert "invert" in ed.doc.ui["positions"]  # placed where nothing else is
    assert any("required input \\(Mask\\) is not connected" in m.value for m in at.markdown)
    link = widget(at.selectbox, ":invert:input:mask")
    assert link.options[0] == "(not connected)"
    assert sorted(link.options[1:]) == [f"{r}.mask  (Mask)" for r in
                                        ("grow", "photo", "region", "soft", "texture")]
    link.set_value("soft.mask").run()
    assert ed.doc.nodes["invert"].inputs == {"mask": "soft.mask"}
    widget(at.text_input, ":invert:rename").input("outside").run()
    assert ed.selected == "outside" and "invert" not in ed.doc.nodes
    at.button(key="add:mask.to_image").click().run()
    widget(at.selectbox, ":to_image:input:mask").set_value("outside.mask").run()
    widget(at.text_input, ":to_image:rename").input("view").run()
    select_node(at, "outside")
    widget(at.button, ":outside:remove").click().run()
    assert "outside" not in ed.doc.nodes and ed.doc.nodes["view"].inputs == {}
    assert not at.exception


def test_undo_and_redo_inspector_edits(workspace: Path) -> None:
    at = select_node(start(), "grow")
    widget(at.slider, ":grow:param:pixels").set_value(40).run()
    at.button(key="add:mask.invert").click().run()
    ed = editor_of(at)
    at.button(key="undo").click().run()
    assert "invert" not in ed.doc.nodes and ed.doc.nodes["grow"].params["pixels"] == 40
    at.button(key="undo").click().run()
    assert ed.doc.nodes["grow"].params["pixels"] == 6
    assert autosaved(at).nodes["grow"].params["pixels"] == 6
    at.button(key="redo").click().run()
    at.button(key="redo").click().run()
    assert "invert" in ed.doc.nodes and ed.doc.nodes["grow"].params["pixels"] == 40
    assert at.button(key="redo").disabled


def test_a_reload_keeps_the_tab_and_another_tab_opens_the_file(workspace: Path) -> None:
    first = select_node(start(), "grow")
    widget(first.slider, ":grow:param:pixels").set_value(21).run()
    tab = editor_of(first).tab
    again = start(tab)  # the same address: a reload of the page
    assert editor_of(again).doc.nodes["grow"].params["pixels"] == 21
    assert editor_of(again).modified
    other = start()  # a second tab on the same editor
    assert editor_of(other).tab != tab
    assert editor_of(other).doc.nodes["grow"].params["pixels"] == 6  # the file on disk
    assert not editor_of(other).modified


# saving ---------------------------------------------------------------------------------------
def test_save_writes_the_file_in_place(workspace: Path) -> None:
    at = select_node(start(), "grow")
    widget(at.slider, ":grow:param:pixels").set_value(12).run()
    assert "●" in at.subheader[0].value  # unsaved changes
    at.button(key="save").click().run()
    on_disk = load_doc(workspace / "masks.json")
    assert on_disk.nodes["grow"].params["pixels"] == 12
    assert on_disk.ui["positions"] == editor_of(at).doc.ui["positions"]
    assert "●" not in at.subheader[0].value
    assert any("saved" in s.value for s in at.success)


def test_save_notices_the_file_changed_on_disk(workspace: Path) -> None:
    mine = select_node(start(), "grow")
    widget(mine.slider, ":grow:param:pixels").set_value(30).run()
    theirs = select_node(start(), "soft")  # another tab saves first
    widget(theirs.slider, ":soft:param:radius").set_value(3.0).run()
    theirs.button(key="save").click().run()
    saved_by_them = (workspace / "masks.json").read_text()

    mine.button(key="save").click().run()
    assert (workspace / "masks.json").read_text() == saved_by_them  # not overwritten
    assert any("changed on disk" in w.value for w in mine.warning)
    assert editor_of(mine).doc.nodes["grow"].params["pixels"] == 30  # nor lost here

    mine.button(key="conflict-reload").click().run()
    ed = editor_of(mine)
    assert ed.doc.nodes["soft"].params["radius"] == 3.0
    assert ed.doc.nodes["grow"].params["pixels"] == 6
    mine.button(key="undo").click().run()  # my version is one undo away
    assert ed.doc.nodes["grow"].params["pixels"] == 30

    other = load_doc(workspace / "masks.json")  # another program writes the file
    other.name = "changed elsewhere"
    (workspace / "masks.json").write_text(Graph(other).dumps())
    mine.button(key="save").click().run()
    assert any("changed on disk" in w.value for w in mine.warning)
    assert load_doc(workspace / "masks.json").name == "changed elsewhere"
    mine.button(key="conflict-overwrite").click().run()
    on_disk = load_doc(workspace / "masks.json")
    assert on_disk.nodes["grow"].params["pixels"] == 30
    assert read_digest(workspace / "masks.json") == ed.opened.digest


def test_an_example_is_saved_under_a_name_in_the_workspace(workspace: Path,
                                                          graphs_dir: Path) -> None:
    at = start()
    at.selectbox(key="example").set_value(str(graphs_dir / "sdxl_turbo.json")).run()
    ed = editor_of(at)
    assert ed.opened.file is None
    at.button(key="save").click().run()
    assert ed.asking_name and not list(workspace.glob("SDXL*.json"))
    name = widget(at.text_input, ":ask:save-as-name")
    assert name.value == "SDXL-Turbo__text_to_image_in_one_step"
    name.input("lighthouse").run()
    at.button(key="ask:save-as").click().run()
    assert ed.opened.file == workspace / "lighthouse.json"
    assert set(load_doc(workspace / "lighthouse.json").nodes) == {"prompt", "gen", "save"}
    assert not ed.asking_name
    at.button(key="save").click().run()  # from now on, in place
    assert any(md_text(f"saved {workspace / 'lighthouse.json'}") == s.value for s in at.success)


def test_bad_names_and_a_nul_byte_are_one_line_errors(workspace: Path) -> None:
    (workspace / "taken.json").write_text("{}")
    at = start()
    before = editor_of(at).doc.model_dump()
    for bad, words in [("bad\x00name", "control character"), ("../up", "plain file name"),
                       ("taken", "exists in the workspace"), (".hidden", "plain file name")]:
        box = widget(at.text_input, ":side:save-as-name")
        box.input(bad).run()
        at.button(key="side:save-as").click().run()
        assert not at.exception, at.exception
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and "\n" not in errors[0] and words in errors[0], errors
        assert editor_of(at).doc.model_dump() == before
    assert sorted(p.name for p in workspace.iterdir() if p.suffix == ".json") == [
        "masks.json", "taken.json"]
    assert (workspace / "taken.json").read_text() == "{}"


def test_an_unexpected_failure_in_a_callback_is_one_line(workspace: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from graphkit.editor import ops

    at = select_node(start(), "grow")
    before = editor_of(at).doc.model_dump()

    def broken(*args: object) -> None:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(ops, "set_param", broken)
    widget(at.slider, ":grow:param:pixels").set_value(40).run()
    assert not at.exception, at.exception
    (error,) = [e.value for e in at.error]
    assert error == md_text("on param failed: RuntimeError: disk on fire second line")
    assert editor_of(at).doc.model_dump() == before


# opening other graphs ---------------------------------------------------------------------------
def test_uploads_bad_json_keeps_graph_and_png_loads(workspace: Path, graphs_dir: Path) -> None:
    at = start()
    before = autosaved(at)
    widget(at.get("file_uploader"), "upload").upload("broken.json", b'{"nodes": {',
                                                     "application/json").run()
    assert any("malformed JSON" in e.value for e in at.error)
    assert any("unchanged" in e.value for e in at.error)
    assert autosaved(at).nodes == before.nodes
    graph = Graph.load(graphs_dir / "crop_resize.json")
    png = encode_png(PILImage.new("RGB", (4, 4)), graph.dumps())
    widget(at.get("file_uploader"), "upload").upload("made.png", png, "image/png").run()
    ed = editor_of(at)
    assert "bigger" in ed.doc.nodes and "bigger" in autosaved(at).nodes
    assert ed.opened.file is None  # saved under a name, not into the PNG
    assert set(ed.doc.ui["positions"]) == set(ed.doc.nodes)  # laid out on arrival


def test_a_decompression_bomb_upload_is_one_line_and_keeps_the_graph(workspace: Path) -> None:
    at = start()
    before = editor_of(at).doc.model_dump()
    widget(at.get("file_uploader"), "upload").upload("bomb.png", bomb_png(), "image/png").run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("could not open" in e for e in errors), errors
    assert any("the limit is" in e for e in errors), errors
    assert all("\n" not in e for e in errors)
    assert editor_of(at).doc.model_dump() == before


def test_opening_another_graph_clears_the_last_results(workspace: Path,
                                                       graphs_dir: Path) -> None:
    at = start()
    at.button(key="run").click().run()
    at = finish_run(at)
    ed = editor_of(at)
    assert ed.run.ok and at.get("image")
    at.selectbox(key="example").set_value(str(graphs_dir / "crop_resize.json")).run()
    assert ed.run is None
    assert not at.get("image") and not at.get("download_button")[1:]  # only the graph JSON
    assert any("Not run yet" in c.value for c in at.caption)


def test_choosing_the_same_example_again_reopens_it(workspace: Path, graphs_dir: Path) -> None:
    example = graphs_dir / "sdxl_turbo.json"
    at = start()
    at.selectbox(key="example").set_value(str(example)).run()
    assert at.selectbox(key="example").value is None  # back to "choose…"
    ed = editor_of(at)
    at = select_node(at, "prompt")
    widget(at.text_area, ":prompt:param:text").input("a red fox").run()
    assert autosaved(at).nodes["prompt"].params["text"] == "a red fox"
    at.selectbox(key="example").set_value(str(example)).run()  # the same one: edits dropped
    assert not at.exception
    assert ed.doc.nodes["prompt"].params["text"].startswith("a lighthouse")
    assert autosaved(at).nodes["prompt"].params["text"].startswith("a lighthouse")
    assert widget(at.text_area, ":prompt:param:text").value.startswith("a lighthouse")


# runs -----------------------------------------------------------------------------------------
def test_run_then_edit_reruns_only_what_changed(workspace: Path) -> None:
    at = start()
    at.button(key="run").click().run()
    at = finish_run(at)
    ed = editor_of(at)
    assert ed.run.ok and len(ed.run.executed) == 10
    assert any(md_text("done: 10 ran, 0 cached") in m.value for m in at.markdown)
    at = select_node(at, "soft")
    widget(at.slider, ":soft:param:radius").set_value(3.0).run()
    at.button(key="run").click().run()
    at = finish_run(at)
    assert set(ed.run.executed) == {"soft", "blend", "mask_view", "save", "save_mask"}
    assert set(ed.run.cached) == {"photo", "texture", "fit", "region", "grow"}
    lines = [m.value for m in at.markdown]
    assert ":material/cached: **photo** cached" in lines
    assert any(line.startswith(":material/check_circle: **soft** ran in") for line in lines)
    assert len(at.get("image")) >= 3  # soft's mask over the photo, and the two saved PNGs
    downloads = [d.proto.label for d in at.get("download_button")]
    assert md_text("Download composite.png") in downloads
    assert (workspace / "out" / "composite.png").is_file()  # in the workspace, as shown


def test_run_to_here_runs_only_what_the_node_needs(workspace: Path) -> None:
    at = select_node(start(), "grow")
    at.button(key=f"{editor_of(at).revision}:grow:run-to").click().run()
    at = finish_run(at)
    ed = editor_of(at)
    assert ed.run.ok and set(ed.run.executed) == {"photo", "region", "grow"}
    assert not (workspace / "out").exists()  # no output node ran


def test_run_with_problems_and_failing_node_show_messages(workspace: Path) -> None:
    at = select_node(start(), "blend")
    widget(at.selectbox, ":blend:input:mask").set_value("(not connected)").run()
    at.button(key="run").click().run()
    assert any("cannot run yet" in e.value for e in at.error)
    widget(at.selectbox, ":blend:input:mask").set_value("soft.mask").run()
    at = select_node(at, "photo")
    widget(at.text_input, ":photo:param:path").input("inputs/nothing.png").run()
    at.button(key="run").click().run()
    at = finish_run(at)
    assert not at.exception
    assert any("not found" in m.value for m in at.markdown)
    assert "nodes" in autosaved(at).model_dump()


# text from files is text ----------------------------------------------------------------------
def test_file_provided_text_is_not_markdown(workspace: Path) -> None:
    at = start()
    name = widget(at.text_input, ":graph-name")
    name.input("![](http://127.0.0.1:9/beacon.png) my_graph :red[x]").run()
    title = at.subheader[0].value
    assert title == md_text("![](http://127.0.0.1:9/beacon.png) my_graph :red[x]") + " ●"
    assert "![](" not in title and "my\\_graph" in title
    at = select_node(at, "photo")
    widget(at.text_input, ":photo:param:path").input("inputs/no_such_file.png").run()
    at.button(key="run").click().run()
    at = finish_run(at)
    assert any("no\\_such\\_file" in m.value for m in at.markdown)  # underscores kept


# input images ---------------------------------------------------------------------------------
def test_image_upload_into_the_workspace_and_picker(workspace: Path) -> None:
    at = select_node(start(), "photo")
    buf = io.BytesIO()
    PILImage.new("RGB", (32, 24), (200, 30, 30)).save(buf, format="PNG")
    widget(at.get("file_uploader"), ":photo:upload:path").upload(
        "my photo!.png", buf.getvalue(), "image/png").run()
    ed = editor_of(at)
    assert ed.doc.nodes["photo"].params["path"] == "inputs/my_photo.png"
    assert (workspace / "inputs" / "my_photo.png").read_bytes() == buf.getvalue()
    picker = widget(at.selectbox, ":photo:pick:path")
    assert "inputs/my_photo.png" in picker.options and "inputs/texture.png" in picker.options
    picker.set_value("inputs/texture.png").run()
    assert ed.doc.nodes["photo"].params["path"] == "inputs/texture.png"
    widget(at.get("file_uploader"), ":photo:upload:path").upload(
        "bomb.png", bomb_png(), "image/png").run()
    assert not at.exception
    assert any(md_text("bomb.png") in e.value for e in at.error)
    assert ed.doc.nodes["photo"].params["path"] == "inputs/texture.png"
    assert not (workspace / "inputs" / "bomb.png").exists()


# model profile ----------------------------------------------------------------------------------
def test_the_tiny_model_profile_is_shown(workspace: Path) -> None:
    from graphkit import models

    models.configure(profile="tiny")
    try:
        at = start()
        badges = [m.value for m in at.markdown if "-badge[" in m.value]
        assert badges == [":orange-badge[:material/science: Model profile: tiny]"], badges
    finally:
        models.configure()


# palette and widgets --------------------------------------------------------------------------
def test_palette_search(workspace: Path) -> None:
    at = start()
    at.text_input(key="palette-search").input("feather").run()
    adds = [b.key for b in at.button if b.key and b.key.startswith("add:")]
    assert adds == ["add:mask.feather"]
    at.text_input(key="palette-search").input("no such words").run()
    assert "No node type matches." in [c.value for c in at.caption]


def test_example_with_seed_model_and_prompt_widgets(workspace: Path, graphs_dir: Path) -> None:
    at = start()
    at.selectbox(key="example").set_value(str(graphs_dir / "sdxl_turbo.json")).run()
    ed = editor_of(at)
    assert "gen" in ed.doc.nodes
    at = select_node(at, "gen")
    assert widget(at.text_input, ":gen:param:model").value == "stabilityai/sdxl-turbo"
    assert widget(at.slider, ":gen:param:steps").value == 1
    widget(at.button, ":gen:randomize:seed").click().run()
    seed = ed.doc.nodes["gen"].params["seed"]
    assert seed != 42 and widget(at.number_input, ":gen:param:seed").value == seed
    at = select_node(at, "prompt")
    widget(at.text_area, ":prompt:param:text").input("a red fox").run()
    assert autosaved(at).nodes["prompt"].params["text"] == "a red fox"


def test_sam_points_load_input_and_click(workspace: Path, graphs_dir: Path) -> None:
    from graphkit.editor import sampoints

    at = start()
    at.selectbox(key="example").set_value(str(graphs_dir / "sam_inpaint.json")).run()
    at = select_node(at, "mask")
    ed = editor_of(at)
    assert sampoints.wants_points(ed, "mask") and not sampoints.wants_points(ed, "photo")
    at.button(key="sam-load:mask").click().run()
    at = finish_run(at)
    assert ed.run.ok and set(ed.run.result.keys) == {"photo"}  # only what the picker needs
    assert any("points \\(green\\: foreground" in c.value or "points (green: foreground"
               in c.value for c in at.caption)
    sampoints.add_point(ed, "mask", 10.4, 20.6, foreground=False)
    assert ed.doc.nodes["mask"].params["points"][-1] == [10, 21, 0]
    assert ed.checked().problems == []
    at.button(key="sam-undo:mask").click().run()
    assert ed.doc.nodes["mask"].params["points"] == [[128, 150, 1], [20, 20, 0]]


# launcher -------------------------------------------------------------------------------------
def _args(**kw: object) -> argparse.Namespace:
    base = {"file": None, "host": "127.0.0.1", "port": 0, "allow_remote": False,
            "workspace": None, "models": None}
    return argparse.Namespace(**{**base, **kw})


def test_launcher_refuses_remote_host_without_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert launch.cmd_edit(_args(host="0.0.0.0")) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_launcher_parser_and_command() -> None:
    parser = argparse.ArgumentParser()
    launch.add_edit_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["edit", "g.json", "--port", "9000", "--workspace", "w"])
    assert (args.file, args.port, args.host, args.workspace) == (Path("g.json"), 9000,
                                                                 "127.0.0.1", Path("w"))
    cmd = launch.streamlit_command("127.0.0.1", 9000)
    assert cmd[1:3] == ["-m", "graphkit.editor.serve"]
    flags = dict(zip(cmd[3::2], cmd[4::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "9000"
    assert flags["--server.headless"] == "true" and flags["--server.fileWatcherType"] == "none"


def test_launcher_checks_the_graph_and_the_workspace_is_a_visible_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graphs_dir: Path) -> None:
    from graphkit.editor.session import workspace_from_env
    from graphkit.errors import GraphError

    monkeypatch.delenv(WORKSPACE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert workspace_from_env() == tmp_path.resolve()  # not a cache folder
    ws = tmp_path / "ws"
    assert launch.prepare_workspace(ws, graphs_dir / "sdxl_turbo.json") == (
        graphs_dir / "sdxl_turbo.json").resolve()
    assert ws.is_dir() and list(ws.iterdir()) == []  # nothing written into it yet
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nodes": {"a": {"type": 3}}}))
    with pytest.raises(GraphError):
        launch.prepare_workspace(ws, bad)
