"""The command line: run, validate, nodes, schema, show; exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import toy_registry
from PIL import Image as PILImage

import graphkit.api
from graphkit.cli import main
from graphkit.registry import Registry, registry
from graphkit.scheduler import Scheduler


@pytest.fixture(autouse=True)
def own_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs use a fresh process cache, so tests do not see each other's outputs."""
    monkeypatch.setattr(graphkit.api, "_SCHEDULER", Scheduler())


def cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m graphkit`` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "graphkit", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def call(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run ``main`` in-process; exit code, stdout, stderr."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def mask_area(path: Path) -> float:
    with PILImage.open(path) as img:
        return float(torch.tensor(list(img.convert("L").getdata()), dtype=torch.float32).sum())


def test_run_subprocess_json_report_show_and_rerun_png(graphs_dir: Path, tmp_path: Path) -> None:
    """A real process: JSON report, every PNG written, the PNG shows and re-runs its graph."""
    out = tmp_path / "out"
    proc = cli("run", graphs_dir / "mask_composite.json", "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["failed"] == {} and report["cached"] == []
    names = json.loads((graphs_dir / "mask_composite.json").read_text())["nodes"]
    assert sorted(report["executed"]) == sorted(names)
    assert sorted(Path(f).name for f in report["files"]) == ["composite.png", "mask.png"]
    for file in report["files"]:
        assert Path(file).is_file() and Path(file).parent.resolve() == out.resolve()
    shown = cli("show", out / "composite.png", "--info")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)  # one JSON document: the graph and the run info
    assert set(document["graph"]["nodes"]) == set(names)
    assert document["info"]["versions"]["graphkit"]
    again = cli("run", out / "composite.png", "--out", tmp_path / "again",
                "--input", graphs_dir, "--json")
    assert again.returncode == 0, again.stderr
    assert sorted(Path(f).name for f in json.loads(again.stdout)["files"]) == [
        "composite.png", "mask.png"]


def test_schema_and_bad_override_subprocess(graphs_dir: Path) -> None:
    """``schema`` prints JSON; a bad override exits 2 with one line and no traceback."""
    schema = cli("schema")
    assert schema.returncode == 0 and json.loads(schema.stdout)["title"] == "graphkit graph file"
    bad = cli("run", graphs_dir / "mask_composite.json", "--set", "grow.pixels")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error:")
    assert "NODE.PARAM=VALUE" in bad.stderr and "Traceback" not in bad.stderr


def test_run_prints_node_times_and_cache_info(
    capsys: pytest.CaptureFixture[str], graphs_dir: Path, tmp_path: Path
) -> None:
    graph_file = graphs_dir / "crop_resize.json"
    count = len(json.loads(graph_file.read_text())["nodes"])
    code, out, err = call(capsys, "run", graph_file, "--out", tmp_path)
    assert code == 0, err
    for node_id in json.loads(graph_file.read_text())["nodes"]:
        assert any(line.startswith(node_id + " ") and " s" in line and "ran in" in line
                   for line in out.splitlines()), node_id
    assert f"{count} ran, 0 cached, 0 failed" in out
    assert f"wrote {tmp_path / 'house.png'}" in out
    assert (tmp_path / "house.png").is_file() and (tmp_path / "house_mask.png").is_file()
    assert f"[{count}/{count}]" in err  # progress lines
    code, out, _ = call(capsys, "run", graph_file, "--out", tmp_path)
    assert code == 0 and f"0 ran, {count} cached" in out
    assert sum(line.endswith("cached") for line in out.splitlines()) == count


def test_set_override_changes_the_run(
    capsys: pytest.CaptureFixture[str], graphs_dir: Path, tmp_path: Path
) -> None:
    """``--set`` takes JSON values (or plain text) and reaches the node."""
    graph_file = graphs_dir / "mask_composite.json"
    assert call(capsys, "run", graph_file, "--out", tmp_path / "a")[0] == 0
    code, out, err = call(capsys, "run", graph_file, "--out", tmp_path / "b", "--json",
                          "--set", "grow.pixels=30", "--set", "save_mask.name=wide")
    assert code == 0, err
    report = json.loads(out)
    assert "region" in report["cached"] and "grow" in report["executed"]
    assert mask_area(tmp_path / "b" / "wide.png") > mask_area(tmp_path / "a" / "mask.png")


@pytest.mark.parametrize("override", ["nodot=1", "grow.pixels", "ghost.pixels=3", ".x=1"])
def test_bad_override_is_one_line(
    capsys: pytest.CaptureFixture[str], graphs_dir: Path, tmp_path: Path, override: str
) -> None:
    code, out, err = call(capsys, "run", graphs_dir / "mask_composite.json", "--out", tmp_path,
                          "--set", override)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error:") and "Traceback" not in err


def test_override_with_bad_value_reports_the_param(
    capsys: pytest.CaptureFixture[str], graphs_dir: Path, tmp_path: Path
) -> None:
    code, _, err = call(capsys, "run", graphs_dir / "mask_composite.json", "--out", tmp_path,
                        "--set", "grow.pixels=9999", "--set", "grow.colour=1")
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2
    assert any("node 'grow' 'pixels'" in line for line in lines)
    assert any("node 'grow' 'colour'" in line for line in lines)


def write_invalid(tmp_path: Path) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"nodes": {
        "l": {"type": "image.load"},
        "r": {"type": "image.resize", "params": {"width": -1}, "inputs": {"image": "l.img"}},
        "s": {"type": "image.save", "inputs": {"image": "gone.image"}},
        "z": {"type": "zzz.unknown"},
    }}))
    return path


