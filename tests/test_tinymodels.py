"""Tiny models: the real on-disk layout, consistent sizes, deterministic writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from safetensors.torch import load_file
from tiny_fixture import shared_tiny_root

from graphkit import tinymodels as tm
from graphkit.tinymodels import TINY_MODEL_IDS, tiny_path, write_tiny_models

PIPELINES = {
    tm.SDXL_TURBO: "StableDiffusionXLPipeline",
    tm.SDXL_INPAINT: "StableDiffusionXLInpaintPipeline",
    tm.KANDINSKY_PRIOR: "KandinskyV22PriorPipeline",
    tm.KANDINSKY_DECODER: "KandinskyV22Pipeline",
    tm.KANDINSKY_INPAINT: "KandinskyV22InpaintPipeline",
    tm.SD_X4_UPSCALER: "StableDiffusionUpscalePipeline",
}
TOKENIZER_FILES = {"vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"}
PICKLE_SUFFIXES = {".bin", ".pkl", ".pt", ".pth", ".ckpt", ".pickle"}


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_root(tmp_path_factory)


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_ids_and_paths(tiny_root: Path) -> None:
    assert len(TINY_MODEL_IDS) == 7
    assert tiny_path(tiny_root, "stabilityai/sdxl-turbo") == tiny_root / "stabilityai--sdxl-turbo"
    assert sorted(p.name for p in tiny_root.iterdir()) == sorted(
        tiny_path(tiny_root, m).name for m in TINY_MODEL_IDS
    )


@pytest.mark.parametrize("model_id", sorted(PIPELINES))
def test_pipeline_layout(tiny_root: Path, model_id: str) -> None:
    folder = tiny_path(tiny_root, model_id)
    index = _json(folder / "model_index.json")
    assert index["_class_name"] == PIPELINES[model_id]
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        sub = folder / name
        assert sub.is_dir(), name
        files = {p.name for p in sub.iterdir()}
        if spec[1] == "CLIPTokenizer":
            assert files == TOKENIZER_FILES
        elif spec[0] == "transformers" and "Processor" in spec[1]:
            assert files == {"preprocessor_config.json"}
        elif "Scheduler" in spec[1]:
            assert files == {"scheduler_config.json"}
        else:
            assert "config.json" in files
            assert any(f.endswith(".safetensors") for f in files), name


def test_no_pickles_anywhere(tiny_root: Path) -> None:
    files = [p for p in tiny_root.rglob("*") if p.is_file()]
    assert files
    assert not [p for p in files if p.suffix in PICKLE_SUFFIXES]
    assert not [p for p in files if p.name == "tokenizer.json"]
    total = sum(p.stat().st_size for p in files)
    assert total < 40 * 1024 * 1024


def test_sam_layout(tiny_root: Path) -> None:
    folder = tiny_path(tiny_root, tm.SAM_BASE)
    assert {p.name for p in folder.iterdir()} == {
        "config.json", "model.safetensors", "preprocessor_config.json",
    }
    assert _json(folder / "config.json")["architectures"] == ["SamModel"]


def test_configs_match_the_real_models(tiny_root: Path) -> None:
    sdxl = tiny_path(tiny_root, tm.SDXL_TURBO)
    sched = _json(sdxl / "scheduler" / "scheduler_config.json")
    assert sched["_class_name"] == "EulerAncestralDiscreteScheduler"
    assert sched["timestep_spacing"] == "trailing"
    assert _json(sdxl / "unet" / "config.json")["in_channels"] == 4
    assert len(_json(sdxl / "vae" / "config.json")["block_out_channels"]) == 4  # factor 8

    inpaint = tiny_path(tiny_root, tm.SDXL_INPAINT)
    assert _json(inpaint / "unet" / "config.json")["in_channels"] == 9
    assert _json(inpaint / "model_index.json")["requires_aesthetics_score"] is False

    assert _json(tiny_path(tiny_root, tm.KANDINSKY_INPAINT) / "unet" / "config.json")[
        "in_channels"
    ] == 9
    prior = _json(tiny_path(tiny_root, tm.KANDINSKY_PRIOR) / "model_index.json")
    assert prior["image_processor"] == ["transformers", "CLIPImageProcessor"]
    up = tiny_path(tiny_root, tm.SD_X4_UPSCALER)
    assert _json(up / "unet" / "config.json")["in_channels"] == 7
    assert _json(up / "model_index.json")["low_res_scheduler"] == ["diffusers", "DDPMScheduler"]


def test_kandinsky_sizes_chain(tiny_root: Path) -> None:
    prior = tiny_path(tiny_root, tm.KANDINSKY_PRIOR)
    embed_dim = _json(prior / "prior" / "config.json")["embedding_dim"]
    weights = load_file(prior / "prior" / "diffusion_pytorch_model.safetensors")
    assert bool((weights["clip_std"] == 1).all())
    for model_id in (tm.KANDINSKY_DECODER, tm.KANDINSKY_INPAINT):
        folder = tiny_path(tiny_root, model_id)
        assert _json(folder / "unet" / "config.json")["encoder_hid_dim"] == embed_dim
        movq = _json(folder / "movq" / "config.json")
        assert all(c % 32 == 0 for c in movq["block_out_channels"])


def test_tokenizer_loads_from_vocab_and_merges(tiny_root: Path) -> None:
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(tiny_path(tiny_root, tm.SDXL_TURBO) / "tokenizer")
    assert len(tok) == 514
    assert tok.model_max_length == 77
    ids = tok("a photo " * 100, truncation=True, max_length=tok.model_max_length).input_ids
    assert len(ids) == 77
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id


def test_rewrite_is_deterministic_and_atomic(tiny_root: Path, tmp_path: Path) -> None:
    first = _digest(tiny_path(tiny_root, tm.SAM_BASE))
    paths = write_tiny_models(tmp_path)
    assert paths == {m: tiny_path(tmp_path, m) for m in TINY_MODEL_IDS}
    assert _digest(paths[tm.SAM_BASE]) == first
    assert _digest(paths[tm.SDXL_TURBO]) == _digest(tiny_path(tiny_root, tm.SDXL_TURBO))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    marker = paths[tm.SAM_BASE] / "config.json"
    stamp = marker.stat().st_mtime_ns
    write_tiny_models(tmp_path)  # existing folders are kept
    assert marker.stat().st_mtime_ns == stamp
    write_tiny_models(tmp_path, force=True)
    assert _digest(paths[tm.SAM_BASE]) == first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
