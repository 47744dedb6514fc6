"""PNGs carry their graph, versions and models; graphkit re-runs and shows them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image as PILImage

import graphkit
from graphkit import models as gm
from graphkit.cli import main
from graphkit.errors import GraphError
from graphkit.imaging import pil_to_pixels
from graphkit.pngmeta import GRAPH_KEY, encode_png, read_graph_text, read_info, run_info

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
