"""Tiny random-weight stand-ins for the default models, in the real hub layout.

Each model is written with ``save_pretrained`` into ``root / model_id.replace("/", "--")``
(``model_index.json`` + component subfolders with ``config.json`` and ``*.safetensors``,
CLIP tokenizers as ``vocab.json`` + ``merges.txt``), so the ordinary ``from_pretrained``
code paths read them exactly like a downloaded snapshot. Weights are seeded: the same
call always writes the same tensors.

What the tiny models accept:

- SDXL (``stabilityai/sdxl-turbo``, 4-channel UNet) and SDXL inpaint (9-channel UNet):
  VAE downscale factor 8 as in the real model; width and height multiples of 8 (64 x 64 is
  the pipeline default, from ``unet.sample_size=8``). Text encoders: hidden sizes 32 + 32,
  pooled projection 32; 77-token prompts.
- Kandinsky 2.2 prior: image embeddings of size 32, which is what both tiny decoders
  expect (``encoder_hid_dim=32``). Its CLIP image processor works at 32 x 32.
- Kandinsky 2.2 decoder / decoder-inpaint: MoVQ downscale factor 8; width and height
  multiples of 8. The pipelines' own default is 512 x 512; pass 64 x 64 to stay fast.
  The inpaint UNet has 9 input channels.
- SAM: ViT with 256 x 256 input (images are resized so the longest side is 256);
  point and box prompts as with the real processor.
- SD x4 upscaler: VAE downscale factor 4, so the output is 4x the input size; the UNet has
  7 input channels (4 latent + 3 low-res image).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

SDXL_TURBO = "stabilityai/sdxl-turbo"
SDXL_INPAINT = "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
KANDINSKY_PRIOR = "kandinsky-community/kandinsky-2-2-prior"
KANDINSKY_DECODER = "kandinsky-community/kandinsky-2-2-decoder"
KANDINSKY_INPAINT = "kandinsky-community/kandinsky-2-2-decoder-inpaint"
SAM_BASE = "facebook/sam-vit-base"
SD_X4_UPSCALER = "stabilityai/stable-diffusion-x4-upscaler"

TINY_MODEL_IDS: tuple[str, ...] = (
    SDXL_TURBO,
    SDXL_INPAINT,
    KANDINSKY_PRIOR,
    KANDINSKY_DECODER,
    KANDINSKY_INPAINT,
    SAM_BASE,
    SD_X4_UPSCALER,
)

SEED = 0
TEXT_DIM = 32  # hidden size of every tiny text encoder
EMBED_DIM = 32  # Kandinsky image-embedding size (prior output = decoder input)
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def tiny_path(root: Path | str, model_id: str) -> Path:
    """Folder of the tiny stand-in for ``model_id`` under ``root``."""
    return Path(root) / model_id.replace("/", "--")


def write_tiny_models(root: Path | str, *, force: bool = False) -> dict[str, Path]:
    """Write every tiny model under ``root``; existing folders are kept unless ``force``."""
    from graphkit.image_processors import choose_pil_image_processors

    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    choose_pil_image_processors()
    out: dict[str, Path] = {}
    with _quiet_progress():
        for model_id in TINY_MODEL_IDS:
            dest = tiny_path(root, model_id)
            if force or not dest.is_dir():
                _write_atomically(dest, _BUILDERS[model_id], force=force)
            out[model_id] = dest
    return out


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """Hide transformers' per-shard progress bars while writing."""
    from transformers.utils import logging as tf_logging

    was_enabled = tf_logging.is_progress_bar_enabled()
    tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            tf_logging.enable_progress_bar()


def _write_atomically(dest: Path, build: Callable[[Path], None], *, force: bool) -> None:
    """Build into a temporary folder beside ``dest``, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            build(tmp)
        _make_readable(tmp)
        if force and dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            dest.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.is_dir():  # anything but "another process wrote it first"
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _make_readable(folder: Path) -> None:
    """save_pretrained writes 0600 files; make the tree readable like a hub snapshot."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


# --- tokenizer -----------------------------------------------------------------------


