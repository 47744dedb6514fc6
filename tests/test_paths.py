"""A shared graph reads only inside its folder (or allowed ones) and writes only its outputs.

Basic refusals of image.load ('..', absolute paths, URLs, a link out) are in
test_builtin_nodes.py; these cover devices, FIFOs, odd names, whole runs, saving and
model folders.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from graphkit import cli
from graphkit.context import NodeInputError, Sandbox
from graphkit.models import ModelError, ModelManager


def refused(sandbox: Sandbox, rel: str) -> str:
    """The message of resolve_input refusing ``rel``, which must come back at once."""
    outcome: list[BaseException | Path] = []

    def attempt() -> None:
        try:
            outcome.append(sandbox.resolve_input(rel))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(10)
    assert outcome, f"resolving {rel!r} hung"
    error = outcome[0]
    assert isinstance(error, NodeInputError), f"{rel!r} was not refused: {error!r}"
    assert "\n" not in error.message
    return error.message


@pytest.fixture
def graph_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "graph"
    folder.mkdir()
    PILImage.new("RGB", (4, 4), "blue").save(folder / "ok.png")
    return folder


def test_devices_are_refused_by_name_and_through_links(graph_dir: Path) -> None:
    box = Sandbox([graph_dir])
    assert "absolute" in refused(box, "/dev/zero")
    os.symlink("/dev/zero", graph_dir / "zero.png")
    assert "outside" in refused(box, "zero.png")
    os.symlink("/dev/urandom", graph_dir / "random")
    assert "outside" in refused(box, "random")


def test_fifos_and_sockets_are_not_opened(graph_dir: Path) -> None:
    os.mkfifo(graph_dir / "pipe.png")
    box = Sandbox([graph_dir])
    assert "not a regular file" in refused(box, "pipe.png")
    os.symlink(graph_dir / "pipe.png", graph_dir / "to-pipe.png")
    assert "not a regular file" in refused(box, "to-pipe.png")


@pytest.mark.parametrize(("rel", "expected"), [
    ("file:///etc/passwd", "URL"),
    ("http://example.com/x.png", "URL"),
    ("\\\\server\\share\\x.png", "absolute"),
    ("ok.png\x00.jpg", "NUL"),
    ("a" * 300 + ".png", "cannot be used as a path"),
    ("sub/../../ok.png", "'..'"),
    ("", "relative path"),
])
def test_odd_names_are_refused_cleanly(graph_dir: Path, rel: str, expected: str) -> None:
    assert expected in refused(Sandbox([graph_dir]), rel)


def test_link_loops_are_refused(graph_dir: Path) -> None:
    os.symlink(graph_dir / "b.png", graph_dir / "a.png")
    os.symlink(graph_dir / "a.png", graph_dir / "b.png")
    message = refused(Sandbox([graph_dir]), "a.png")
    assert "cannot be used as a path" in message or "not found" in message


def test_links_between_allowed_folders_and_out_of_them(tmp_path: Path, graph_dir: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    PILImage.new("RGB", (2, 2)).save(extra / "shared.png")
    box = Sandbox([graph_dir, extra])
    assert box.resolve_input("shared.png") == (extra / "shared.png").resolve()
    os.symlink(tmp_path / "secret.png", extra / "leak.png")
    assert "outside" in refused(box, "leak.png")


def write_graph(folder: Path, nodes: dict[str, Any]) -> Path:
    path = folder / "g.json"
    path.write_text(json.dumps({"format": "graphkit/1", "nodes": nodes}))
    return path


def copy_graph(folder: Path, path: str, name: str = "copy") -> Path:
    return write_graph(folder, {
        "load": {"type": "image.load", "params": {"path": path}},
        "save": {"type": "image.save", "params": {"name": name},
                 "inputs": {"image": "load.image"}}})


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(args)
    return code, capsys.readouterr().err


def test_run_reads_only_the_graph_folder_and_inputs(
    tmp_path: Path, graph_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    PILImage.new("RGB", (3, 3), "red").save(tmp_path / "secret.png")
    out = tmp_path / "out"
    code, err = run(["run", str(copy_graph(graph_dir, "../secret.png")), "--out", str(out)],
                    capsys)
    assert code == 2
    # refused up front, as a problem of the graph: no node ran
    assert (f"{graph_dir / 'g.json'}: node 'load' 'path': '../secret.png' may not contain "
            "'..'") in err
    assert "ran in" not in err
    assert not out.exists()
    code, err = run(["run", str(copy_graph(graph_dir, "secret.png")), "--out", str(out)],
                    capsys)
    assert code == 2 and "not found" in err
    code, err = run(["run", str(copy_graph(graph_dir, "secret.png")), "--out", str(out),
                     "--input", str(tmp_path)], capsys)
    assert code == 0, err
    assert [p.name for p in out.iterdir()] == ["copy.png"]


def test_save_replaces_a_planted_link_instead_of_writing_through_it(
    tmp_path: Path, graph_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, out / "copy.png")
    code, err = run(["run", str(copy_graph(graph_dir, "ok.png")), "--out", str(out)], capsys)
    assert code == 0, err
    assert victim.read_text() == "precious"
    assert not (out / "copy.png").is_symlink() and (out / "copy.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph", "out", "victim.txt"]


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b", "..", "x\x00y"])
def test_save_names_cannot_leave_the_output_folder(
    tmp_path: Path, graph_dir: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, err = run(["run", str(copy_graph(graph_dir, "ok.png", name)), "--out",
                     str(tmp_path / "out")], capsys)
    assert code == 2 and "node 'save' 'name'" in err
    assert not (tmp_path / "out").exists()


# --- model folders ------------------------------------------------------------------------

def fake_model(folder: Path) -> Path:
    """A folder that passes the layout probe (resolve loads nothing)."""
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    return folder


@pytest.fixture
def no_model_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHKIT_MODEL_DIRS", "")


@pytest.mark.usefixtures("no_model_dirs")
def test_local_model_folders_only_inside_allowed_roots(tmp_path: Path) -> None:
    outside = fake_model(tmp_path / "elsewhere" / "m")
    mgr = ModelManager(profile="hub", tiny_root=tmp_path / "tiny", device="cpu")
    for name in (str(outside), "/etc", "~", "../x", str(tmp_path / "nowhere")):
        with pytest.raises(ModelError) as err:
            mgr.resolve(name)
        message = str(err.value)
        assert "outside the allowed model folders" in message and "--model-dir" in message
        assert "GRAPHKIT_MODEL_DIRS" in message and "\n" not in message
    roots = tmp_path / "roots"
    allowed = fake_model(roots / "m")
    assert ModelManager(device="cpu", model_dirs=[roots]).resolve(str(allowed)).kind == "local"
    other = tmp_path / "other"
    os.environ["GRAPHKIT_MODEL_DIRS"] = os.pathsep.join([str(other), str(roots)])
    assert mgr.resolve(str(allowed)).source == str(allowed.resolve())
    os.symlink(outside, roots / "sneaky")
    with pytest.raises(ModelError, match="outside the allowed model folders"):
        mgr.resolve(str(roots / "sneaky"))


@pytest.mark.usefixtures("no_model_dirs")
def test_tiny_root_is_always_allowed(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny"
    model = fake_model(tiny / "any")
    assert ModelManager(device="cpu", tiny_root=tiny).resolve(str(model)).kind == "local"


@pytest.mark.usefixtures("no_model_dirs")
def test_model_dir_option_of_check_and_run(
    tmp_path: Path, graph_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = fake_model(tmp_path / "models" / "my-sdxl")
    path = write_graph(graph_dir, {
        "prompt": {"type": "text.prompt", "params": {"text": "a cat"}},
        "gen": {"type": "sdxl.text2image", "params": {"model": str(model)},
                "inputs": {"prompt": "prompt.prompt"}},
        "save": {"type": "image.save", "inputs": {"image": "gen.image"}}})
    code = cli.main(["check", str(path)])
    out = capsys.readouterr().out
    assert code == 2 and f"model {model}: missing" in out and "--model-dir" in out
    code, err = run(["run", str(path), "--out", str(tmp_path / "out"), "--device", "cpu"],
                    capsys)
    assert code == 2
    assert "node 'gen' (sdxl.text2image) 'model'" in err and "--model-dir" in err
    assert not (tmp_path / "out").exists()
    code = cli.main(["check", str(path), "--model-dir", str(tmp_path / "models")])
    out = capsys.readouterr().out
    assert code == 0 and f"model {model}: local: {model}" in out


@pytest.mark.parametrize("name", ["image\n", "image\r", "out\u0663", "a\n.png"])
def test_output_names_are_whole_ascii_matches(tmp_path: Path, name: str) -> None:
    with pytest.raises(NodeInputError, match="plain file name"):
        Sandbox([], tmp_path / "out").output_file(name, ".png")
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("no_model_dirs")
@pytest.mark.parametrize("name", ["owner/name\n", "owner/n\u00e4me", "\u0661owner/name",
                                  "owner/name\r\n"])
def test_hub_ids_are_whole_ascii_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         name: str) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    mgr = ModelManager(profile="hub", tiny_root=tmp_path / "tiny", device="cpu")
    with pytest.raises(ModelError, match="not a hub id"):
        mgr.resolve(name)


def test_temp_file_names_are_whole_matches() -> None:
    from graphkit.fileio import is_temp_file

    assert is_temp_file(Path(".g.json.abc123.tmp"))
    assert not is_temp_file(Path(".g.json.abc123.tmp\n"))
    assert not is_temp_file(Path(".g.json.\u0661\u0662.tmp"))
