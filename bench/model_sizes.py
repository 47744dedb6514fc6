"""Parameter counts and weight sizes of the default models, computed without their weights.

Each model's architecture is built on the meta device (no memory, no download) from the
sizes of its published configuration, written out below; the counts give the download
size (the repos' plain safetensors are float32: 4 bytes a parameter) and the weights'
GPU memory in float16 (2 bytes). These are estimates: real repos add a little (configs,
tokenizers), and a run needs working memory on top. Run: python bench/model_sizes.py
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from accelerate import init_empty_weights


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _sdxl_unet(in_channels: int) -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        in_channels=in_channels, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
        cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816)


def _vae(channels: tuple[int, ...]) -> torch.nn.Module:
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=channels, latent_channels=4, layers_per_block=2,
                         down_block_types=("DownEncoderBlock2D",) * len(channels),
                         up_block_types=("UpDecoderBlock2D",) * len(channels))


def _clip_text(hidden: int, layers: int, heads: int, projection: int | None
               ) -> torch.nn.Module:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(hidden_size=hidden, intermediate_size=4 * hidden,
                            num_hidden_layers=layers, num_attention_heads=heads,
                            projection_dim=projection or hidden)
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def _bigg_vision() -> torch.nn.Module:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    return CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=1664, intermediate_size=8192, num_hidden_layers=48,
        num_attention_heads=16, patch_size=14, image_size=224, projection_dim=1280))


def _prior() -> torch.nn.Module:
    from diffusers import PriorTransformer

    return PriorTransformer(num_attention_heads=32, attention_head_dim=64, num_layers=20,
                            embedding_dim=1280, num_embeddings=77, additional_embeddings=4)


def _kandinsky_unet(in_channels: int) -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        in_channels=in_channels, out_channels=8, layers_per_block=3,
        block_out_channels=(384, 768, 1152, 1536),
        down_block_types=("ResnetDownsampleBlock2D",) + ("SimpleCrossAttnDownBlock2D",) * 3,
        up_block_types=("SimpleCrossAttnUpBlock2D",) * 3 + ("ResnetUpsampleBlock2D",),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", cross_attention_dim=768,
        encoder_hid_dim=1280, encoder_hid_dim_type="image_proj", addition_embed_type="image",
        attention_head_dim=64, resnet_time_scale_shift="scale_shift")


def _movq() -> torch.nn.Module:
    from diffusers import VQModel

    return VQModel(
        down_block_types=("DownEncoderBlock2D",) * 3 + ("AttnDownEncoderBlock2D",),
        up_block_types=("AttnUpDecoderBlock2D",) + ("UpDecoderBlock2D",) * 3,
        block_out_channels=(128, 256, 256, 512), layers_per_block=2, latent_channels=4,
        num_vq_embeddings=16384, vq_embed_dim=4, norm_type="spatial")


def _sam_base() -> torch.nn.Module:
    from transformers import SamConfig, SamModel

    return SamModel(SamConfig())  # the default vision config is ViT-B (768 wide, 12 layers)


def _x4_unet() -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        in_channels=7, out_channels=4, layers_per_block=2, block_out_channels=(256, 512, 512,
                                                                               1024),
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * 3,
        up_block_types=("CrossAttnUpBlock2D",) * 3 + ("UpBlock2D",),
        cross_attention_dim=1024, attention_head_dim=8, num_class_embeds=1000,
        use_linear_projection=True, only_cross_attention=[True, True, True, False])


MODELS: dict[str, list[Callable[[], torch.nn.Module]]] = {
    "stabilityai/sdxl-turbo": [
        lambda: _sdxl_unet(4), lambda: _vae((128, 256, 512, 512)),
        lambda: _clip_text(768, 12, 12, None), lambda: _clip_text(1280, 32, 20, 1280)],
    "diffusers/stable-diffusion-xl-1.0-inpainting-0.1": [
        lambda: _sdxl_unet(9), lambda: _vae((128, 256, 512, 512)),
        lambda: _clip_text(768, 12, 12, None), lambda: _clip_text(1280, 32, 20, 1280)],
    "kandinsky-community/kandinsky-2-2-prior": [
        _prior, lambda: _clip_text(1280, 32, 20, 1280), _bigg_vision],
    "kandinsky-community/kandinsky-2-2-decoder": [lambda: _kandinsky_unet(4), _movq],
    "kandinsky-community/kandinsky-2-2-decoder-inpaint": [lambda: _kandinsky_unet(9), _movq],
    "facebook/sam-vit-base": [_sam_base],
    "stabilityai/stable-diffusion-x4-upscaler": [
        _x4_unet, lambda: _vae((128, 256, 512)), lambda: _clip_text(1024, 23, 16, None)],
}


def main() -> None:
    print(f"{'model':<52}{'params':>10}{'fp32 download':>15}{'fp16 on GPU':>13}")
    for name, parts in MODELS.items():
        with init_empty_weights():
            params = sum(_count(build()) for build in parts)
        print(f"{name:<52}{params / 1e9:>9.2f}B{params * 4 / 1e9:>12.1f} GB"
              f"{params * 2 / 1e9:>10.1f} GB")


if __name__ == "__main__":
    main()
