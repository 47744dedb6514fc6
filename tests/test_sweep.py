"""Local sweeps: pixels equal single runs, shared upstream work, zip, failures, resume,
Ctrl-C, background jobs and the manifest."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from tiny_fixture import shared_tiny_root

import graphkit
from graphkit.cli import main
from graphkit.context import RunControl
from graphkit.errors import GraphError
from graphkit.scheduler import Scheduler
from graphkit.sweep import SweepFinished, VariationFinished

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
TOLERANCE = 2 / 255


def _pixels(path: Path) -> np.ndarray:
    with PILImage.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float32) / 255


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "sweep.jsonl").read_text().splitlines()]


def _count_pipeline_calls(monkeypatch: pytest.MonkeyPatch, manager) -> list[int]:
    """Patch the SDXL text-to-image pipeline class to record each call's batch size."""
    cls = type(manager.sdxl("stabilityai/sdxl-turbo", "text2image"))
    original = cls.__call__
    calls: list[int] = []

    def counting(pipe, *args, **kwargs):
        calls.append(len(kwargs["generator"]))
        return original(pipe, *args, **kwargs)

    monkeypatch.setattr(cls, "__call__", counting)
    return calls


def _small_sdxl() -> graphkit.Graph:
    graph = graphkit.load(GRAPHS / "sdxl_turbo.json")
    graph.set_param("gen", "width", 64)
    graph.set_param("gen", "height", 64)
    return graph


# --- pixels ----------------------------------------------------------------------------


