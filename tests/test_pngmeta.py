"""PNGs carry their graph, versions and models; graphkit re-runs and shows them."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image as PILImage

import graphkit
from graphkit import models as gm
from graphkit.cli import main
from graphkit.errors import GraphError
from graphkit.imaging import pil_to_pixels
from graphkit.pngmeta import (
    GRAPH_KEY,
    INFO_KEY,
    encode_png,
    read_graph_text,
    read_info,
    run_info,
)

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


@pytest.fixture(scope="module")
def tiny(tiny_manager: gm.ModelManager) -> gm.ModelManager:
    """The process model manager on the tiny profile, for this module only."""
    return tiny_manager


def test_round_trip_of_graph_and_info(tmp_path: Path) -> None:
    graph_json = (GRAPHS / "crop_resize.json").read_text()
    info = {"versions": {"torch": "x"}, "node": "save"}
    path = tmp_path / "a.png"
    path.write_bytes(encode_png(PILImage.new("RGB", (4, 4)), graph_json, info))
    assert read_graph_text(path) == graph_json
    assert read_info(path) == info


def test_png_without_graph_and_non_png_are_clear_errors(tmp_path: Path) -> None:
    plain = tmp_path / "plain.png"
    PILImage.new("RGB", (4, 4)).save(plain)
    with pytest.raises(GraphError, match="carries no graphkit graph"):
        read_graph_text(plain)
    jpeg = tmp_path / "photo.png"
    PILImage.new("RGB", (4, 4)).save(jpeg, format="JPEG")
    with pytest.raises(GraphError, match="not a PNG"):
        read_graph_text(jpeg)


def test_run_info_names_only_the_graphs_models(tiny: gm.ModelManager) -> None:
    """A model loaded earlier in the process for another graph is not listed."""
    tiny.kandinsky_prior("kandinsky-community/kandinsky-2-2-prior")
    tiny.sdxl("stabilityai/sdxl-turbo", "text2image")
    info = run_info((GRAPHS / "sdxl_turbo.json").read_text(), node="save")
    assert set(info["models"]) == {"stabilityai/sdxl-turbo"}
    assert info["models"]["stabilityai/sdxl-turbo"]["revision"]
    assert info["versions"]["torch"] == torch.__version__


def test_output_png_reruns_to_identical_pixels(
    tiny: gm.ModelManager, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`graphkit run IMAGE.png` re-runs the embedded graph; same seed, same pixels."""
    first_out, second_out = tmp_path / "first", tmp_path / "second"
    graph = graphkit.load(GRAPHS / "sdxl_turbo.json")
    graph.set_param("gen", "width", 64)
    graph.set_param("gen", "height", 64)
    result = graph.run(first_out, device="cpu")
    assert result.ok
    (png,) = result.files
    with PILImage.open(png) as img:
        embedded = json.loads(img.text[GRAPH_KEY])
        first_pixels = pil_to_pixels(img)
    assert embedded["nodes"]["gen"]["params"]["width"] == 64
    assert read_info(png)["models"]["stabilityai/sdxl-turbo"]["kind"] == "tiny"

    assert main(["show", str(png)]) == 0
    assert json.loads(capsys.readouterr().out) == embedded

    # a PNG copied into a folder of its own, with no graph file beside it
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "received.png").write_bytes(png.read_bytes())
    graphkit.default_scheduler().cache.clear()  # so the re-run computes every node again
    code = main(["run", str(shared / "received.png"), "--out", str(second_out), "--models",
                 "tiny", "--json"])
    assert code == 0
    assert "gen" in json.loads(capsys.readouterr().out)["executed"]
    with PILImage.open(second_out / png.name) as img:
        assert torch.equal(pil_to_pixels(img), first_pixels)


# --- hostile PNGs: text chunks are read without decoding pixels ----------------------------

def chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_bytes(width: int, height: int, *texts: bytes, idat: bytes | None = None,
              depth: int = 8, colour: int = 2, after: tuple[bytes, ...] = ()) -> bytes:
    """A PNG whose header claims ``width`` x ``height``; text chunks before and after IDAT."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    body = idat if idat is not None else zlib.compress(b"\x00" * 64)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + b"".join(texts)
            + chunk(b"IDAT", body) + b"".join(after) + chunk(b"IEND", b""))


def itxt(key: str, text: str, compressed: bool = True) -> bytes:
    data = zlib.compress(text.encode()) if compressed else text.encode()
    return chunk(b"iTXt", key.encode() + b"\x00" + bytes([int(compressed), 0]) + b"\x00\x00"
                 + data)


GRAPH = json.dumps({"format": "graphkit/1", "nodes": {
    "m": {"type": "mask.region", "params": {"width": 8, "height": 8}},
    "i": {"type": "mask.to_image", "inputs": {"mask": "m.mask"}},
    "s": {"type": "image.save", "inputs": {"image": "i.image"}}}})


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way Pillow could open or decode an image raises."""
    from PIL import ImageFile

    def trap(*args: object, **kwargs: object) -> None:
        raise AssertionError("the image was opened or decoded")

    monkeypatch.setattr(PILImage, "open", trap)
    monkeypatch.setattr(PILImage.Image, "load", trap)
    monkeypatch.setattr(ImageFile.ImageFile, "load", trap)


