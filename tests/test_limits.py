"""Resource limits end to end: every limit refuses with a clear, configurable error."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from PIL import Image as PILImage

from graphkit import cli
from graphkit.api import Graph
from graphkit.errors import GraphError
from graphkit.graph import GraphDoc
from graphkit.limits import Limits, set_limits
from graphkit.pngmeta import encode_png
from graphkit.registry import Param, Registry, node
from graphkit.types import SavedFiles
from graphkit.validate import check


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    """Limits are read from the environment again in every test (and after it)."""
    set_limits(None)
    yield
    set_limits(None)


def limit(monkeypatch: pytest.MonkeyPatch, name: str, value: int) -> None:
    monkeypatch.setenv(f"GRAPHKIT_LIMIT_{name}", str(value))
    set_limits(None)


def write_graph(folder: Path, nodes: dict[str, Any], name: str = "g.json") -> Path:
    path = folder / name
    path.write_text(json.dumps({"format": "graphkit/1", "nodes": nodes}))
    return path


def gen_graph(**params: Any) -> dict[str, Any]:
    """prompt -> sdxl.text2image (with ``params``) -> save."""
    return {
        "prompt": {"type": "text.prompt", "params": {"text": "a cat"}},
        "gen": {"type": "sdxl.text2image", "params": params,
                "inputs": {"prompt": "prompt.prompt"}},
        "save": {"type": "image.save", "inputs": {"image": "gen.image"}},
    }


def validate_cli(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["validate", str(path)])
    return code, capsys.readouterr().err


def run_cli(path: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["run", str(path), "--out", str(out), "--device", "cpu"])
    return code, capsys.readouterr().err


def test_defaults_and_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Limits.from_env({}) == Limits()
    assert Limits.from_env({"GRAPHKIT_LIMIT_MAX_STEPS": "7"}).max_steps == 7
    with pytest.raises(ValueError, match="GRAPHKIT_LIMIT_MAX_NODES must be a whole number"):
        Limits.from_env({"GRAPHKIT_LIMIT_MAX_NODES": "lots"})


def test_max_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> None:
    nodes = {f"p{i}": {"type": "text.prompt"} for i in range(6)}
    path = write_graph(tmp_path, nodes)
    limit(monkeypatch, "MAX_NODES", 5)
    code, err = validate_cli(path, capsys)
    assert code == 2
    assert "graph has 6 nodes; the limit is 5 (GRAPHKIT_LIMIT_MAX_NODES)" in err
    limit(monkeypatch, "MAX_NODES", 6)
    code, err = validate_cli(path, capsys)
    assert "GRAPHKIT_LIMIT_MAX_NODES" not in err


def test_steps_limit_on_the_diffusion_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = write_graph(tmp_path, gen_graph(steps=20))
    assert validate_cli(path, capsys)[0] == 0
    limit(monkeypatch, "MAX_STEPS", 10)
    code, err = validate_cli(path, capsys)
    assert code == 2
    assert "node 'gen' 'steps': steps 20 exceeds the limit 10 (GRAPHKIT_LIMIT_MAX_STEPS)" in err
    code, err = run_cli(path, tmp_path / "out", capsys)  # refused before any model loads
    assert code == 2 and "GRAPHKIT_LIMIT_MAX_STEPS" in err
    assert not (tmp_path / "out").exists()


def test_width_height_and_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    limit(monkeypatch, "MAX_SIDE", 1024)
    code, err = validate_cli(write_graph(tmp_path, gen_graph(width=2048, height=512)), capsys)
    assert code == 2
    assert "node 'gen' 'width': width 2048 exceeds the limit 1024 (GRAPHKIT_LIMIT_MAX_SIDE)" in err
    monkeypatch.delenv("GRAPHKIT_LIMIT_MAX_SIDE")
    limit(monkeypatch, "MAX_PIXELS", 1_000_000)
    code, err = validate_cli(write_graph(tmp_path, gen_graph(width=1024, height=1024)), capsys)
    assert code == 2
    assert "1024x1024 is 1048576 pixels; the limit is 1000000 (GRAPHKIT_LIMIT_MAX_PIXELS)" in err
    code, err = validate_cli(write_graph(tmp_path, gen_graph(width=1024, height=512)), capsys)
    assert code == 0


def test_default_side_limit_on_a_mask_node(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """mask.region accepts up to 16384 by its own declaration; the default limit is 8192."""
    nodes = {"m": {"type": "mask.region", "params": {"width": 9000, "height": 8}},
             "i": {"type": "mask.to_image", "inputs": {"mask": "m.mask"}},
             "s": {"type": "image.save", "inputs": {"image": "i.image"}}}
    code, err = validate_cli(write_graph(tmp_path, nodes), capsys)
    assert code == 2 and "width 9000 exceeds the limit 8192" in err


def test_prompt_length(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    nodes = gen_graph()
    nodes["prompt"]["params"]["text"] = "a cat " * 50
    path = write_graph(tmp_path, nodes)
    assert validate_cli(path, capsys)[0] == 0
    limit(monkeypatch, "MAX_TEXT_CHARS", 100)
    code, err = validate_cli(path, capsys)
    assert code == 2
    assert ("node 'prompt' 'text': text length 300 exceeds the limit 100 "
            "(GRAPHKIT_LIMIT_MAX_TEXT_CHARS)") in err


def test_batch_size_by_param_name(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = Registry()

    @node("demo.batch", output_node=True, into=reg)
    def batch_node(batch: Annotated[int, Param(ge=1)] = 1) -> SavedFiles:
        """Writes nothing."""
        return SavedFiles(())

    doc = GraphDoc.model_validate({"nodes": {"b": {"type": "demo.batch",
                                                   "params": {"batch": 32}}}})
    (problem,) = check(doc, reg, Limits()).problems
    assert (problem.code, problem.node, problem.field) == ("limit", "b", "batch")
    assert "batch size 32 exceeds the limit 16 (GRAPHKIT_LIMIT_MAX_BATCH)" in problem.message
    limit(monkeypatch, "MAX_BATCH", 64)
    assert check(doc, reg, Limits.from_env()).ok


def test_graph_file_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    nodes = gen_graph()
    nodes["prompt"]["params"]["text"] = "x" * 3000
    path = write_graph(tmp_path, nodes)
    limit(monkeypatch, "MAX_GRAPH_BYTES", 2000)
    code, err = validate_cli(path, capsys)
    assert code == 2
    assert "the limit is 2000 (GRAPHKIT_LIMIT_MAX_GRAPH_BYTES)" in err and str(path) in err


def test_graph_carried_by_a_png_has_the_same_size_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = json.dumps({"format": "graphkit/1", "nodes": {}, "ui": {"note": "y" * 5000}})
    png = tmp_path / "carrier.png"
    png.write_bytes(encode_png(PILImage.new("RGB", (4, 4)), text))
    assert Graph.load(png).doc.ui["note"] == "y" * 5000
    limit(monkeypatch, "MAX_GRAPH_BYTES", 1000)
    with pytest.raises(GraphError, match="GRAPHKIT_LIMIT_MAX_GRAPH_BYTES"):
        Graph.load(png)


def load_graph(folder: Path, path: str = "in.png", scale: int | None = None) -> Path:
    """image.load(path) [-> image.upscale lanczos x scale] -> save."""
    nodes: dict[str, Any] = {"load": {"type": "image.load", "params": {"path": path}},
                             "save": {"type": "image.save", "inputs": {"image": "load.image"}}}
    if scale:
        nodes["up"] = {"type": "image.upscale", "params": {"scale": scale, "method": "lanczos"},
                       "inputs": {"image": "load.image"}}
        nodes["save"]["inputs"]["image"] = "up.image"
    return write_graph(folder, nodes)


def test_image_file_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    PILImage.effect_noise((64, 64), 50).convert("RGB").save(tmp_path / "in.png")
    size = (tmp_path / "in.png").stat().st_size
    path = load_graph(tmp_path)
    limit(monkeypatch, "MAX_IMAGE_FILE_BYTES", size - 1)
    code, err = run_cli(path, tmp_path / "out", capsys)
    assert code == 2
    assert f"'in.png' is larger than {size - 1} bytes (GRAPHKIT_LIMIT_MAX_IMAGE_FILE_BYTES)" in err
    assert not (tmp_path / "out").exists()


def test_upscaled_output_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    PILImage.new("RGB", (40, 30), "red").save(tmp_path / "in.png")
    path = load_graph(tmp_path, scale=4)
    limit(monkeypatch, "MAX_UPSCALED_PIXELS", 160 * 120 - 1)
    code, err = run_cli(path, tmp_path / "out", capsys)
    assert code == 2
    assert "node 'up' (image.upscale) 'scale'" in err
    assert "40x30 upscaled x4 is 19200 pixels; the limit is 19199" in err
    assert "GRAPHKIT_LIMIT_MAX_UPSCALED_PIXELS" in err
    assert not (tmp_path / "out").exists()
    limit(monkeypatch, "MAX_UPSCALED_PIXELS", 160 * 120)
    code, err = run_cli(path, tmp_path / "out", capsys)
    assert code == 0, err
    with PILImage.open(tmp_path / "out" / "image.png") as img:
        assert img.size == (160, 120)


def bomb_png(width: int, height: int) -> bytes:
    """A valid-looking PNG of a few dozen bytes whose header claims ``width`` x ``height``."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("width", "height", "expected"), [
    (100_000, 100_000, "possible decompression bomb"),  # Pillow's own guard fires first
    (8000, 8000, "8000x8000 = 64000000 pixels; the limit is 60000000"),
    (9000, 10, "is 9000x10; the limit is 8192 per side (GRAPHKIT_LIMIT_MAX_SIDE)"),
])
def test_decompression_bomb_is_refused_from_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    width: int, height: int, expected: str
) -> None:
    limit(monkeypatch, "MAX_PIXELS", 60_000_000)
    data = bomb_png(width, height)
    assert len(data) < 100
    (tmp_path / "in.png").write_bytes(data)
    code, err = run_cli(load_graph(tmp_path), tmp_path / "out", capsys)
    assert code == 2
    assert "node 'load' (image.load) 'path'" in err and expected in err
    assert "GRAPHKIT_LIMIT_MAX_" in err
    assert not (tmp_path / "out").exists()


