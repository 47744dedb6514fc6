"""Model manager on the tiny models: real loading paths, sharing, errors, budget."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from tiny_fixture import shared_tiny_root

from graphkit import models
from graphkit import tinymodels as tm
from graphkit.models import ModelError, ModelManager, ModelRef
from graphkit.tinymodels import tiny_path


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_root(tmp_path_factory)


@pytest.fixture(scope="module")
def manager(tiny_root: Path) -> ModelManager:
    return ModelManager(profile="tiny", tiny_root=tiny_root, device="cpu")


@pytest.fixture
def fresh(tiny_root: Path) -> ModelManager:
    return ModelManager(profile="tiny", tiny_root=tiny_root, device="cpu")


@pytest.fixture
def empty_hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return home


def _image(size: int = 64) -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _mask(size: int = 64) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    return mask


def _finite_images(images: np.ndarray, shape: tuple[int, ...]) -> None:
    assert images.shape == shape
    assert np.isfinite(images).all()
    assert images.min() >= 0.0 and images.max() <= 1.0


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator("cpu").manual_seed(seed)


# --- sharing and counting --------------------------------------------------------------


def test_sdxl_tasks_share_one_copy_of_weights(fresh: ModelManager) -> None:
    t2i = fresh.sdxl(tm.SDXL_TURBO, "text2image")
    assert fresh.load_count == 1
    before = fresh.param_bytes()
    assert before > 0
    i2i = fresh.sdxl(tm.SDXL_TURBO, "image2image")
    inpaint = fresh.sdxl(tm.SDXL_TURBO, "inpaint")
    assert type(t2i).__name__ == "StableDiffusionXLPipeline"
    assert type(i2i).__name__ == "StableDiffusionXLImg2ImgPipeline"
    assert type(inpaint).__name__ == "StableDiffusionXLInpaintPipeline"
    assert i2i.unet is t2i.unet and inpaint.vae is t2i.vae
    assert fresh.param_bytes() == before
    assert fresh.load_count == 1
    # asking again loads nothing and returns the same objects
    assert fresh.sdxl(tm.SDXL_TURBO, "image2image") is i2i
    assert fresh.sdxl(tm.SDXL_TURBO) is t2i
    assert fresh.load_count == 1
    info = fresh.loaded()[tm.SDXL_TURBO]
    assert info["kind"] == "tiny" and info["revision"] == "local"
    assert info["dtype"] == "float32" and info["param_bytes"] == before
    assert info["tasks"] == ["image2image", "inpaint", "text2image"]
    assert Path(info["source"]) == tiny_path(fresh.tiny_root, tm.SDXL_TURBO)


def test_kandinsky_decoder_img2img_shares_weights(fresh: ModelManager) -> None:
    t2i = fresh.kandinsky_decoder(tm.KANDINSKY_DECODER, "text2image")
    before = fresh.param_bytes()
    i2i = fresh.kandinsky_decoder(tm.KANDINSKY_DECODER, "image2image")
    assert type(i2i).__name__ == "KandinskyV22Img2ImgPipeline"
    assert i2i.unet is t2i.unet
    assert fresh.param_bytes() == before and fresh.load_count == 1


def test_param_bytes_counts_each_model(fresh: ModelManager) -> None:
    fresh.kandinsky_prior(tm.KANDINSKY_PRIOR)
    fresh.sam(tm.SAM_BASE)
    sizes = {k: v["param_bytes"] for k, v in fresh.loaded().items()}
    assert fresh.param_bytes() == sum(sizes.values())
    assert fresh.load_count == 2
    fresh.free()
    assert fresh.loaded() == {} and fresh.param_bytes() == 0
    fresh.sam(tm.SAM_BASE)
    assert fresh.load_count == 3


def test_dtype_override(tiny_root: Path) -> None:
    mgr = ModelManager(profile="tiny", tiny_root=tiny_root, device="cpu", dtype=torch.bfloat16)
    prior = mgr.kandinsky_prior(tm.KANDINSKY_PRIOR)
    assert prior.prior.dtype == torch.bfloat16
    assert mgr.loaded()[tm.KANDINSKY_PRIOR]["dtype"] == "bfloat16"
    model, _ = mgr.sam(ModelRef(tm.SAM_BASE, dtype="float32"))
    assert model.dtype == torch.float32
    t2i = mgr.sdxl(tm.SDXL_TURBO)
    before = mgr.param_bytes()
    mgr.sdxl(tm.SDXL_TURBO, "image2image")  # siblings keep the loaded dtype
    assert t2i.unet.dtype == torch.bfloat16 and mgr.param_bytes() == before


# --- every pipeline runs -------------------------------------------------------------


def test_sdxl_pipelines_run(manager: ModelManager) -> None:
    kw = {"num_inference_steps": 2, "guidance_scale": 0.0, "output_type": "np"}
    out = manager.sdxl(tm.SDXL_TURBO)("a cat", width=64, height=72, generator=_gen(), **kw)
    _finite_images(out.images, (1, 72, 64, 3))
    i2i = manager.sdxl(tm.SDXL_TURBO, "image2image")
    out = i2i("a cat", image=_image(), strength=0.5, generator=_gen(), **kw)
    _finite_images(out.images, (1, 64, 64, 3))
    for model_id in (tm.SDXL_TURBO, tm.SDXL_INPAINT):
        pipe = manager.sdxl(model_id, "inpaint")
        out = pipe("a cat", image=_image(), mask_image=_mask(), width=64, height=64,
                   strength=0.99, generator=_gen(), **kw)
        _finite_images(out.images, (1, 64, 64, 3))
    assert manager.sdxl(tm.SDXL_INPAINT, "inpaint").unet.config.in_channels == 9


def test_sdxl_matches_a_direct_diffusers_call(manager: ModelManager, tiny_root: Path) -> None:
    from diffusers import AutoPipelineForText2Image

    direct = AutoPipelineForText2Image.from_pretrained(
        tiny_path(tiny_root, tm.SDXL_TURBO), use_safetensors=True
    )
    direct.set_progress_bar_config(disable=True)
    kw = {"num_inference_steps": 1, "guidance_scale": 0.0, "width": 64, "height": 64,
          "output_type": "np"}
    ours = manager.sdxl(tm.SDXL_TURBO)("a red fox", generator=_gen(3), **kw).images
    theirs = direct("a red fox", generator=_gen(3), **kw).images
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_kandinsky_pipelines_run(manager: ModelManager) -> None:
    prior = manager.kandinsky_prior(tm.KANDINSKY_PRIOR)
    emb = prior("a cat", num_inference_steps=2, generator=_gen())
    assert emb.image_embeds.shape == (1, 32)
    assert torch.isfinite(emb.image_embeds).all() and emb.image_embeds.abs().sum() > 0
    mixed = prior.interpolate([_image(), "a dog"], [0.5, 0.5], num_inference_steps=2)
    assert mixed.image_embeds.shape == (1, 32)
    embeds = {"image_embeds": emb.image_embeds, "negative_image_embeds": emb.negative_image_embeds,
              "height": 64, "width": 64, "num_inference_steps": 2, "output_type": "np"}
    out = manager.kandinsky_decoder(tm.KANDINSKY_DECODER)(generator=_gen(), **embeds)
    _finite_images(out.images, (1, 64, 64, 3))
    i2i = manager.kandinsky_decoder(tm.KANDINSKY_DECODER, "image2image")
    out = i2i(image=_image(), strength=0.5, generator=_gen(), **embeds)
    _finite_images(out.images, (1, 64, 64, 3))
    inpaint = manager.kandinsky_decoder(tm.KANDINSKY_INPAINT, "inpaint")
    mask = np.asarray(_mask(), dtype=np.float32) / 255.0
    out = inpaint(image=_image(), mask_image=mask, generator=_gen(), **embeds)
    _finite_images(out.images, (1, 64, 64, 3))


def test_sam_runs_with_points_and_box(manager: ModelManager) -> None:
    model, processor = manager.sam(tm.SAM_BASE)
    image = _image(80)
    for prompt in ({"input_points": [[[20, 30]]]}, {"input_boxes": [[[5, 5, 60, 40]]]}):
        inputs = processor(images=image, return_tensors="pt", **prompt)
        with torch.no_grad():
            out = model(**inputs)
        masks = processor.post_process_masks(
            out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
        )
        assert out.iou_scores.shape == (1, 1, 3)
        assert masks[0].shape == (1, 3, 80, 80)


def test_upscaler_runs(manager: ModelManager) -> None:
    pipe = manager.upscaler(tm.SD_X4_UPSCALER)
    out = pipe("a cat", image=_image(16).resize((16, 24)), num_inference_steps=2,
               generator=_gen(), output_type="np")
    _finite_images(out.images, (1, 96, 64, 3))


# --- errors -------------------------------------------------------------------------


def _one_line_error(call) -> str:
    start = time.monotonic()
    with pytest.raises(ModelError) as info:
        call()
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_hub_model_fails_fast(empty_hf_home: Path) -> None:
    mgr = ModelManager(profile="hub", device="cpu")
    message = _one_line_error(lambda: mgr.sdxl("graphkit-tests/no-such-model"))
    assert "'graphkit-tests/no-such-model'" in message
    assert mgr.load_count == 0


def test_missing_hub_model_offline(empty_hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    mgr = ModelManager(profile="hub", device="cpu")
    message = _one_line_error(lambda: mgr.sam("graphkit-tests/no-such-sam"))
    assert message.startswith("model 'graphkit-tests/no-such-sam' not found")
    assert str(empty_hf_home) in message and "HF_HUB_OFFLINE" in message
    assert "tiny" in message


def test_missing_local_folder(tiny_root: Path, tmp_path: Path) -> None:
    mgr = ModelManager(profile="tiny", tiny_root=tiny_root, device="cpu", model_dirs=[tmp_path])
    missing = tmp_path / "nowhere" / "model"
    message = _one_line_error(lambda: mgr.upscaler(str(missing)))
    assert str(missing) in message and "does not exist" in message


def test_bad_tasks(fresh: ModelManager) -> None:
    _one_line_error(lambda: fresh.sdxl(tm.SDXL_TURBO, "outpaint"))  # type: ignore[arg-type]
    assert "inpainting checkpoint" in _one_line_error(lambda: fresh.sdxl(tm.SDXL_INPAINT))
    _one_line_error(lambda: fresh.kandinsky_decoder(tm.KANDINSKY_DECODER, "inpaint"))


def test_hub_cache_snapshot_is_loaded_offline(
    tiny_root: Path, empty_hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = empty_hf_home / "hub" / "models--graphkit-tests--tiny-prior"
    shutil.copytree(tiny_path(tiny_root, tm.KANDINSKY_PRIOR), repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    mgr = ModelManager(profile="hub", device="cpu")
    pipe = mgr.kandinsky_prior("graphkit-tests/tiny-prior")
    assert type(pipe).__name__ == "KandinskyV22PriorPipeline"
    info = mgr.loaded()["graphkit-tests/tiny-prior"]
    assert info["kind"] == "hub" and info["revision"] == commit
    assert info["source"] == "graphkit-tests/tiny-prior"


def _pickle_copy(src: Path, dest: Path) -> Path:
    """A copy of a model folder whose weights are .bin pickles instead of safetensors."""
    shutil.copytree(src, dest)
    for file in list(dest.rglob("*.safetensors")):
        name = "pytorch_model.bin" if file.name == "model.safetensors" else (
            file.name.replace(".safetensors", ".bin"))
        torch.save(load_file(file), file.with_name(name))
        file.unlink()
    return dest


def test_pickle_weights_refused_unless_allowed(tiny_root: Path, tmp_path: Path) -> None:
    folder = _pickle_copy(tiny_path(tiny_root, tm.KANDINSKY_PRIOR), tmp_path / "prior-bin")
    mgr = ModelManager(device="cpu", model_dirs=[tmp_path])
    message = _one_line_error(lambda: mgr.kandinsky_prior(str(folder)))
    assert str(folder) in message and "safetensors" in message
    assert mgr.load_count == 0
    unsafe = ModelManager(device="cpu", allow_unsafe_weights=True, model_dirs=[tmp_path])
    assert type(unsafe.kandinsky_prior(str(folder))).__name__ == "KandinskyV22PriorPipeline"


# --- budget and the process-wide manager --------------------------------------------


def test_budget_moves_least_recently_used_to_host(
    tiny_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measure = ModelManager(profile="tiny", tiny_root=tiny_root, device="cpu")
    measure.kandinsky_decoder(tm.KANDINSKY_DECODER)
    measure.upscaler(tm.SD_X4_UPSCALER)
    measure.sam(tm.SAM_BASE)
    size = {k: v["param_bytes"] for k, v in measure.loaded().items()}
    assert measure.resident_bytes() == sum(size.values())  # no budget: everything stays
    dec, up, sam = size[tm.KANDINSKY_DECODER], size[tm.SD_X4_UPSCALER], size[tm.SAM_BASE]

    moves: list[tuple[str, str]] = []
    real_move = models._move

    def recording_move(entry, device):
        moves.append((entry.name, device.type))
        real_move(entry, device)

    monkeypatch.setattr(models, "_move", recording_move)
    # room for SAM plus one of the two bigger models
    mgr = ModelManager(profile="tiny", tiny_root=tiny_root, device="cpu",
                       budget_bytes=max(dec, up) + sam)

    def states() -> dict[str, str]:
        return {k: v["state"] for k, v in mgr.loaded().items()}

    mgr.kandinsky_decoder(tm.KANDINSKY_DECODER)
    mgr.sam(tm.SAM_BASE)
    assert set(states().values()) == {"device"} and mgr.resident_bytes() == dec + sam
    moves.clear()
    mgr.upscaler(tm.SD_X4_UPSCALER)  # the decoder is least recently used: it goes to host
    assert states()[tm.KANDINSKY_DECODER] == "host"
    assert moves == [(tm.KANDINSKY_DECODER, "cpu"), (tm.SD_X4_UPSCALER, "cpu")]
    assert mgr.resident_bytes() == up + sam <= mgr.budget_bytes

    moves.clear()
    mgr.sam(tm.SAM_BASE)  # already resident: nothing moves, but it is now the newest
    assert moves == []
    mgr.kandinsky_decoder(tm.KANDINSKY_DECODER)  # back; the upscaler is now the LRU
    assert states() == {tm.KANDINSKY_DECODER: "device", tm.SAM_BASE: "device",
                        tm.SD_X4_UPSCALER: "host"}
    assert mgr.resident_bytes() == dec + sam
    assert mgr.load_count == 3  # moving is not loading

    mgr.budget_bytes = 1  # bigger than the whole budget: alone on the device (offload on CUDA)
    mgr.upscaler(tm.SD_X4_UPSCALER)
    assert [k for k, s in states().items() if s == "device"] == [tm.SD_X4_UPSCALER]


def test_process_manager_from_environment(
    tiny_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "_MANAGER", None)
    monkeypatch.setenv("GRAPHKIT_MODELS", "tiny")
    monkeypatch.setenv("GRAPHKIT_TINY_DIR", str(tiny_root))
    mgr = models.get_manager()
    assert mgr is models.get_manager()
    assert mgr.profile == "tiny" and mgr.tiny_root == tiny_root
    other = models.configure(profile="hub", device="cpu")
    assert models.get_manager() is other and other is not mgr


def test_tiny_profile_writes_models_on_first_use(tmp_path: Path) -> None:
    mgr = ModelManager(profile="tiny", tiny_root=tmp_path / "tiny", device="cpu")
    resolved = mgr.resolve(tm.SAM_BASE)
    assert resolved.kind == "tiny"
    assert (Path(resolved.source) / "model.safetensors").is_file()
