"""Upscale an image x2 or x4: Lanczos resampling, or the Stable Diffusion x4 upscaler."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F

from graphkit import Image, Param, Prompt, RunContext, node
from nodes._diffusion import (
    Model,
    Revision,
    Seed,
    StepReporter,
    batch_prompts,
    from_pipe,
    get_model,
    to_pipe,
)

X4_UPSCALER = "stabilityai/stable-diffusion-x4-upscaler"
LANCZOS_A = 3


@node("image.upscale", title="Upscale image", category="image", version="1.0.0")
def image_upscale(
    ctx: RunContext,
    image: Image,
    prompt: Prompt | None = None,
    scale: Literal[2, 4] = 4,
    method: Literal["diffusion", "lanczos"] = "diffusion",
    tile: Annotated[int, Param(ge=0, le=1024, multiple_of=8, description=(
        "Diffusion only: inputs larger than this many pixels a side are upscaled in "
        "overlapping tiles that are blended; 0 = never tile."))] = 128,
    tile_overlap: Annotated[int, Param(ge=0, le=256, multiple_of=8,
                                       description="Overlap between tiles, input pixels.")] = 16,
    steps: Annotated[int, Param(ge=1, le=200, description="Denoising steps.")] = 20,
    guidance: Annotated[float, Param(ge=0, le=30, description="Classifier-free guidance.")] = 9.0,
    noise_level: Annotated[int, Param(ge=0, le=350, description=(
        "Noise added to the low-res input; more lets the model invent more detail."))] = 20,
    seed: Seed = 0,
    model: Model = X4_UPSCALER,
    revision: Revision = None,
) -> Image:
    """Upscale by 2 or 4. ``lanczos`` resamples (Lanczos-3, like PIL's). ``diffusion`` runs
    the Stable Diffusion x4 upscaler, guided by the optional prompt; it is natively x4, so
    x2 runs it at x4 and then downsamples the result by 2 with Lanczos."""
    # diffusion is natively x4: x2 makes the x4 image first, then shrinks it
    factor = scale if method == "lanczos" else 4
    ctx.limits.check_upscale("scale", image.width, image.height, factor)
    ctx.limits.check_image("scale", image.width * factor, image.height * factor,
                           f"{image.width}x{image.height} upscaled x{factor}")
    if method == "lanczos":
        out_h, out_w = image.height * scale, image.width * scale
        return Image(lanczos_resize(image.pixels, out_h, out_w))
    pipe = get_model(ctx.models.upscaler, model, revision=revision)
    text, negative = (prompt.text, prompt.negative) if prompt is not None else ("", "")
    run = _Runner(ctx, pipe, text, negative, steps, guidance, noise_level, seed)
    up = upscale_tiled(image.pixels, run, tile, tile_overlap, factor=4)
    if scale == 2:
        up = lanczos_resize(up, image.height * 2, image.width * 2)
    return Image(from_pipe(up, ctx))


class _Runner:
    """One x4 upscaler call per tile, all sharing a generator and the progress count."""

    def __init__(self, ctx: RunContext, pipe: Any, text: str, negative: str, steps: int,
                 guidance: float, noise_level: int, seed: int) -> None:
        self.ctx, self.pipe, self.text, self.negative = ctx, pipe, text, negative
        self.steps, self.guidance, self.noise_level = steps, guidance, noise_level
        self.generator = ctx.generator(seed)
        self.report = StepReporter(ctx)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        texts, negatives = batch_prompts(self.text, self.negative, pixels.shape[0])
        self.ctx.check_cancelled()
        out = self.pipe(
            prompt=texts, negative_prompt=negatives, image=to_pipe(pixels, self.pipe),
            num_inference_steps=self.steps, guidance_scale=self.guidance,
            noise_level=self.noise_level, generator=self.generator, output_type="pt",
            callback=self.report.legacy, callback_steps=1,
        )
        return out.images.float()


def upscale_tiled(pixels: torch.Tensor, run: Any, tile: int, overlap: int,
                  factor: int) -> torch.Tensor:
    """Upscale by ``factor`` with ``run``; over ``tile`` pixels a side, in overlapping tiles
    whose seams are blended with linear ramps. Sides are padded to a multiple of 8 first."""
    h, w = pixels.shape[-2:]
    ph, pw = -h % 8, -w % 8
    x = F.pad(pixels, (0, pw, 0, ph), mode="replicate") if ph or pw else pixels
    H, W = x.shape[-2:]  # noqa: N806
    if tile <= 0 or (H <= tile and W <= tile):
        if isinstance(run, _Runner):
            run.report.total = run.steps
        return run(x)[..., : h * factor, : w * factor]
    overlap = min(overlap, tile // 2)
    ys, xs = _starts(H, tile, overlap), _starts(W, tile, overlap)
    if isinstance(run, _Runner):
        run.report.total = run.steps * len(ys) * len(xs)
    out = weight_sum = None
    for y0 in ys:
        for x0 in xs:
            th, tw = min(tile, H), min(tile, W)
            up = run(x[..., y0:y0 + th, x0:x0 + tw])
            if out is None:
                out = up.new_zeros(up.shape[0], up.shape[1], H * factor, W * factor)
                weight_sum = up.new_zeros(1, 1, H * factor, W * factor)
            wy = _ramp(th * factor, overlap * factor, y0 > 0, y0 + th < H, up)
            wx = _ramp(tw * factor, overlap * factor, x0 > 0, x0 + tw < W, up)
            weight = wy.view(1, 1, -1, 1) * wx.view(1, 1, 1, -1)
            sy, sx = slice(y0 * factor, (y0 + th) * factor), slice(x0 * factor, (x0 + tw) * factor)
            out[..., sy, sx] += up * weight
            weight_sum[..., sy, sx] += weight
    assert out is not None and weight_sum is not None
    return (out / weight_sum.clamp_min(1e-8))[..., : h * factor, : w * factor]


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    stride = max(8, (tile - overlap) // 8 * 8)
    starts = list(range(0, size - tile, stride))
    return [*starts, size - tile]


def _ramp(n: int, width: int, fade_in: bool, fade_out: bool, like: torch.Tensor) -> torch.Tensor:
    """1 inside the tile, ramping down towards an edge shared with a neighbour."""
    pos = torch.arange(n, device=like.device, dtype=like.dtype) + 0.5
    ramp = torch.ones(n, device=like.device, dtype=like.dtype)
    if width > 0:
        if fade_in:
            ramp = torch.minimum(ramp, pos / width)
        if fade_out:
            ramp = torch.minimum(ramp, (n - pos) / width)
    return ramp


def lanczos_resize(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Resize (B, C, H, W) in [0, 1] with a separable Lanczos-3 filter, antialiased when
    shrinking, on the tensor's device. Like PIL: width first, clipped between the passes."""
    ww = _lanczos_weights(x.shape[-1], out_w, x)
    wh = _lanczos_weights(x.shape[-2], out_h, x)
    y = torch.einsum("pw,bchw->bchp", ww, x.float()).clamp(0, 1)
    return torch.einsum("oh,bchp->bcop", wh, y).clamp(0, 1)


def _lanczos_weights(n_in: int, n_out: int, like: torch.Tensor) -> torch.Tensor:
    """(n_out, n_in) matrix of normalised Lanczos taps, as PIL computes them."""
    scale = n_in / n_out
    stretch = max(1.0, scale)
    centers = (torch.arange(n_out, device=like.device, dtype=torch.float64) + 0.5) * scale
    taps = torch.arange(n_in, device=like.device, dtype=torch.float64) + 0.5
    d = (taps[None, :] - centers[:, None]) / stretch
    w = _sinc(d) * _sinc(d / LANCZOS_A)
    w = torch.where(d.abs() < LANCZOS_A, w, torch.zeros_like(w))
    return (w / w.sum(dim=1, keepdim=True)).to(torch.float32)


def _sinc(x: torch.Tensor) -> torch.Tensor:
    px = math.pi * x
    return torch.where(x == 0, torch.ones_like(x), torch.sin(px) / torch.where(x == 0,
                                                                               1.0, px))