def _byte_chars() -> list[str]:
    """The printable character standing for each byte in byte-level BPE."""
    printable = set(range(33, 127)) | set(range(161, 173)) | set(range(174, 256))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _write_tokenizer(folder: Path, pad_token: str = EOS) -> None:
    """A 514-token CLIP-style vocabulary in the real SD layout (no tokenizer.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = _byte_chars()
    tokens = chars + [c + "</w>" for c in chars] + [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    specials = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": pad_token}
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        **specials,
    }
    _dump(folder / "vocab.json", vocab)
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    _dump(folder / "special_tokens_map.json", specials)
    _dump(folder / "tokenizer_config.json", config)


def _load_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(folder, trust_remote_code=False)


def _dump(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --- shared components ---------------------------------------------------------------


def _text_config(projection_dim: int = TEXT_DIM):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=514,
        hidden_size=TEXT_DIM,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=projection_dim,
        hidden_act="gelu",
        bos_token_id=512,
        eos_token_id=513,
        pad_token_id=513,
    )


def _text_encoder(with_projection: bool = False):
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return cls(_text_config()).eval()


def _vae(blocks: int, scaling_factor: float, force_upcast: bool = True):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=(16,) * blocks,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=scaling_factor,
        force_upcast=force_upcast,
    )


def _sdxl_unet(in_channels: int):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        transformer_layers_per_block=(1, 1),
        cross_attention_dim=2 * TEXT_DIM,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        # 6 time ids x 8 + pooled projection of text_encoder_2 (32)
        projection_class_embeddings_input_dim=6 * 8 + TEXT_DIM,
        norm_num_groups=16,
    )


def _sdxl_components(in_channels: int) -> dict:
    tok = _write_then_load_tokenizer()
    tok2 = _write_then_load_tokenizer(pad_token="!")
    return {
        "vae": _vae(4, scaling_factor=0.13025),
        "text_encoder": _text_encoder(),
        "text_encoder_2": _text_encoder(with_projection=True),
        "tokenizer": tok,
        "tokenizer_2": tok2,
        "unet": _sdxl_unet(in_channels),
    }


def _write_then_load_tokenizer(pad_token: str = EOS):
    with tempfile.TemporaryDirectory() as tmp:
        _write_tokenizer(Path(tmp), pad_token=pad_token)
        return _load_tokenizer(Path(tmp))


def _save_pipeline(pipe, dest: Path, tokenizers: dict[str, str]) -> None:
    """save_pretrained, then rewrite the tokenizer folders in the real SD layout."""
    pipe.save_pretrained(dest, safe_serialization=True)
    for name, pad in tokenizers.items():
        shutil.rmtree(dest / name)
        _write_tokenizer(dest / name, pad_token=pad)
    # Without torchvision, transformers swaps in "...Pil" processor classes; the real
    # index names the standard class, which loads either way.
    index_file = dest / "model_index.json"
    index = json.loads(index_file.read_text(encoding="utf-8"))
    for spec in index.values():
        if isinstance(spec, list) and spec and spec[0] == "transformers" and spec[1]:
            spec[1] = spec[1].removesuffix("Pil")
    _dump(index_file, index)


# --- builders ------------------------------------------------------------------------


def _build_sdxl_turbo(dest: Path) -> None:
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionXLPipeline

    scheduler = EulerAncestralDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="trailing",
    )
    pipe = StableDiffusionXLPipeline(
        **_sdxl_components(4), scheduler=scheduler, force_zeros_for_empty_prompt=True
    )
    _save_pipeline(pipe, dest, {"tokenizer": EOS, "tokenizer_2": "!"})


def _build_sdxl_inpaint(dest: Path) -> None:
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline

    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
    )
    # The real checkpoint conditions on 6 time ids (no aesthetic score), like SDXL base.
    pipe = StableDiffusionXLInpaintPipeline(
        **_sdxl_components(9),
        scheduler=scheduler,
        requires_aesthetics_score=False,
        force_zeros_for_empty_prompt=True,
    )
    _save_pipeline(pipe, dest, {"tokenizer": EOS, "tokenizer_2": "!"})


def _build_kandinsky_prior(dest: Path) -> None:
    from diffusers import KandinskyV22PriorPipeline, PriorTransformer, UnCLIPScheduler
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    prior = PriorTransformer(
        num_attention_heads=2,
        attention_head_dim=16,
        num_layers=1,
        embedding_dim=EMBED_DIM,
        num_embeddings=77,
        additional_embeddings=4,
    )
    with torch.no_grad():  # a freshly built prior un-normalises with std 0
        prior.clip_mean.zero_()
        prior.clip_std.fill_(1.0)
    vision = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=TEXT_DIM,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
            projection_dim=EMBED_DIM,
        )
    ).eval()
    processor = CLIPImageProcessor(
        do_resize=True,
        size={"shortest_edge": 32},
        do_center_crop=True,
        crop_size={"height": 32, "width": 32},
        do_normalize=True,
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
        resample=3,
    )
    scheduler = UnCLIPScheduler(
        variance_type="fixed_small_log",
        clip_sample=True,
        clip_sample_range=10.0,
        prediction_type="sample",
        num_train_timesteps=1000,
    )
    pipe = KandinskyV22PriorPipeline(
        prior=prior,
        image_encoder=vision,
        text_encoder=_text_encoder(with_projection=True),
        tokenizer=_write_then_load_tokenizer(),
        scheduler=scheduler,
        image_processor=processor,
    )
    _save_pipeline(pipe, dest, {"tokenizer": EOS})


def _kandinsky_unet(in_channels: int):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8,
        in_channels=in_channels,
        out_channels=8,  # learned variance, as in the real decoder
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=(32, 64),
        layers_per_block=1,
        attention_head_dim=8,
        cross_attention_dim=32,
        encoder_hid_dim=EMBED_DIM,
        encoder_hid_dim_type="image_proj",
        addition_embed_type="image",
        resnet_time_scale_shift="scale_shift",
        norm_num_groups=16,
    )


def _movq():
    from diffusers import VQModel

    # norm_type="spatial" uses GroupNorm(32): every channel count is a multiple of 32.
    return VQModel(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3 + ("AttnDownEncoderBlock2D",),
        up_block_types=("AttnUpDecoderBlock2D",) + ("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 32, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        num_vq_embeddings=64,
        vq_embed_dim=4,
        norm_num_groups=32,
        norm_type="spatial",
        sample_size=64,
    )


def _ddpm_decoder_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        prediction_type="epsilon",
        steps_offset=1,
        thresholding=False,
    )


def _build_kandinsky_decoder(dest: Path) -> None:
    from diffusers import KandinskyV22Pipeline

    pipe = KandinskyV22Pipeline(
        unet=_kandinsky_unet(4), scheduler=_ddpm_decoder_scheduler(), movq=_movq()
    )
    _save_pipeline(pipe, dest, {})


def _build_kandinsky_inpaint(dest: Path) -> None:
    from diffusers import KandinskyV22InpaintPipeline

    pipe = KandinskyV22InpaintPipeline(
        unet=_kandinsky_unet(9), scheduler=_ddpm_decoder_scheduler(), movq=_movq()
    )
    _save_pipeline(pipe, dest, {})


def _build_sam(dest: Path) -> None:
    from transformers import (
        SamConfig,
        SamImageProcessor,
        SamMaskDecoderConfig,
        SamModel,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    vision = SamVisionConfig(
        hidden_size=32,
        output_channels=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_dim=64,
        image_size=256,
        patch_size=16,
        window_size=4,
        global_attn_indexes=[1],
        num_pos_feats=16,  # positional features x 2 = prompt-encoder width
    )
    prompt = SamPromptEncoderConfig(
        hidden_size=32, image_size=256, patch_size=16, mask_input_channels=4
    )
    decoder = SamMaskDecoderConfig(
        hidden_size=32,
        mlp_dim=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        iou_head_hidden_dim=32,
        num_multimask_outputs=3,
    )
    config = SamConfig(
        vision_config=vision.to_dict(),
        prompt_encoder_config=prompt.to_dict(),
        mask_decoder_config=decoder.to_dict(),
    )
    SamModel(config).eval().save_pretrained(dest, safe_serialization=True)
    image_processor = SamImageProcessor(
        size={"longest_edge": 256},
        pad_size={"height": 256, "width": 256},
        mask_size={"longest_edge": 64},
        mask_pad_size={"height": 64, "width": 64},
    )
    # The real repo ships preprocessor_config.json, which SamProcessor.from_pretrained reads.
    image_processor.save_pretrained(dest)


def _build_upscaler(dest: Path) -> None:
    from diffusers import (
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )

    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=7,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        attention_head_dim=8,
        use_linear_projection=True,
        cross_attention_dim=TEXT_DIM,
        num_class_embeds=1000,
        norm_num_groups=16,
    )
    low_res = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.0001,
        beta_end=0.02, clip_sample=False,
    )
    scheduler = DDIMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
        beta_end=0.012, clip_sample=False, set_alpha_to_one=False, steps_offset=1,
        prediction_type="v_prediction",
    )
    pipe = StableDiffusionUpscalePipeline(
        vae=_vae(3, scaling_factor=0.08333, force_upcast=False),
        text_encoder=_text_encoder(),
        tokenizer=_write_then_load_tokenizer(),
        unet=unet,
        low_res_scheduler=low_res,
        scheduler=scheduler,
        max_noise_level=350,
    )
    _save_pipeline(pipe, dest, {"tokenizer": EOS})


_BUILDERS: dict[str, Callable[[Path], None]] = {
    SDXL_TURBO: _build_sdxl_turbo,
    SDXL_INPAINT: _build_sdxl_inpaint,
    KANDINSKY_PRIOR: _build_kandinsky_prior,
    KANDINSKY_DECODER: _build_kandinsky_decoder,
    KANDINSKY_INPAINT: _build_kandinsky_inpaint,
    SAM_BASE: _build_sam,
    SD_X4_UPSCALER: _build_upscaler,
}
