"""`graphkit models pull GRAPH` against a real HTTP server speaking the hub API (on
127.0.0.1, serving the tiny models under the real ids); then an offline run finds them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_hub import FakeHub
from tiny_fixture import shared_tiny_root

from graphkit.model_pull import pick_files
from graphkit.pngmeta import read_info
from graphkit.tinymodels import SAM_BASE, SDXL_INPAINT, SDXL_TURBO, tiny_path

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"

DECOYS = {  # files a repo may hold that graphkit must not download
    SDXL_INPAINT: {"unet/diffusion_pytorch_model.bin": b"pickle",
                   "unet/diffusion_pytorch_model.fp16.safetensors": b"variant",
                   "sd_xl_inpaint_0.1.safetensors": b"single-file checkpoint",
                   "README.md": b"# readme", ".gitattributes": b"*.safetensors filter=lfs"},
    SAM_BASE: {"pytorch_model.bin": b"pickle", "tf_model.h5": b"keras",
               "modeling_sam.py": b"import os"},
}


def test_pick_files_keeps_what_the_loaders_read() -> None:
    paths = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
             "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.bin",
             "text_encoder/model-00001-of-00002.safetensors",
             "text_encoder/model-00002-of-00002.safetensors",
             "text_encoder/model.safetensors.index.json",
             "text_encoder/model.fp16-00001-of-00002.safetensors",
             "text_encoder/model.safetensors.index.fp16.json",
             "tokenizer/merges.txt", "tokenizer/spiece.model", "checkpoint.safetensors",
             "../evil.json", "unet/../../evil.json", ".hidden/a.json",
             "unet/flax_model.msgpack", "pipeline.py", "unet/custom_unet.py"]
    assert pick_files(paths, pipeline=True) == [
        "model_index.json", "text_encoder/model-00001-of-00002.safetensors",
        "text_encoder/model-00002-of-00002.safetensors",
        "text_encoder/model.safetensors.index.json", "tokenizer/merges.txt",
        "tokenizer/spiece.model", "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors"]
    # a single-model repo keeps its top-level weights
    assert pick_files(["config.json", "model.safetensors", "pytorch_model.bin"],
                      pipeline=False) == ["config.json", "model.safetensors"]


def test_each_model_param_is_paired_with_its_own_revision() -> None:
    from graphkit.graph import GraphDoc
    from graphkit.model_pull import graph_hub_models
    from graphkit.registry import registry

    params = {"revision": "r-main", "inpaint_revision": "r-inpaint"}
    doc = GraphDoc.model_validate({"nodes": {
        "dec": {"type": "kandinsky.decoder", "params": params},
        "m": {"type": "mask.region", "params": {"width": 64, "height": 64}},
        "i": {"type": "mask.to_image", "inputs": {"mask": "m.mask"}},
        "paint": {"type": "kandinsky.decoder", "params": params,
                  "inputs": {"image": "i.image", "mask": "m.mask"}}}})
    hub, local = graph_hub_models(doc, registry())
    assert sorted(hub) == [("kandinsky-community/kandinsky-2-2-decoder", "r-main"),
                           ("kandinsky-community/kandinsky-2-2-decoder-inpaint", "r-inpaint")]
    assert local == []


def test_a_decoder_without_a_mask_needs_only_its_own_checkpoint() -> None:
    """A decoder loads its inpainting checkpoint only with a mask linked, and only that one
    then: ``models pull`` and ``check`` name what the node will load."""
    from graphkit.graph import GraphDoc
    from graphkit.model_pull import graph_hub_models
    from graphkit.registry import registry

    plain = json.loads((GRAPHS / "kandinsky_text2image.json").read_text())
    hub, _local = graph_hub_models(GraphDoc.model_validate(plain), registry())
    assert sorted(m for m, _r in hub) == ["kandinsky-community/kandinsky-2-2-decoder",
                                          "kandinsky-community/kandinsky-2-2-prior"]
    masked = json.loads((GRAPHS / "kandinsky_inpaint.json").read_text())
    hub, _local = graph_hub_models(GraphDoc.model_validate(masked), registry())
    assert sorted(m for m, _r in hub) == ["kandinsky-community/kandinsky-2-2-decoder-inpaint",
                                          "kandinsky-community/kandinsky-2-2-prior"]


@pytest.fixture
def hub(tmp_path_factory: pytest.TempPathFactory):
    tiny = shared_tiny_root(tmp_path_factory)
    server = FakeHub()
    server.add_folder(SDXL_INPAINT, tiny_path(tiny, SDXL_INPAINT), extra=DECOYS[SDXL_INPAINT])
    server.add_folder(SAM_BASE, tiny_path(tiny, SAM_BASE), extra=DECOYS[SAM_BASE])
    server.add(SAM_BASE, {"config.json": b"{}"}, revision="v1")  # another, unusable revision
    server.start()
    yield server
    server.stop()


def _env(hub: FakeHub, home: Path, offline: bool = False) -> dict[str, str]:
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(home),
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    for name in ("GRAPHKIT_MODELS", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN"):
        env.pop(name, None)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def graphkit(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "graphkit", *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env)


def test_pull_then_an_offline_hub_run_finds_the_models(hub: FakeHub, tmp_path: Path) -> None:
    home = tmp_path / "hf"
    graph = tmp_path / "sam_inpaint.json"
    doc = json.loads((GRAPHS / "sam_inpaint.json").read_text())
    doc["nodes"]["mask"]["params"]["revision"] = "main"  # a pinned revision is respected
    graph.write_text(json.dumps(doc))

    listed = graphkit("models", "pull", graph, "--dry-run", env=_env(hub, home))
    assert listed.returncode == 0, listed.stderr
    assert f"{SAM_BASE} at 'main'" in listed.stdout
    assert "  model.safetensors" in listed.stdout and "pytorch_model.bin" not in listed.stdout
    assert not any(name.endswith(".safetensors") for repo in (SAM_BASE, SDXL_INPAINT)
                   for name in hub.downloaded(repo))

    pulled = graphkit("models", "pull", graph, env=_env(hub, home))
    assert pulled.returncode == 0, pulled.stderr
    assert "pulled 2 of 2 models" in pulled.stdout
    for repo in (SDXL_INPAINT, SAM_BASE):
        wanted = set(hub.repos[repo]["main"].files) - set(DECOYS[repo])
        snapshot = (home / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" /
                    hub.repos[repo]["main"].commit)
        got = {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()}
        assert got == wanted, repo
        assert not hub.downloaded(repo) & set(DECOYS[repo]), repo
    cached = [p.name for p in (home / "hub").rglob("*") if p.is_file() or p.is_symlink()]
    assert not [n for n in cached if n.endswith((".bin", ".py", ".h5", ".md"))]
    assert not [n for n in cached if n.endswith(".fp16.safetensors")]

    out = tmp_path / "out"
    run = graphkit("run", graph, "--models", "hub", "--input", GRAPHS, "--out", out,
                   "--set", "paint.steps=2", env=_env(hub, home, offline=True))
    assert run.returncode == 0, run.stderr
    assert "Warning" not in run.stderr and "deprecated" not in run.stderr, run.stderr
    models = read_info(out / "dragons.png")["models"]
    assert set(models) == {SDXL_INPAINT, f"{SAM_BASE}@main"}
    assert all(entry["kind"] == "hub" for entry in models.values())
    assert models[f"{SAM_BASE}@main"]["revision"] == hub.repos[SAM_BASE]["main"].commit


def test_pull_of_a_revision_gets_that_revision(hub: FakeHub, tmp_path: Path) -> None:
    home = tmp_path / "hf"
    commit = hub.add(SAM_BASE, {**hub.repos[SAM_BASE]["main"].files,
                                "config.json": hub.repos[SAM_BASE]["main"].files["config.json"]
                                + b"\n"}, revision="v2")
    graph = tmp_path / "sam.json"
    graph.write_text(json.dumps({"nodes": {
        "photo": {"type": "image.load", "params": {"path": "inputs/photo.png"}},
        "mask": {"type": "sam.mask", "params": {"points": [[128, 150, 1]], "revision": "v2"},
                 "inputs": {"image": "photo.image"}},
        "view": {"type": "mask.to_image", "inputs": {"mask": "mask.mask"}},
        "save": {"type": "image.save", "inputs": {"image": "view.image"}}}}))
    pulled = graphkit("models", "pull", graph, env=_env(hub, home))
    assert pulled.returncode == 0, pulled.stderr
    refs = home / "hub" / f"models--{SAM_BASE.replace('/', '--')}" / "refs"
    assert sorted(p.name for p in refs.iterdir()) == ["v2"]
    assert (refs / "v2").read_text() == commit
    run = graphkit("run", graph, "--models", "hub", "--input", GRAPHS, "--out",
                   tmp_path / "out", env=_env(hub, home, offline=True))
    assert run.returncode == 0, run.stderr
    info = read_info(tmp_path / "out" / "image.png")
    assert info["models"][f"{SAM_BASE}@v2"]["revision"] == commit


def test_pull_reports_missing_models_and_revisions(hub: FakeHub, tmp_path: Path) -> None:
    graph = tmp_path / "bad.json"
    graph.write_text(json.dumps({"nodes": {
        "photo": {"type": "image.load", "params": {"path": "inputs/photo.png"}},
        "a": {"type": "sam.mask", "params": {"points": [[1, 1, 1]], "model": "nobody/nothing"},
              "inputs": {"image": "photo.image"}},
        "b": {"type": "sam.mask", "params": {"points": [[1, 1, 1]], "revision": "v9"},
              "inputs": {"image": "photo.image"}},
        "save": {"type": "image.save", "inputs": {"image": "photo.image"}}}}))
    proc = graphkit("models", "pull", graph, env=_env(hub, tmp_path / "hf"))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: {graph}: model 'nobody/nothing' not found on the Hugging Face hub (a typo, "
        "or a private repo: log in with hf auth login)",
        f"error: {graph}: model '{SAM_BASE}': revision 'v9' not found on the hub"]
    assert "pulled 0 of 2 models" in proc.stdout


def test_pull_reports_a_pipeline_that_needs_code(
    hub: FakeHub, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """A pipeline repo shipping pipeline.py: diffusers would expect it offline, graphkit does
    not download code, so pull says so now rather than the run failing later."""
    tiny = shared_tiny_root(tmp_path_factory)
    hub.add_folder("someone/custom-pipe", tiny_path(tiny, SDXL_TURBO),
                   extra={"pipeline.py": b"raise SystemExit('never run')"})
    doc = json.loads((GRAPHS / "sdxl_turbo.json").read_text())
    doc["nodes"]["gen"]["params"]["model"] = "someone/custom-pipe"
    graph = tmp_path / "custom.json"
    graph.write_text(json.dumps(doc))
    proc = graphkit("models", "pull", graph, env=_env(hub, tmp_path / "hf"))
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"error: {graph}: model 'someone/custom-pipe' was downloaded, but "
                           "diffusers would not load it offline:") and "pipeline.py" in line
    assert "pipeline.py" not in hub.downloaded("someone/custom-pipe")


def test_pull_while_offline_says_so(hub: FakeHub, tmp_path: Path) -> None:
    proc = graphkit("models", "pull", GRAPHS / "sam_inpaint.json",
                    env=_env(hub, tmp_path / "hf", offline=True))
    assert proc.returncode == 1
    assert "HF_HUB_OFFLINE is set" in proc.stderr
    assert hub.requests == []