def test_batched_seed_sweep_equals_single_runs(tiny_manager, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    graph = _small_sdxl()
    calls = _count_pipeline_calls(monkeypatch, tiny_manager)
    rows = graph.sweep({"gen.seed": "0..4"}, out=tmp_path / "sweep", batch=4,
                       scheduler=Scheduler())
    assert calls == [4, 1]  # one call for seeds 0-3, one for seed 4
    assert [r["status"] for r in rows] == ["done"] * 5
    assert [r["set"] for r in rows] == [{"gen.seed": s} for s in range(5)]
    images = []
    for seed, row in enumerate(rows):
        assert row["files"] == [f"{seed:05d}/lighthouse.png"]
        single = graph.copy()
        single.set_param("gen", "seed", seed)
        single.run(tmp_path / f"single{seed}", scheduler=Scheduler())
        swept = _pixels(tmp_path / "sweep" / row["files"][0])
        alone = _pixels(tmp_path / f"single{seed}" / "lighthouse.png")
        assert np.abs(swept - alone).max() <= TOLERANCE, seed
        images.append(swept)
    assert not np.array_equal(images[0], images[1])  # the seeds did reach the pipeline


def _redraw_graph(task: str) -> graphkit.Graph:
    """A 64x64 photo redrawn by sdxl.image2image, or inpainted in a box by sdxl.inpaint (on
    the tiny SDXL-Turbo and inpainting models)."""
    nodes: dict = {
        "photo": {"type": "image.load", "params": {"path": "inputs/photo.png"}},
        "small": {"type": "image.resize", "params": {"width": 64, "height": 64},
                  "inputs": {"image": "photo.image"}},
        "prompt": {"type": "text.prompt", "params": {"text": "a watercolour harbour"}},
        "gen": {"type": f"sdxl.{task}", "params": {"steps": 2},
                "inputs": {"image": "small.image", "prompt": "prompt.prompt"}},
        "save": {"type": "image.save", "params": {"name": "redrawn"},
                 "inputs": {"image": "gen.image"}}}
    if task == "inpaint":
        nodes["box"] = {"type": "mask.region", "params": {"box": [8, 8, 40, 48]},
                        "inputs": {"image": "small.image"}}
        nodes["gen"]["inputs"]["mask"] = "box.mask"
    graph = graphkit.Graph.from_json(json.dumps({"format": "graphkit/1", "nodes": nodes}), GRAPHS)
    assert not graph.checked().problems, graph.checked().problems
    return graph


@pytest.mark.parametrize(("task", "model"), [
    ("image2image", "stabilityai/sdxl-turbo"),
    ("inpaint", "diffusers/stable-diffusion-xl-1.0-inpainting-0.1")])
def test_image_to_image_and_inpaint_seed_sweeps_batch_and_equal_single_runs(
        tiny_manager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task: str,
        model: str) -> None:
    graph = _redraw_graph(task)
    cls = type(tiny_manager.sdxl(model, task))
    original = cls.__call__
    calls: list[int] = []

    def counting(pipe, *args, **kwargs):  # noqa: ANN001, ANN202 - the pipeline's call
        generator = kwargs["generator"]
        calls.append(len(generator) if isinstance(generator, list) else 1)
        return original(pipe, *args, **kwargs)

    monkeypatch.setattr(cls, "__call__", counting)
    rows = graph.sweep({"gen.seed": "0..2"}, out=tmp_path / "sweep", batch=3,
                       scheduler=Scheduler())
    assert calls == [3]  # the three seeds in one pipeline call
    assert [r["status"] for r in rows] == ["done"] * 3
    images = []
    for seed, row in enumerate(rows):
        single = graph.copy()
        single.set_param("gen", "seed", seed)
        single.run(tmp_path / f"single{seed}", scheduler=Scheduler())
        swept = _pixels(tmp_path / "sweep" / row["files"][0])
        alone = _pixels(tmp_path / f"single{seed}" / "redrawn.png")
        assert np.abs(swept - alone).max() <= TOLERANCE, (task, seed)
        images.append(swept)
    assert calls == [3, 1, 1, 1]  # and each single run one call of its own
    assert not np.array_equal(images[0], images[1])  # the seeds did reach the pipeline


def test_default_batch_on_the_cpu_batches_seeds(tiny_manager, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_pipeline_calls(monkeypatch, tiny_manager)
    rows = _small_sdxl().sweep({"gen.seed": "0..5"}, out=tmp_path, device="cpu",
                               scheduler=Scheduler())
    assert [r["status"] for r in rows] == ["done"] * 6
    assert calls == [4, 2]  # the CPU default: 4 variations a call


def test_graph_without_batching_nodes_reports_each_variation_at_once(tmp_path: Path) -> None:
    graph = graphkit.load(GRAPHS / "mask_composite.json")
    control = RunControl()

    def stop_after_one(event: object) -> None:
        if isinstance(event, VariationFinished):
            control.cancel()

    rows = graph.sweep({"grow.pixels": "0..3"}, out=tmp_path, device="cpu", control=control,
                       listener=stop_after_one, scheduler=Scheduler())
    assert [r["index"] for r in rows] == [0]  # not held back for a group of 4


def test_prompt_file_sweep_in_one_batch_equals_single_runs(tiny_manager, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    prompts = ["a red apple, still life", "123", '"quoted"', "a blue \u00e9t\u00e9 sky"]
    spec = tmp_path / "prompts.txt"
    spec.write_text("\ufeff" + "\r\n".join(prompts[:2]) + "\n\n" + "\n".join(prompts[2:])
                    + "\n", encoding="utf-8")
    graph = _small_sdxl()
    calls = _count_pipeline_calls(monkeypatch, tiny_manager)
    rows = graph.sweep({"prompt.text": f"@{spec}"}, out=tmp_path / "sweep", batch=4,
                       scheduler=Scheduler())
    assert calls == [4]
    # each line parsed as --set parses it: text stays text, a JSON string is unquoted
    assert [r["set"]["prompt.text"] for r in rows] == [prompts[0], "123", "quoted",
                                                       prompts[3]]
    for row in rows:
        single = graph.copy()
        single.set_param("prompt", "text", row["set"]["prompt.text"])
        single.run(tmp_path / "single", scheduler=Scheduler())
        diff = np.abs(_pixels(tmp_path / "sweep" / row["files"][0])
                      - _pixels(tmp_path / "single" / "lighthouse.png"))
        assert diff.max() <= TOLERANCE, row


def test_each_png_carries_its_own_variation(tiny_manager, tmp_path: Path) -> None:
    rows = _small_sdxl().sweep({"gen.seed": [7, 8]}, out=tmp_path, batch=2,
                               scheduler=Scheduler())
    for row in rows:
        carried = graphkit.load(tmp_path / row["files"][0])
        assert carried.doc.nodes["gen"].params["seed"] == row["set"]["gen.seed"]


# --- shared work -------------------------------------------------------------------------


def test_nodes_a_swept_param_does_not_reach_run_once(tmp_path: Path) -> None:
    graph = graphkit.load(GRAPHS / "mask_composite.json")
    rows = graph.sweep({"grow.pixels": "0..3"}, out=tmp_path, scheduler=Scheduler())
    executed = Counter(n for r in rows for n in r["executed"])
    for upstream in ("photo", "texture", "fit", "region"):
        assert executed[upstream] == 1, executed
    for downstream in ("grow", "soft", "blend", "mask_view", "save", "save_mask"):
        assert executed[downstream] == 4, executed
    assert set(rows[2]["cached"]) == {"photo", "texture", "fit", "region"}
    files = [f for r in rows for f in r["files"]]
    assert len(files) == len(set(files)) == 8  # two images per variation, none overwritten
    assert all((tmp_path / f).is_file() for f in files)


def test_upstream_diffusion_runs_once_for_a_decoder_seed_sweep(tiny_manager, tmp_path: Path
                                                               ) -> None:
    graph = graphkit.load(GRAPHS / "kandinsky_text2image.json")
    graph.apply_overrides(["prior.steps=2", "decode.steps=2", "decode.width=64",
                           "decode.height=64"])
    rows = graph.sweep({"decode.seed": "0..3"}, out=tmp_path, batch=2, scheduler=Scheduler())
    executed = Counter(n for r in rows for n in r["executed"])
    assert executed == {"prompt": 1, "prior": 1, "decode": 4, "save": 4}
    assert all(r["status"] == "done" for r in rows)


# --- zip and products ------------------------------------------------------------------


def test_product_and_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph = GRAPHS / "mask_composite.json"
    code = main(["run", str(graph), "--out", str(tmp_path / "p"), "--device", "cpu",
                 "--sweep", "grow.pixels=1,2", "--sweep", "soft.radius=0.5,1.5,2.5"])
    assert code == 0, capsys.readouterr().err
    assert [r["set"] for r in _rows(tmp_path / "p")] == [
        {"grow.pixels": g, "soft.radius": s} for g in (1, 2) for s in (0.5, 1.5, 2.5)]
    code = main(["run", str(graph), "--out", str(tmp_path / "z"), "--device", "cpu", "--zip",
                 "--sweep", "grow.pixels=1,2,3", "--sweep", "soft.radius=0.5,1.5,2.5"])
    assert code == 0, capsys.readouterr().err
    assert [r["set"] for r in _rows(tmp_path / "z")] == [
        {"grow.pixels": 1, "soft.radius": 0.5}, {"grow.pixels": 2, "soft.radius": 1.5},
        {"grow.pixels": 3, "soft.radius": 2.5}]


# --- failures, resume --------------------------------------------------------------------


def test_a_failing_variation_is_recorded_and_the_others_run(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    code = main(["run", str(GRAPHS / "crop_resize.json"), "--out", str(tmp_path),
                 "--device", "cpu", "--sweep", "crop.x=50,200,60"])
    err = capsys.readouterr().err
    assert code == 1
    rows = _rows(tmp_path)
    assert [r["status"] for r in rows] == ["done", "failed", "done"]
    assert "node 'crop' (image.crop) 'width': x + width = 320 exceeds" in rows[1]["error"]
    assert rows[1]["files"] == [] and "crop" not in rows[1]["executed"]
    assert "#1 crop.x=200: FAILED" in err
    assert all((tmp_path / f).is_file() for r in (rows[0], rows[2]) for f in r["files"])


def test_rerun_skips_finished_variations_and_rewrites_nothing(tmp_path: Path) -> None:
    graph = graphkit.load(GRAPHS / "mask_composite.json")
    control = RunControl()

    def stop_after_two(event: object) -> None:
        if isinstance(event, VariationFinished) and event.finished == 2:
            control.cancel()

    first = graph.sweep({"grow.pixels": "0..4"}, out=tmp_path, control=control,
                        listener=stop_after_two, scheduler=Scheduler())
    assert [r["index"] for r in first] == [0, 1]
    stamps = {f: (tmp_path / f).stat().st_mtime_ns for r in first for f in r["files"]}
    manifest = (tmp_path / "sweep.jsonl").read_bytes()
    second = graph.sweep({"grow.pixels": "0..4"}, out=tmp_path, scheduler=Scheduler())
    assert [r["status"] for r in second] == ["skipped"] * 2 + ["done"] * 3
    assert second[0]["files"] == first[0]["files"] and second[0]["executed"] == []
    assert (tmp_path / "sweep.jsonl").read_bytes().startswith(manifest)
    assert len(_rows(tmp_path)) == 5
    assert {f: (tmp_path / f).stat().st_mtime_ns for f in stamps} == stamps
    third = graph.sweep({"grow.pixels": "0..4"}, out=tmp_path, scheduler=Scheduler())
    assert [r["status"] for r in third] == ["skipped"] * 5
    assert len(_rows(tmp_path)) == 5


def test_a_failed_variation_runs_again_and_its_new_row_wins(tmp_path: Path) -> None:
    graph = graphkit.load(GRAPHS / "crop_resize.json")
    graph.sweep({"crop.x": [50, 200]}, out=tmp_path, scheduler=Scheduler())
    rows = graph.sweep({"crop.x": [50, 200]}, out=tmp_path, scheduler=Scheduler())
    assert [r["status"] for r in rows] == ["skipped", "failed"]
    assert [r["index"] for r in _rows(tmp_path)] == [0, 1, 1]


def test_a_done_variation_whose_files_are_gone_runs_again(tmp_path: Path) -> None:
    graph = graphkit.load(GRAPHS / "mask_composite.json")
    rows = graph.sweep({"grow.pixels": [1, 2]}, out=tmp_path, scheduler=Scheduler())
    (tmp_path / rows[1]["files"][0]).unlink()
    again = graph.sweep({"grow.pixels": [1, 2]}, out=tmp_path, scheduler=Scheduler())
    assert [r["status"] for r in again] == ["skipped", "done"]
    assert (tmp_path / rows[1]["files"][0]).is_file()


def test_a_folder_of_another_sweep_is_refused(tmp_path: Path) -> None:
    graph = graphkit.load(GRAPHS / "mask_composite.json")
    graph.sweep({"grow.pixels": [1, 2]}, out=tmp_path, scheduler=Scheduler())
    before = (tmp_path / "sweep.jsonl").read_bytes()
    with pytest.raises(GraphError, match="holds the results of a different sweep"):
        graph.sweep({"grow.pixels": [1, 3]}, out=tmp_path, scheduler=Scheduler())
    graph.set_param("soft", "radius", 3.0)
    with pytest.raises(GraphError, match="different sweep"):
        graph.sweep({"grow.pixels": [1, 2]}, out=tmp_path, scheduler=Scheduler())
    assert (tmp_path / "sweep.jsonl").read_bytes() == before
    (tmp_path / "sweep.json").unlink()
    with pytest.raises(GraphError, match="no sweep.json"):
        graph.sweep({"grow.pixels": [1, 2]}, out=tmp_path, scheduler=Scheduler())


def test_a_torn_last_manifest_line_is_ignored_and_kept_apart(tmp_path: Path) -> None:
    graph = graphkit.load(GRAPHS / "mask_composite.json")
    graph.sweep({"grow.pixels": [1, 2]}, out=tmp_path, scheduler=Scheduler())
    lines = (tmp_path / "sweep.jsonl").read_text().splitlines()
    (tmp_path / "sweep.jsonl").write_text(lines[0] + "\n" + lines[1][:20])  # killed mid-write
    rows = graph.sweep({"grow.pixels": [1, 2]}, out=tmp_path, scheduler=Scheduler())
    assert [r["status"] for r in rows] == ["skipped", "done"]
    text = (tmp_path / "sweep.jsonl").read_text().splitlines()
    assert text[1] == lines[1][:20] and json.loads(text[2])["index"] == 1


# --- background job ----------------------------------------------------------------------


def test_background_job_reports_progress_and_can_be_cancelled(tmp_path: Path) -> None:
    graph = graphkit.load(GRAPHS / "mask_composite.json")
    events: list[object] = []
    job = graph.start_sweep({"grow.pixels": "0..3"}, out=tmp_path / "all",
                            listener=events.append, scheduler=Scheduler())
    rows = job.wait(timeout=120)
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    finished = [e.finished for e in events if isinstance(e, VariationFinished)]
    assert finished == [1, 2, 3, 4]
    assert isinstance(events[-1], SweepFinished) and not events[-1].cancelled
    progress = job.progress()
    assert (progress.finished, progress.total, progress.running) == (4, 4, False)
    assert progress.rows[3]["files"] == rows[3]["files"]

    holder: list = []

    def cancel_first(event: object) -> None:
        if isinstance(event, VariationFinished):
            holder[0].cancel()

    holder.append(graph.start_sweep({"grow.pixels": "0..3"}, out=tmp_path / "cut",
                                    listener=cancel_first, scheduler=Scheduler()))
    rows = holder[0].wait(timeout=120)
    assert len(rows) == 1 and holder[0].progress().cancelled
    with pytest.raises(GraphError):  # refused before a thread starts
        graph.start_sweep({"grow.pixels": "0..3000"}, out=tmp_path / "bad")


# --- Ctrl-C ------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_keeps_finished_variations_and_a_rerun_does_the_rest(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    tiny = shared_tiny_root(tmp_path_factory)
    out = tmp_path / "out"
    env = {**os.environ, "GRAPHKIT_TINY_DIR": str(tiny), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "graphkit", "run", str(GRAPHS / "sdxl_turbo.json"),
               "--models", "tiny", "--device", "cpu", "--out", str(out),
               "--set", "gen.steps=12", "--set", "gen.width=64", "--set", "gen.height=64",
               "--sweep", "gen.seed=0..7", "--batch", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)
    deadline = time.monotonic() + 180
    try:
        while not ((out / "sweep.jsonl").exists() and (out / "sweep.jsonl").read_text()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no variation finished within 180 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert re.search(r"cancelled: \d+ finished variations are kept", stderr)
    rows = _rows(out)
    assert 1 <= len(rows) < 8 and all(r["status"] == "done" for r in rows)
    kept = {f: (out / f).read_bytes() for r in rows for f in r["files"]}
    assert len(kept) == len(rows)
    again = subprocess.run([*command, "--json"], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    statuses = [r["status"] for r in report["rows"]]
    assert statuses == ["skipped"] * len(rows) + ["done"] * (8 - len(rows))
    assert {f: (out / f).read_bytes() for f in kept} == kept
    assert sorted(r["index"] for r in _rows(out)) == list(range(8))


def test_a_sweep_keeps_the_process_cache_within_its_budgets(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from graphkit import api
    from graphkit.cache import OutputCache

    budget = 3 << 20  # a few 256x256 images
    monkeypatch.setattr(api, "_SCHEDULER", Scheduler(OutputCache(budget, budget)))
    graph = graphkit.load(GRAPHS / "mask_composite.json")
    rows = graph.sweep({"grow.pixels": "0..7"}, out=tmp_path)  # no scheduler given
    assert [r["status"] for r in rows] == ["done"] * 8
    cache = api.default_scheduler().cache
    assert cache.stats.drops > 0
    assert cache.device_bytes <= budget and cache.host_bytes <= budget


def test_batch_help_states_the_defaults_used(capsys: pytest.CaptureFixture[str]) -> None:
    from graphkit.sweep.local import DEFAULT_BATCH

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (f"default: {DEFAULT_BATCH['cuda']} on CUDA, {DEFAULT_BATCH['mps']} on MPS, "
            f"{DEFAULT_BATCH['cpu']} on the CPU") in text