def test_lowered_pixel_limit_applies_to_loaded_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    PILImage.new("RGB", (100, 100)).save(tmp_path / "in.png")
    limit(monkeypatch, "MAX_PIXELS", 9999)
    code, err = run_cli(load_graph(tmp_path), tmp_path / "out", capsys)
    assert code == 2 and "the limit is 9999 (GRAPHKIT_LIMIT_MAX_PIXELS)" in err


# --- sizes a node computes are checked before anything is allocated -----------------------

def resize_graph(folder: Path, width: int, height: int) -> Path:
    return write_graph(folder, {
        "load": {"type": "image.load", "params": {"path": "in.png"}},
        "r": {"type": "image.resize", "params": {"width": width, "height": height},
              "inputs": {"image": "load.image"}},
        "save": {"type": "image.save", "inputs": {"image": "r.image"}}})


@pytest.mark.parametrize(("size", "width", "height", "field", "shown"), [
    ((1, 64), 64, 0, "height", "64x4096"),  # a thin image, width set: height follows
    ((64, 1), 0, 64, "width", "4096x64"),
])
def test_resize_keeping_aspect_checks_the_computed_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    size: tuple[int, int], width: int, height: int, field: str, shown: str
) -> None:
    PILImage.new("RGB", size, "red").save(tmp_path / "in.png")
    limit(monkeypatch, "MAX_SIDE", 1024)
    path = resize_graph(tmp_path, width, height)
    assert validate_cli(path, capsys)[0] == 0  # nothing to see before the image is known
    code, err = run_cli(path, tmp_path / "out", capsys)
    assert code == 2, err
    assert f"node 'r' (image.resize) '{field}'" in err and shown in err
    assert "GRAPHKIT_LIMIT_MAX_SIDE" in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert not (tmp_path / "out").exists()


