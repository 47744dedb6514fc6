"""The same sweep on a local Ray cluster (2 CPU workers) gives the pixels of the local one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import graphkit
from graphkit.cli import main
from graphkit.scheduler import Scheduler

ray = pytest.importorskip("ray", reason="pip install 'graphkit[ray]' (make setup does)")

GRAPH = Path(__file__).resolve().parent.parent / "graphs" / "sdxl_turbo.json"
SWEEP = ["--sweep", "prompt.text=a red apple,a green pear", "--sweep", "gen.seed=0..2"]
SIZE = ["--set", "gen.width=64", "--set", "gen.height=64"]


@pytest.fixture(scope="module")
def cluster(tiny_manager):
    """A local Ray cluster of 2 CPUs for this module (workers get the tiny-model settings)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield
    ray.shutdown()


def _pixels(path: Path) -> np.ndarray:
    with PILImage.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float32) / 255


def test_ray_sweep_matches_the_local_sweep(cluster, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    local_out, ray_out = tmp_path / "local", tmp_path / "ray"
    code = main(["run", str(GRAPH), "--models", "tiny", "--device", "cpu", *SIZE, *SWEEP,
                 "--batch", "2", "--out", str(local_out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    graph = graphkit.load(GRAPH)
    graph.apply_overrides(SIZE[1::2])
    rows = graph.sweep({"prompt.text": "a red apple,a green pear", "gen.seed": "0..2"},
                       out=ray_out, on="ray", workers=2, batch=2, scheduler=Scheduler())
    local_rows = [json.loads(line) for line in (local_out / "sweep.jsonl").read_text()
                  .splitlines()]
    assert [r["set"] for r in rows] == [r["set"] for r in local_rows]
    assert [r["status"] for r in rows] == ["done"] * 6
    for row, local in zip(rows, local_rows, strict=True):
        assert row["files"] == local["files"]
        diff = np.abs(_pixels(ray_out / row["files"][0]) - _pixels(local_out / local["files"][0]))
        assert diff.max() <= 2 / 255, row
    # the driver wrote the manifest, one row per variation, in the order they finished
    written = [json.loads(line) for line in (ray_out / "sweep.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in written) == list(range(6))
    # the same sweep again on Ray: everything is skipped, nothing is sent to workers
    code = main(["run", str(GRAPH), "--models", "tiny", "--device", "cpu", *SIZE, *SWEEP,
                 "--on", "ray", "--workers", "2", "--out", str(ray_out), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["status"] for r in report["rows"]] == ["skipped"] * 6


def test_worker_takes_plain_data_and_returns_rows_and_file_bytes(tiny_manager,
                                                                 tmp_path: Path) -> None:
    """The actor's class, called in this process: JSON text in, rows and PNG bytes out."""
    import os

    from graphkit.sweep.onray import SweepWorker

    graph = graphkit.load(GRAPH)
    graph.apply_overrides(SIZE[1::2])
    settings = {k: v for k, v in os.environ.items() if k.startswith("GRAPHKIT_")}
    worker = SweepWorker(graph.dumps(), str(GRAPH.parent), [], 12, 2, "cpu", settings)
    out = worker({"index": np.array([10, 11]),
                  "overrides": np.array(['{"gen.seed": 1}', '{"gen.seed": 999999999999}'])})
    rows = [json.loads(r) for r in out["row"]]
    assert [r["status"] for r in rows] == ["done", "failed"]
    assert "seed" in rows[1]["error"]  # a value is checked again where it runs
    names = json.loads(out["names"][0])
    assert [n for n, _size in names] == ["00010/lighthouse.png"]
    assert out["blob"][0][:8] == b"\x89PNG\r\n\x1a\n" and len(out["blob"][0]) == names[0][1]
    assert not (worker.scratch / "00010" / "lighthouse.png").exists()  # sent, then deleted


def test_driver_refuses_file_names_outside_the_sweep_folder(tmp_path: Path) -> None:
    from graphkit.sweep.onray import _write_files

    for name in ("../escape.png", "/tmp/abs.png", "."):
        with pytest.raises(ValueError, match="outside the sweep folder"):
            _write_files(tmp_path / "out", [[name, 3]], b"abc")
    _write_files(tmp_path / "out", [["00001/a.png", 2], ["00001/b.png", 1]], b"abc")
    assert (tmp_path / "out/00001/a.png").read_bytes() == b"ab"
    assert (tmp_path / "out/00001/b.png").read_bytes() == b"c"


def test_workers_get_graphkit_and_hub_settings_but_no_token() -> None:
    from graphkit.sweep.onray import worker_settings

    env = {"GRAPHKIT_MODELS": "tiny", "HF_HOME": "/models", "HF_TOKEN": "secret",
           "HUGGING_FACE_HUB_TOKEN": "secret", "PATH": "/bin", "AWS_SECRET_ACCESS_KEY": "x"}
    assert worker_settings(env) == {"GRAPHKIT_MODELS": "tiny", "HF_HOME": "/models"}