@pytest.mark.usefixtures("no_decoding")
def test_graph_and_info_are_read_without_decoding_pixels(tmp_path: Path) -> None:
    """tEXt, zTXt and iTXt chunks, before or after the image data, are read as text."""
    info = json.dumps({"versions": {"graphkit": "0.1.0"}})
    zinfo = chunk(b"zTXt", b"graphkit.info\x00\x00" + zlib.compress(info.encode()))
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(4, 4, chunk(b"tEXt", b"Comment\x00hello"),
                               after=(itxt(GRAPH_KEY, GRAPH), zinfo)))
    assert read_graph_text(path) == GRAPH
    assert read_info(path) == {"versions": {"graphkit": "0.1.0"}}
    plain = tmp_path / "b.png"
    plain.write_bytes(png_bytes(4, 4, chunk(b"tEXt", GRAPH_KEY.encode() + b"\x00" +
                                            GRAPH.encode())))
    assert read_graph_text(plain) == GRAPH


def test_reading_a_huge_png_graph_does_not_grow_memory(tmp_path: Path) -> None:
    """A 169-megapixel PNG of a few kB: reading its graph costs no pixel memory.

    Measured in a fresh process (ru_maxrss before and after the read), with the limits
    raised so the header is allowed: only the text chunks may be read.
    """
    side = 13_000
    row = b"\x00" + b"\x00" * (side // 8 + 1)  # 1-bit greyscale rows, all black
    idat = zlib.compress(row * side, 9)
    path = tmp_path / "huge.png"
    path.write_bytes(png_bytes(side, side, idat=idat, depth=1, colour=0,
                               after=(itxt(GRAPH_KEY, GRAPH),)))
    assert path.stat().st_size < 100_000
    script = ("import resource, sys\n"
              "from graphkit.pngmeta import read_graph_text\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "text = read_graph_text(sys.argv[1])\n"
              "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "print(len(text), (after - before) // 1024)\n")
    env = dict(os.environ, GRAPHKIT_LIMIT_MAX_SIDE="20000",
               GRAPHKIT_LIMIT_MAX_PIXELS=str(200_000_000))
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    length, grown_mb = map(int, proc.stdout.split())
    assert length == len(GRAPH)
    assert grown_mb < 40, f"reading the graph grew the process by {grown_mb} MB"


@pytest.mark.parametrize(("width", "height", "expected"), [
    (100_000, 100_000, "100000x100000"),
    (9000, 10, "GRAPHKIT_LIMIT_MAX_SIDE"),
    (8000, 8000, "8000x8000 = 64000000 pixels; the limit is 60000000"),
    (0, 10, "not a valid PNG"),
])
@pytest.mark.parametrize("command", ["show", "validate", "run", "check"])
def test_png_header_over_the_limits_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    command: str, width: int, height: int, expected: str
) -> None:
    from graphkit.limits import set_limits

    monkeypatch.setenv("GRAPHKIT_LIMIT_MAX_PIXELS", "60000000")
    monkeypatch.setenv("GRAPHKIT_LIMIT_MAX_UPSCALED_PIXELS", "60000000")
    set_limits(None)
    monkeypatch.setattr("graphkit.limits._LIMITS", None)  # read again, and again after
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(width, height, itxt(GRAPH_KEY, GRAPH)))
    extra = ["--out", str(tmp_path / "out")] if command == "run" else []
    code = main([command, str(path), *extra])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: ") and expected in err
    assert "Traceback" not in err + out and "--debug" not in err
    assert not (tmp_path / "out").exists()


def test_decompression_bomb_png_in_a_real_process(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(100_000, 100_000, itxt(GRAPH_KEY, GRAPH)))
    proc = subprocess.run([sys.executable, "-m", "graphkit", "show", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("texts", "expected"), [
    ((itxt(GRAPH_KEY, GRAPH), itxt(GRAPH_KEY, "{}")), "two"),
    ((chunk(b"iTXt", GRAPH_KEY.encode() + b"\x00\x01\x00\x00\x00" + b"not zlib"),),
     "cannot be decompressed"),
    ((chunk(b"zTXt", GRAPH_KEY.encode() + b"\x00\x07" + zlib.compress(b"{}")),),
     "compression method"),
    ((chunk(b"iTXt", GRAPH_KEY.encode() + b"\x00\x00\x00\x00\x00" + b"\xff\xfe"),), "UTF-8"),
])
def test_broken_text_chunks_are_clear_errors(tmp_path: Path, texts: tuple[bytes, ...],
                                             expected: str) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(png_bytes(4, 4, *texts))
    with pytest.raises(GraphError, match=expected):
        read_graph_text(path)


def test_corrupt_and_truncated_pngs_are_clear_errors(tmp_path: Path) -> None:
    good = png_bytes(4, 4, itxt(GRAPH_KEY, GRAPH))
    path = tmp_path / "x.png"
    flipped = bytearray(good)
    flipped[good.index(b"iTXt") + 20] ^= 0xFF  # inside the compressed graph: the CRC fails
    path.write_bytes(bytes(flipped))
    with pytest.raises(GraphError, match="CRC"):
        read_graph_text(path)
    path.write_bytes(good[: good.index(b"iTXt") + 10])
    with pytest.raises(GraphError, match="truncated"):
        read_graph_text(path)
    path.write_bytes(b"GIF89a" + b"\x00" * 20)
    with pytest.raises(GraphError, match="not a PNG"):
        read_graph_text(path)


def test_a_graph_chunk_over_the_size_limit_is_refused_while_inflating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small compressed chunk that inflates past the graph limit stops at the limit."""
    from graphkit.limits import set_limits

    path = tmp_path / "zip-bomb.png"
    path.write_bytes(png_bytes(4, 4, itxt(GRAPH_KEY, " " * 50_000_000)))
    assert path.stat().st_size < 100_000
    monkeypatch.setenv("GRAPHKIT_LIMIT_MAX_GRAPH_BYTES", "100000")
    set_limits(None)
    try:
        with pytest.raises(GraphError, match="GRAPHKIT_LIMIT_MAX_GRAPH_BYTES"):
            read_graph_text(path)
    finally:
        set_limits(None)


def test_graph_over_a_megabyte_opens_in_the_cli_and_the_editor_alike(tmp_path: Path) -> None:
    """Pillow's own 1 MB text-chunk guard is not what decides, and it is left as it was."""
    from PIL import PngImagePlugin

    from graphkit.editor.files import open_path, open_upload

    before = (PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY)
    big = json.loads(GRAPH)
    big["ui"] = {"note": "x" * 1_500_000}
    text = json.dumps(big)
    path = tmp_path / "big.png"
    path.write_bytes(encode_png(PILImage.new("RGB", (4, 4)), text))
    # the editor first: reading in the CLI must not be what makes the editor work
    assert open_upload("big.png", path.read_bytes(), tmp_path).doc.ui["note"] == big["ui"]["note"]
    assert open_path(path).doc.ui["note"] == big["ui"]["note"]
    assert main(["validate", str(path)]) == 0
    assert graphkit.load(path).doc.ui["note"] == "x" * 1_500_000
    assert (PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY) == before


# --- show ----------------------------------------------------------------------------------

def test_show_prints_the_graph_with_control_characters_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads(GRAPH)
    doc["name"] = "evil \x1b]0;pwned\x07 \x9b31m \u202e done"
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(4, 4, itxt(GRAPH_KEY, json.dumps(doc, ensure_ascii=False))))
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert all(c.isprintable() or c == "\n" for c in out), repr(out)
    assert json.loads(out)["name"] == doc["name"]


@pytest.mark.parametrize("text", ["hello", "[1, 2]", '{"nodes": 5}', '{"format": "x"}', ""])
def test_show_refuses_text_that_is_not_a_graph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(4, 4, itxt(GRAPH_KEY, text)))
    assert main(["show", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(f"error: {path}: ")


@pytest.mark.parametrize("info", ["{broken", "[1, 2]", '"text"'])
def test_show_info_with_a_broken_info_chunk_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], info: str
) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(4, 4, itxt(GRAPH_KEY, GRAPH), itxt(INFO_KEY, info)))
    assert main(["show", str(path), "--info"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "info" in err


def test_show_info_prints_one_json_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    info = {"versions": {"graphkit": "0.1.0"}, "models": {"m": {"note": "\x1b[2J"}}}
    path = tmp_path / "a.png"
    path.write_bytes(encode_png(PILImage.new("RGB", (4, 4)), GRAPH, info))
    assert main(["show", str(path), "--info"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    shown = json.loads(out)  # one document: json.loads refuses two back to back
    assert set(shown) == {"graph", "info"}
    assert shown["graph"] == json.loads(GRAPH) and shown["info"] == info


def test_an_upscaled_output_under_its_own_limit_still_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upscales may be larger than MAX_PIXELS when MAX_UPSCALED_PIXELS allows it."""
    from graphkit.limits import set_limits

    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(4000, 4000, itxt(GRAPH_KEY, GRAPH)))
    monkeypatch.setenv("GRAPHKIT_LIMIT_MAX_PIXELS", "10000000")
    monkeypatch.setenv("GRAPHKIT_LIMIT_MAX_UPSCALED_PIXELS", "12000000")
    set_limits(None)
    monkeypatch.setattr("graphkit.limits._LIMITS", None)
    with pytest.raises(GraphError, match="GRAPHKIT_LIMIT_MAX_UPSCALED_PIXELS"):
        read_graph_text(path)
    monkeypatch.setenv("GRAPHKIT_LIMIT_MAX_UPSCALED_PIXELS", "16000000")
    set_limits(None)
    assert read_graph_text(path) == GRAPH