def test_invalid_graph_reports_every_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_invalid(tmp_path)
    code, out, err = call(capsys, "run", path, "--out", tmp_path / "o")
    assert code == 2 and not (tmp_path / "o").exists()
    lines = err.splitlines()
    assert len(lines) == 5
    for where in ("node 'l' 'path'", "node 'r' 'width'", "node 'r' 'image'", "node 's' 'image'",
                  "node 'z' 'type'"):
        assert sum(where in line for line in lines) == 1, where
    assert all(line.startswith(f"error: {path}: ") for line in lines)


def test_validate_exit_codes(
    capsys: pytest.CaptureFixture[str], graphs_dir: Path, tmp_path: Path
) -> None:
    code, out, _ = call(capsys, "validate", graphs_dir / "crop_resize.json")
    assert code == 0 and "ok" in out
    code, out, _ = call(capsys, "validate", graphs_dir / "crop_resize.json", "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "problems": []}
    code, out, err = call(capsys, "validate", write_invalid(tmp_path), "--json")
    assert code == 2
    report = json.loads(out)
    assert report["ok"] is False and len(report["problems"]) == 5
    assert {p["node"] for p in report["problems"]} == {"l", "r", "s", "z"}
    (tmp_path / "broken.json").write_text('{"nodes": {\n  "a": ]\n}')
    code, _, err = call(capsys, "validate", tmp_path / "broken.json")
    assert code == 2 and "line 2, column 8" in err


@pytest.mark.parametrize(("override", "node_id", "field"), [
    ("crop.x=200", "crop", "width"),
    ("photo.path=inputs/missing.png", "photo", "path"),
    ("photo.path=../pyproject.toml", "photo", "path"),
])
def test_node_refusing_input_exits_2(
    capsys: pytest.CaptureFixture[str], graphs_dir: Path, tmp_path: Path,
    override: str, node_id: str, field: str
) -> None:
    code, _, err = call(capsys, "run", graphs_dir / "crop_resize.json", "--out", tmp_path,
                        "--set", override)
    assert code == 2
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert f"node '{node_id}'" in line and f"'{field}'" in line
    assert "Traceback" not in err


@pytest.fixture
def toy_cli(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The process registry plus the toy node types, as the CLI sees it."""
    reg = toy_registry([])
    reg.specs.update(registry().specs)
    monkeypatch.setattr(graphkit.api, "registry", lambda: reg)
    return reg


def toy_file(tmp_path: Path, nodes: dict[str, Any]) -> Path:
    path = tmp_path / "toy.json"
    path.write_text(json.dumps({"nodes": nodes}))
    return path


FAILING = {
    "src": {"type": "toy.const", "params": {"value": 0.5}},
    "bad": {"type": "toy.fail", "inputs": {"image": "src.image"}},
    "save_bad": {"type": "image.save", "params": {"name": "bad"}, "inputs": {"image": "bad.image"}},
    "save_ok": {"type": "image.save", "params": {"name": "ok"}, "inputs": {"image": "src.image"}},
}


def test_internal_node_failure_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, toy_cli: Registry
) -> None:
    code, out, err = call(capsys, "run", toy_file(tmp_path, FAILING), "--out", tmp_path / "o")
    assert code == 1
    assert "error:" in err and "node 'bad' (toy.fail)" in err and "RuntimeError: boom" in err
    assert (tmp_path / "o" / "ok.png").is_file() and not (tmp_path / "o" / "bad.png").exists()
    assert "1 failed, 1 skipped" in out


def test_debug_shows_traceback_of_failing_node(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, toy_cli: Registry
) -> None:
    code, _, err = call(capsys, "--debug", "run", toy_file(tmp_path, FAILING), "--out", tmp_path)
    assert code == 1
    assert "Traceback" in err and 'raise RuntimeError("boom")' in err


def test_debug_shows_traceback_of_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = call(capsys, "validate", tmp_path / "missing.json")
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    code, _, err = call(capsys, "validate", tmp_path / "missing.json", "--debug")
    assert code == 2 and "Traceback" in err


def test_unexpected_error_is_one_line_unless_debug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(args: Any) -> int:
        raise ZeroDivisionError("oops")

    monkeypatch.setitem(graphkit.cli.COMMANDS, "schema", explode)
    code, _, err = call(capsys, "schema")
    assert code == 1 and err.count("\n") == 1 and "ZeroDivisionError: oops" in err
    assert "--debug" in err
    code, _, err = call(capsys, "--debug", "schema")
    assert code == 1 and "Traceback" in err


def test_nodes_listing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(capsys, "nodes")
    assert code == 0
    for type_id, spec in registry().specs.items():
        assert f"{type_id}  {spec.version}" in out
    assert "param path: string, required" in out
    assert "param method: choice, one of bicubic|bilinear|nearest|area" in out or \
        "one of bicubic|bilinear|nearest|area" in out
    code, out, _ = call(capsys, "nodes", "--json")
    listed = {d["type"]: d for d in json.loads(out)}
    assert set(listed) == set(registry().specs)
    crop = listed["image.crop"]
    assert crop["inputs"] == {"image": {"type": "Image", "optional": False}}
    assert crop["params"]["width"]["minimum"] == 1 and crop["outputs"] == {"image": "Image"}
    assert listed["image.save"]["output_node"] is True


def test_show_refuses_png_without_graph(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    PILImage.new("RGB", (2, 2)).save(tmp_path / "plain.png")
    code, _, err = call(capsys, "show", tmp_path / "plain.png")
    assert code == 2 and "no graphkit graph" in err


def test_unavailable_device_is_bad_input(
    capsys: pytest.CaptureFixture[str], graphs_dir: Path
) -> None:
    """Asking for a device this machine lacks is a one-line error and exit 2."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(["run", str(graphs_dir / "mask_composite.json"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "CUDA is not available" in err


def test_models_tiny_then_check_finds_every_model(
    tmp_path: Path, graphs_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`graphkit models tiny DIR` writes the tiny models; `check` then finds each one there."""
    from graphkit import models as gm
    from graphkit.tinymodels import TINY_MODEL_IDS, tiny_path

    root = tmp_path / "tiny"
    assert main(["models", "tiny", str(root)]) == 0
    assert all((tiny_path(root, m) / "model_index.json").is_file()
               or (tiny_path(root, m) / "config.json").is_file() for m in TINY_MODEL_IDS)
    capsys.readouterr()
    monkeypatch.setenv("GRAPHKIT_TINY_DIR", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(gm, "_MANAGER", None)
    try:
        code = main(["check", str(graphs_dir / "sam_inpaint.json"), "--models", "tiny",
                     "--json"])
        report = json.loads(capsys.readouterr().out)
    finally:
        monkeypatch.delenv("GRAPHKIT_MODELS", raising=False)
        gm.configure()
    assert code == 0 and report["ok"] and report["missing"] == []
    assert set(report["models"]) == {"facebook/sam-vit-base",
                                     "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"}
    assert all(where.startswith("tiny: ") for where in report["models"].values())


@pytest.mark.parametrize("name", ["graph.json", "image.png"])
@pytest.mark.parametrize("command", ["validate", "show", "check", "run"])
def test_fifo_as_graph_path_is_refused_not_waited_on(
    tmp_path: Path, name: str, command: str
) -> None:
    """A FIFO (or any non-regular file) is refused at once; nobody ever writes to this one."""
    fifo = tmp_path / name
    os.mkfifo(fifo)
    try:
        proc = cli(command, fifo, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"graphkit {command} waited on a FIFO")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "not a regular file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_folder_as_graph_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    for name in ("folder.json", "folder.png"):
        (tmp_path / name).mkdir()
        code, _, err = call(capsys, "validate", tmp_path / name)
        assert code == 2 and err.count("\n") == 1 and "not a regular file" in err


# --- check and validate report what run would refuse ---------------------------------------

def load_save_graph(folder: Path, path: str, version: str | None = None) -> Path:
    photo: dict[str, Any] = {"type": "image.load", "params": {"path": path}}
    if version:
        photo["version"] = version
    file = folder / "g.json"
    file.write_text(json.dumps({"format": "graphkit/1", "nodes": {
        "photo": photo, "save": {"type": "image.save", "inputs": {"image": "photo.image"}}}}))
    return file


@pytest.mark.parametrize(("path", "status"), [
    ("inputs/missing.png", "missing"),
    ("../outside.png", "refused"),
    ("/etc/hostname", "refused"),
])
def test_missing_or_forbidden_input_image_fails_validate_and_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, path: str, status: str
) -> None:
    folder = tmp_path / "g"
    folder.mkdir()
    PILImage.new("RGB", (4, 4)).save(tmp_path / "outside.png")
    graph = load_save_graph(folder, path)
    code, out, err = call(capsys, "validate", graph)
    assert code == 2 and err.count("\n") == 1 and "ok" not in out
    assert err.startswith(f"error: {graph}: node 'photo' 'path': ")
    code, out, err = call(capsys, "validate", graph, "--json")
    (reported,) = json.loads(out)["problems"]
    assert code == 2 and (reported["node"], reported["field"]) == ("photo", "path")
    code, out, _ = call(capsys, "check", graph)
    assert code == 2 and "everything is here" not in out
    assert f"input photo.path: {status}: " in out
    code, out, _ = call(capsys, "run", graph, "--out", tmp_path / "out")
    assert code == 2 and not (tmp_path / "out").exists()


def test_input_image_found_in_an_input_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder, extra = tmp_path / "g", tmp_path / "pictures"
    folder.mkdir()
    extra.mkdir()
    PILImage.new("RGB", (4, 4)).save(extra / "photo.png")
    graph = load_save_graph(folder, "photo.png")
    assert call(capsys, "validate", graph)[0] == 2
    assert call(capsys, "validate", graph, "--input", extra)[0] == 0
    code, out, _ = call(capsys, "check", graph, "--input", extra, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"]
    assert report["inputs"] == {"photo.path": f"found: {(extra / 'photo.png').resolve()}"}


def test_check_reports_a_node_saved_with_another_major_version(
    capsys: pytest.CaptureFixture[str], graphs_dir: Path, tmp_path: Path
) -> None:
    PILImage.new("RGB", (4, 4)).save(tmp_path / "p.png")
    graph = load_save_graph(tmp_path, "p.png", version="2.0.0")
    code, out, _ = call(capsys, "check", graph)
    assert code == 2 and "everything is here" not in out
    assert "pack  nodes: incompatible: node 'photo' was saved with image.load 2.0.0" in out
    code, out, _ = call(capsys, "check", graph, "--json")
    report = json.loads(out)
    assert report["packs"]["nodes"].startswith("incompatible: ") and not report["ok"]


def test_check_json_says_what_each_pack_status_means(
    capsys: pytest.CaptureFixture[str], graphs_dir: Path, tmp_path: Path
) -> None:
    code, out, _ = call(capsys, "check", graphs_dir / "crop_resize.json", "--json")
    report = json.loads(out)
    assert code == 0 and report["packs"] == {"nodes": "installed"}
    assert report["inputs"] == {
        "photo.path": f"found: {(graphs_dir / 'inputs' / 'photo.png').resolve()}"}
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps({"nodes": {"x": {"type": "other.thing", "pack": "otherpack"}}}))
    code, out, _ = call(capsys, "check", graph, "--json")
    report = json.loads(out)
    assert code == 2
    assert report["packs"]["otherpack"] == (
        "missing: not installed (needed for node 'x', type 'other.thing')")


# --- the command line refuses bad arguments before any work --------------------------------

@pytest.mark.parametrize("where", ["file", "inside-a-file"])
def test_out_naming_a_file_is_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str], graphs_dir: Path, tmp_path: Path, where: str
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    out = taken if where == "file" else taken / "sub"
    code, _, err = call(capsys, "run", graphs_dir / "crop_resize.json", "--out", out)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: --out ")
    assert "ran in" not in err and taken.read_text() == "keep me"


def test_out_naming_a_file_through_the_api(graphs_dir: Path, tmp_path: Path) -> None:
    from graphkit.errors import GraphError

    (tmp_path / "taken").write_text("keep me")
    graph = graphkit.api.Graph.load(graphs_dir / "crop_resize.json")
    with pytest.raises(GraphError, match="not a folder"):
        graph.run(tmp_path / "taken", scheduler=Scheduler())


@pytest.mark.parametrize(("param", "depth"), [
    ("crop.x", 100_000), ("crop.x", 500), ("crop.x", 65), ("region.points", 200)])
def test_deeply_nested_override_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], graphs_dir: Path, tmp_path: Path, param: str, depth: int
) -> None:
    value = "[" * depth + "]" * depth
    code, _, err = call(capsys, "run", graphs_dir / "crop_resize.json", "--out", tmp_path / "o",
                        "--set", f"{param}={value}")
    assert code == 2, err
    assert err.count("\n") == 1 and "nests deeper than 60 levels" in err
    assert f"node '{param.split('.')[0]}' '{param.split('.')[1]}'" in err
    assert not (tmp_path / "o").exists()


def test_deeply_nested_text_for_a_string_param_is_text(graphs_dir: Path) -> None:
    graph = graphkit.api.Graph.load(graphs_dir / "crop_resize.json")
    graph.apply_overrides(["save.name=" + "[" * 100_000 + "]" * 100_000])
    assert graph.doc.nodes["save"].params["name"] == "[" * 100_000 + "]" * 100_000


def test_models_tiny_at_a_file_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("x")
    for target in (tmp_path / "file", tmp_path / "file" / "models"):
        code, out, err = call(capsys, "models", "tiny", target)
        assert code == 2 and err.count("\n") == 1 and str(target) in err, err
        assert "Traceback" not in err and out == ""
    assert (tmp_path / "file").read_text() == "x"
