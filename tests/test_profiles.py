"""Choosing the model profile: `Graph.run(models=...)` from Python, and a PNG re-run with
the profile the PNG records (unless --models says otherwise)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image as PILImage
from tiny_fixture import shared_tiny_root

import graphkit
from graphkit import models as gm
from graphkit.pngmeta import encode_png, read_info, recorded_profile
from graphkit.scheduler import Scheduler

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
NOTE = ("note: {png} was made with the tiny model profile; re-running with --models tiny "
        "(--models hub for the real weights)")


@pytest.fixture
def hub_process(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                monkeypatch: pytest.MonkeyPatch):
    """The process on the hub profile, offline, with an empty Hugging Face cache."""
    monkeypatch.delenv("GRAPHKIT_MODELS", raising=False)
    monkeypatch.setenv("GRAPHKIT_TINY_DIR", str(shared_tiny_root(tmp_path_factory)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    yield gm.configure()
    gm.configure()


def small_sdxl() -> graphkit.Graph:
    graph = graphkit.load(GRAPHS / "sdxl_turbo.json")
    graph.set_param("gen", "width", 64)
    graph.set_param("gen", "height", 64)
    return graph


def test_run_models_tiny_from_python(hub_process: gm.ModelManager, tmp_path: Path) -> None:
    """`run(models="tiny")` runs on the tiny models for that run only; the result's value is
    a graphkit.Image whose `.pixels` is the tensor; the PNG records the profile."""
    graph = small_sdxl()
    sched = Scheduler()  # an empty cache: earlier tests' outputs do not count
    result = graph.run(tmp_path / "tiny", device="cpu", models="tiny", scheduler=sched)
    assert result.ok, result.failed
    image = result.value("gen")
    assert isinstance(image, graphkit.Image)
    assert isinstance(image.pixels, torch.Tensor) and image.pixels.shape == (1, 3, 64, 64)
    info = read_info(tmp_path / "tiny" / "lighthouse.png")
    assert info["profile"] == "tiny"
    assert info["models"]["stabilityai/sdxl-turbo"]["kind"] == "tiny"
    assert gm.get_manager().profile == "hub"  # the process default is unchanged

    # the same graph on the hub profile is not served the tiny run's cached outputs
    again = graph.run(tmp_path / "hub", device="cpu", scheduler=sched)
    assert "gen" in again.failed and "prompt" in again.cached
    assert "not found" in again.failed["gen"]


def test_run_models_rejects_an_unknown_profile(hub_process: gm.ModelManager,
                                                tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'hub' or 'tiny'"):
        small_sdxl().run(tmp_path, models="huge")


def test_recorded_profile_also_reads_older_pngs() -> None:
    """PNGs written before the profile was recorded still name the kind of each model."""
    assert recorded_profile({"profile": "hub"}) == "hub"
    assert recorded_profile({"models": {"a/b": {"kind": "tiny"}}}) == "tiny"
    assert recorded_profile({"models": {"a/b": {"kind": "hub"}}}) == "hub"
    assert recorded_profile({"versions": {}}) is None


def cli(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "graphkit", *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env)


def test_png_rerun_uses_the_recorded_profile_unless_models_is_given(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {**os.environ, "GRAPHKIT_TINY_DIR": str(shared_tiny_root(tmp_path_factory)),
           "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    for name in ("GRAPHKIT_MODELS", "HF_HUB_CACHE"):
        env.pop(name, None)
    first = cli("run", GRAPHS / "sdxl_turbo.json", "--models", "tiny", "--out",
                tmp_path / "a", "--set", "gen.width=64", "--set", "gen.height=64", env=env)
    assert first.returncode == 0, first.stderr
    png = tmp_path / "a" / "lighthouse.png"

    again = cli("run", png, "--out", tmp_path / "b", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines()[0] == NOTE.format(png=png)
    assert (tmp_path / "b" / "lighthouse.png").is_file()

    real = cli("run", png, "--models", "hub", "--out", tmp_path / "c", env=env)
    assert real.returncode == 2
    assert "note:" not in real.stderr
    assert "model 'stabilityai/sdxl-turbo' not found" in real.stderr
    assert "download it with 'graphkit models pull GRAPH'" in real.stderr


def test_png_of_a_graph_without_models_gets_no_note(tmp_path: Path) -> None:
    png = tmp_path / "plain.png"
    graph_json = (GRAPHS / "crop_resize.json").read_text()
    png.write_bytes(encode_png(PILImage.new("RGB", (4, 4)), graph_json, {"profile": "tiny"}))
    proc = cli("run", png, "--out", tmp_path / "out", "--input", GRAPHS, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert "note:" not in proc.stderr
