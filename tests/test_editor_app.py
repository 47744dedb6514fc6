"""The editor app's native widgets under streamlit's AppTest, and the ``edit`` launcher."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from PIL import Image as PILImage
from streamlit.testing.v1 import AppTest

from graphkit.api import Graph, default_scheduler
from graphkit.editor import launch
from graphkit.editor.files import load_session
from graphkit.editor.session import AUTOSAVE_NAME, WORKSPACE_ENV
from graphkit.pngmeta import encode_png

APP = str(Path(__file__).resolve().parent.parent / "graphkit" / "editor" / "app.py")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graphs_dir: Path) -> Path:
    default_scheduler().cache.clear()  # the app runs on the process cache: start it cold
    ws = tmp_path / "ws"
    launch.prepare_workspace(ws, graphs_dir / "mask_composite.json")
    monkeypatch.setenv(WORKSPACE_ENV, str(ws))
    return ws


def start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def widget(elements, suffix: str):  # noqa: ANN001, ANN201 - AppTest element lists
    """The widget whose key ends with ``suffix`` (keys carry a revision prefix)."""
    found = [w for w in elements if w.key and w.key.endswith(suffix)]
    assert len(found) == 1, [w.key for w in elements]
    return found[0]


def select_node(at: AppTest, node_id: str) -> AppTest:
    picker = [s for s in at.selectbox if s.label == "Node"][0]
    return picker.set_value(node_id).run()


def finish_run(at: AppTest) -> AppTest:
    ed = at.session_state["editor"]
    if ed.run is not None and ed.run.thread is not None:
        ed.run.thread.join(timeout=120)
    return at.run()


def autosaved(ws: Path):  # noqa: ANN201
    opened = load_session(ws / AUTOSAVE_NAME)
    assert opened is not None
    return opened.doc


def test_opens_the_autosaved_graph(workspace: Path) -> None:
    at = start()
    assert at.title[0].value == "Ellipse mask: texture composited into a photo"
    picker = [s for s in at.selectbox if s.label == "Node"][0]
    assert picker.options[0] == "blend  (image.composite)"  # saved files sort node ids
    assert len(picker.options) == 10
    assert any(b.label == "Run" for b in at.button)


def test_param_edit_shows_problem_and_is_autosaved(workspace: Path) -> None:
    at = select_node(start(), "grow")
    widget(at.slider, ":grow:param:pixels").set_value(40).run()
    assert autosaved(workspace).nodes["grow"].params["pixels"] == 40
    at = select_node(at, "photo")
    widget(at.text_input, ":photo:param:path").input("").run()
    assert any("at least 1 character" in m.value for m in at.markdown)
    assert autosaved(workspace).nodes["photo"].params["path"] == ""


def test_add_connect_rename_remove(workspace: Path) -> None:
    at = start()
    at.button(key="add:mask.invert").click().run()
    ed = at.session_state["editor"]
    assert ed.selected == "invert" and "invert" in ed.doc.nodes
    assert any("required input (Mask) is not connected" in m.value for m in at.markdown)
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


def test_run_then_edit_reruns_only_what_changed(workspace: Path) -> None:
    at = start()
    at.button(key="run").click().run()
    at = finish_run(at)
    ed = at.session_state["editor"]
    assert ed.run.ok and len(ed.run.executed) == 10
    assert "done: 10 ran, 0 cached" in " ".join(c.value for c in at.caption)
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
    assert "Download composite.png" in downloads and "Download mask.png" in downloads


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
    assert "nodes" in autosaved(workspace).model_dump()


def test_uploads_bad_json_keeps_graph_and_png_loads(workspace: Path, graphs_dir: Path) -> None:
    at = start()
    before = autosaved(workspace)
    at.get("file_uploader")[0].upload("broken.json", b'{"nodes": {', "application/json").run()
    assert any("malformed JSON" in e.value for e in at.error)
    assert any("unchanged" in e.value for e in at.error)
    assert autosaved(workspace).nodes == before.nodes
    graph = Graph.load(graphs_dir / "crop_resize.json")
    png = encode_png(PILImage.new("RGB", (4, 4)), graph.dumps())
    at.get("file_uploader")[0].upload("made.png", png, "image/png").run()
    ed = at.session_state["editor"]
    assert "bigger" in ed.doc.nodes and "bigger" in autosaved(workspace).nodes


def test_restart_restores_edits_and_save_writes_file(workspace: Path, tmp_path: Path) -> None:
    at = select_node(start(), "grow")
    widget(at.slider, ":grow:param:pixels").set_value(21).run()
    again = select_node(start(), "grow")  # a new session, as after a refresh or restart
    assert again.session_state["editor"].doc.nodes["grow"].params["pixels"] == 21
    target = workspace / "saved" / "g.json"
    widget(again.text_input, ":save-path").input("saved/g.json").run()  # relative to the workspace
    again.button(key="save").click().run()
    assert json.loads(target.read_text())["nodes"]["grow"]["params"]["pixels"] == 21
    widget(again.text_input, ":save-path").input(str(workspace / "g.txt")).run()
    again.button(key="save").click().run()
    assert any("end in .json" in e.value for e in again.error)
    outside = tmp_path / "elsewhere" / "g.json"
    widget(again.text_input, ":save-path").input(str(outside)).run()
    again.button(key="save").click().run()
    assert not outside.exists()
    assert any("outside the workspace" in e.value for e in again.error)


def test_palette_search(workspace: Path) -> None:
    at = start()
    at.text_input(key="palette-search").input("feather").run()
    adds = [b.key for b in at.button if b.key and b.key.startswith("add:")]
    assert adds == ["add:mask.feather"]
    at.text_input(key="palette-search").input("no such words").run()
    assert "No node type matches." in [c.value for c in at.caption]


def test_example_with_seed_model_and_prompt_widgets(workspace: Path, graphs_dir: Path) -> None:
    example = graphs_dir / "sdxl_turbo.json"
    if not example.exists():
        pytest.skip("the SDXL example graph is not here")
    at = start()
    at.selectbox(key="example").set_value(str(example)).run()
    ed = at.session_state["editor"]
    assert "gen" in ed.doc.nodes
    at = select_node(at, "gen")
    assert widget(at.text_input, ":gen:param:model").value == "stabilityai/sdxl-turbo"
    assert widget(at.slider, ":gen:param:steps").value == 1
    widget(at.button, ":gen:randomize:seed").click().run()
    seed = ed.doc.nodes["gen"].params["seed"]
    assert seed != 42 and widget(at.number_input, ":gen:param:seed").value == seed
    at = select_node(at, "prompt")
    widget(at.text_area, ":prompt:param:text").input("a red fox").run()
    assert autosaved(workspace).nodes["prompt"].params["text"] == "a red fox"


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


def test_sam_points_load_input_and_click(workspace: Path, graphs_dir: Path) -> None:
    example = graphs_dir / "sam_inpaint.json"
    if not example.exists():
        pytest.skip("the SAM example graph is not here")
    from graphkit.editor import sampoints

    at = start()
    at.selectbox(key="example").set_value(str(example)).run()
    at = select_node(at, "mask")
    ed = at.session_state["editor"]
    assert sampoints.wants_points(ed, "mask") and not sampoints.wants_points(ed, "photo")
    at.button(key="sam-load:mask").click().run()
    at = finish_run(at)
    assert ed.run.ok and set(ed.run.result.keys) == {"photo"}  # only what the picker needs
    assert any("points (green: foreground" in c.value for c in at.caption)
    sampoints.add_point(ed, "mask", 10.4, 20.6, foreground=False)
    assert ed.doc.nodes["mask"].params["points"][-1] == [10, 21, 0]
    assert ed.checked().problems == []
    at.button(key="sam-undo:mask").click().run()
    assert ed.doc.nodes["mask"].params["points"] == [[128, 150, 1], [20, 20, 0]]


def test_choosing_the_same_example_again_reopens_it(workspace: Path, graphs_dir: Path) -> None:
    example = graphs_dir / "sdxl_turbo.json"
    if not example.exists():
        pytest.skip("the SDXL example graph is not here")
    at = start()
    at.selectbox(key="example").set_value(str(example)).run()
    assert at.selectbox(key="example").value is None  # back to "choose…"
    saved_as = widget(at.text_input, ":save-path").value  # follows the graph opened
    assert saved_as == str(workspace / "SDXL-Turbo__text_to_image_in_one_step.json")
    ed = at.session_state["editor"]
    at = select_node(at, "prompt")
    widget(at.text_area, ":prompt:param:text").input("a red fox").run()
    assert autosaved(workspace).nodes["prompt"].params["text"] == "a red fox"
    at.selectbox(key="example").set_value(str(example)).run()  # the same one: edits dropped
    assert not at.exception
    assert ed.doc.nodes["prompt"].params["text"].startswith("a lighthouse")
    assert autosaved(workspace).nodes["prompt"].params["text"].startswith("a lighthouse")
    assert widget(at.text_area, ":prompt:param:text").value.startswith("a lighthouse")