def test_resize_checks_the_computed_pixel_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    PILImage.new("RGB", (10, 20), "red").save(tmp_path / "in.png")
    limit(monkeypatch, "MAX_PIXELS", 500_000)
    code, err = run_cli(resize_graph(tmp_path, 600, 0), tmp_path / "out", capsys)
    assert code == 2 and "600x1200 = 720000 pixels; the limit is 500000" in err
    assert "node 'r' (image.resize) 'height'" in err


def test_resize_of_a_whole_size_never_allocates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's case: 1x64 resized to width 8192 would be 8192x524288 (51 GB)."""
    import torch

    from graphkit.context import NodeInputError
    from graphkit.types import Image
    from nodes import image_ops

    def no_resize(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the resize was attempted")

    monkeypatch.setattr(image_ops, "_resize", no_resize)
    with pytest.raises(NodeInputError) as err:
        image_ops.image_resize(Image(torch.zeros(1, 3, 64, 1)), width=8192, height=0)
    assert err.value.field == "height" and "8192x524288" in err.value.message


def test_upscale_output_side_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    PILImage.new("RGB", (300, 10), "red").save(tmp_path / "in.png")
    limit(monkeypatch, "MAX_SIDE", 1000)
    code, err = run_cli(load_graph(tmp_path, scale=4), tmp_path / "out", capsys)
    assert code == 2 and "node 'up' (image.upscale) 'scale'" in err
    assert "1200x40" in err and "GRAPHKIT_LIMIT_MAX_SIDE" in err


def test_diffusion_x2_checks_its_x4_intermediate_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """x2 with the diffusion upscaler runs at x4 first: that size is what is checked."""
    from graphkit import models

    PILImage.new("RGB", (40, 30), "red").save(tmp_path / "in.png")
    path = write_graph(tmp_path, {
        "load": {"type": "image.load", "params": {"path": "in.png"}},
        "up": {"type": "image.upscale", "params": {"scale": 2, "method": "diffusion"},
               "inputs": {"image": "load.image"}},
        "save": {"type": "image.save", "inputs": {"image": "up.image"}}})
    limit(monkeypatch, "MAX_UPSCALED_PIXELS", 80 * 60)
    monkeypatch.setattr(models, "_MANAGER", None)
    code, err = run_cli(path, tmp_path / "out", capsys)
    assert code == 2 and "node 'up' (image.upscale) 'scale'" in err
    assert "40x30 upscaled x4 is 19200 pixels" in err
    assert "GRAPHKIT_LIMIT_MAX_UPSCALED_PIXELS" in err
    assert models._MANAGER is None or models._MANAGER.load_count == 0
