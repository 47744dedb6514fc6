"""Kandinsky 2.2 nodes: the prior (text and images to image embeddings) and the decoder."""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F

from graphkit import Image, ImageEmbeds, Param, Prompt, RunContext, node
from graphkit.context import NodeInputError
from graphkit.registry import USED_WHEN_LINKED, Batching
from graphkit.types import Mask
from nodes._diffusion import (
    Model,
    Revision,
    Seed,
    StepReporter,
    check_multiple,
    check_strength,
    from_pipe,
    generators,
    get_model,
    pipe_device,
    split_batch,
    to_pipe,
)

SPACE = "kandinsky2.2"
PRIOR = "kandinsky-community/kandinsky-2-2-prior"
DECODER = "kandinsky-community/kandinsky-2-2-decoder"
DECODER_INPAINT = "kandinsky-community/kandinsky-2-2-decoder-inpaint"

Embeds = ImageEmbeds.where(space=SPACE)
# The decoder loads its inpainting checkpoint when a mask is linked, else its own.
DecoderModel = Annotated[str, Param(min_length=1, max_length=500, description="Hub id or "
                                    "local folder, used without a mask input.",
                                    json_schema_extra={USED_WHEN_LINKED: {"mask": False}})]
InpaintModel = Annotated[str, Param(min_length=1, max_length=500, description="Hub id or "
                                    "local folder, used with a mask input (inpainting).",
                                    json_schema_extra={USED_WHEN_LINKED: {"mask": True}})]
Steps = Annotated[int, Param(ge=1, le=200, description="Denoising steps.")]
PriorSteps = Annotated[int, Param(ge=2, le=200, description="Prior denoising steps (2 or more).")]
Guidance = Annotated[float, Param(ge=0, le=30, description="Classifier-free guidance "
                                                         "(above 1 uses the negative).")]
Weight = Annotated[float, Param(ge=0, le=100, description="Relative weight in the mix.")]
Side = Annotated[int, Param(ge=64, le=4096, multiple_of=64,
                            description="Pixels, multiple of 64; used without an image.")]


@node("kandinsky.prior", title="Kandinsky 2.2 prior", category="generate", version="1.0.0")
def kandinsky_prior(
    ctx: RunContext,
    prompt: Prompt,
    image_a: Image | None = None,
    image_b: Image | None = None,
    text_weight: Weight = 1.0,
    image_a_weight: Weight = 1.0,
    image_b_weight: Weight = 1.0,
    steps: PriorSteps = 25,
    guidance: Guidance = 4.0,
    seed: Seed = 0,
    model: Model = PRIOR,
    revision: Revision = None,
) -> Embeds:
    """Image embeddings for a prompt, or a weighted mix of the prompt and up to two images.

    Without images this is the plain prior call. With images it mixes like the prior's
    ``interpolate`` (weights divided by their sum): the prompt through the prior, each
    image through the CLIP image encoder; the negative is the negative prompt through the
    prior, or the embedding of a blank image when there is none.
    """
    pipe = get_model(ctx.models.kandinsky_prior, model, revision=revision)
    generator = ctx.generator(seed)
    images = [(im, w) for im, w in ((image_a, image_a_weight), (image_b, image_b_weight))
              if im is not None]
    ctx.check_cancelled()
    if not images:
        out = pipe(prompt.text, negative_prompt=prompt.negative or None,
                   num_inference_steps=steps, guidance_scale=guidance, generator=generator,
                   callback_on_step_end=StepReporter(ctx))
        return ImageEmbeds(out.image_embeds, out.negative_image_embeds, SPACE)
    return _interpolate(ctx, pipe, prompt, text_weight, images, steps, guidance, generator)


def _interpolate(ctx: RunContext, pipe: Any, prompt: Prompt, text_weight: float,
                 images: list[tuple[Image, float]], steps: int, guidance: float,
                 generator: torch.Generator) -> ImageEmbeds:
    total_weight = text_weight + sum(w for _im, w in images)
    if total_weight <= 0:
        raise NodeInputError("text_weight", "the weights add up to 0; give one a weight")
    runs = int(text_weight > 0) + int(bool(prompt.negative))
    report = StepReporter(ctx, total=max(1, runs * steps))
    parts = []
    if text_weight > 0:
        out = pipe(prompt.text, num_inference_steps=steps, guidance_scale=guidance,
                   generator=generator, callback_on_step_end=report)
        parts.append(out.image_embeds * (text_weight / total_weight))
    for name, (im, _weight) in zip(("image_a", "image_b"), images, strict=False):
        clip_size(im.pixels, pipe, name)  # checked before the first pipeline call
    with torch.no_grad():
        for im, weight in images:
            pixels = clip_pixels(im.pixels, pipe)
            parts.append(pipe.image_encoder(pixels)["image_embeds"] * (weight / total_weight))
    batch = max(p.shape[0] for p in parts)
    positive = sum(p.expand(batch, -1) for p in parts)
    if prompt.negative:
        negative = pipe(prompt.negative, num_inference_steps=steps, guidance_scale=guidance,
                        generator=generator, callback_on_step_end=report).image_embeds
    else:
        with torch.no_grad():
            negative = pipe.get_zero_embed(1, device=positive.device)
    return ImageEmbeds(positive, negative.expand(batch, -1).contiguous(), SPACE)


def clip_size(pixels: torch.Tensor, pipe: Any, field: str = "image") -> tuple[int, int]:
    """(height, width) the CLIP processor resizes an image to (shortest side to its size),
    checked against the limits: a thin image would grow very long."""
    from graphkit.limits import limits

    proc = pipe.image_processor
    size = proc.size.get("shortest_edge") or min(proc.size.values())
    crop_h, crop_w = proc.crop_size["height"], proc.crop_size["width"]
    h, w = pixels.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(crop_h, round(h * scale)), max(crop_w, round(w * scale))
    limits().check_image(field, nw, nh, f"the image resized for CLIP ({w}x{h} with its "
                         f"shortest side to {size})")
    return nh, nw


def clip_pixels(pixels: torch.Tensor, pipe: Any) -> torch.Tensor:
    """[0, 1] images prepared for the prior's CLIP image encoder, without leaving the device.

    Same steps as its image processor: shortest side resized (bicubic), centre crop,
    normalised with the processor's mean and std.
    """
    proc = pipe.image_processor
    encoder = pipe.image_encoder
    crop_h, crop_w = proc.crop_size["height"], proc.crop_size["width"]
    nh, nw = clip_size(pixels, pipe)
    x = pixels.to(device=encoder.device, dtype=torch.float32)
    x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
    top, left = (nh - crop_h) // 2, (nw - crop_w) // 2
    x = x[:, :, top:top + crop_h, left:left + crop_w].clamp(0, 1)
    mean = torch.tensor(proc.image_mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(proc.image_std, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).to(encoder.dtype)


def _decoder_batch(
    ctx: RunContext,
    items: list[dict[str, Any]],
    image: Image | None = None,
    mask: Mask | None = None,
    strength: float = 0.3,
    steps: int = 50,
    guidance: float = 4.0,
    width: int = 512,
    height: int = 512,
    model: str = DECODER,
    inpaint_model: str = DECODER_INPAINT,
    revision: str | None = None,
    inpaint_revision: str | None = None,
) -> list[Image]:
    """Decode several (embeds, seed) items in one pipeline call, one generator per item."""
    seeds = [int(it["seed"]) for it in items]
    if len(items) == 1:
        embeds, generator = items[0]["embeds"], ctx.generator(seeds[0])
    else:
        if any(it["embeds"].positive.shape[0] != 1 for it in items):
            raise ValueError("a batched decode takes embeddings of batch 1 per item")
        embeds = ImageEmbeds(torch.cat([it["embeds"].positive for it in items]),
                             torch.cat([it["embeds"].negative for it in items]), SPACE)
        generator = generators(ctx, seeds)
    pixels = _decode(ctx, embeds, image, mask, strength, steps, guidance, width, height,
                     generator, model, inpaint_model, revision, inpaint_revision)
    if len(items) == 1:
        return [Image(pixels)]
    return [Image(part) for part in split_batch(pixels, len(items))]


@node("kandinsky.decoder", title="Kandinsky 2.2 decoder", category="generate", version="1.0.0",
      batching=Batching(("embeds", "seed"), _decoder_batch))
def kandinsky_decoder(
    ctx: RunContext,
    embeds: Embeds,
    image: Image | None = None,
    mask: Mask | None = None,
    strength: Annotated[float, Param(ge=0, le=1, description="With an image and no mask: "
                                     "how much to redraw.")] = 0.3,
    steps: Steps = 50,
    guidance: Guidance = 4.0,
    width: Side = 512,
    height: Side = 512,
    seed: Seed = 0,
    model: DecoderModel = DECODER,
    inpaint_model: InpaintModel = DECODER_INPAINT,
    revision: Revision = None,
    inpaint_revision: Revision = None,
) -> Image:
    """Image embeddings to an image (or image to image, or inpaint with image + mask).

    With an image, it is redrawn by ``strength``; with an image and a mask, the region where
    the mask is 1 is repainted with the inpainting checkpoint. With an image the output has
    its size (width and height multiples of 64). In a sweep, variations that differ only in
    the embeddings or the seed run as one batch.
    """
    return _decoder_batch(ctx, [{"embeds": embeds, "seed": seed}], image, mask, strength,
                          steps, guidance, width, height, model, inpaint_model, revision,
                          inpaint_revision)[0]


def _decode(ctx: RunContext, embeds: ImageEmbeds, image: Image | None, mask: Mask | None,
            strength: float, steps: int, guidance: float, width: int, height: int,
            generator: Any, model: str, inpaint_model: str, revision: str | None,
            inpaint_revision: str | None) -> torch.Tensor:
    """The decoder's pixels (text to image, image to image or inpaint)."""
    if mask is not None and image is None:
        raise NodeInputError("mask", "inpainting needs an image input as well as the mask")
    if image is None:
        pipe = get_model(ctx.models.kandinsky_decoder, model, "text2image", revision=revision)
        positive, negative = _on_pipe(pipe, embeds.positive, embeds.negative)
        ctx.check_cancelled()
        out = pipe(image_embeds=positive, negative_image_embeds=negative, width=width,
                   height=height, num_inference_steps=steps, guidance_scale=guidance,
                   generator=generator, output_type="pt",
                   callback_on_step_end=StepReporter(ctx))
        return from_pipe(out.images * 0.5 + 0.5, ctx)
    check_multiple("image", "the image", image.width, image.height, 64)
    positive, negative, pixels = _match_batch(embeds, image.pixels)
    if mask is None:
        check_strength(steps, strength)
        pipe = get_model(ctx.models.kandinsky_decoder, model, "image2image", revision=revision)
        positive, negative = _on_pipe(pipe, positive, negative)
        ctx.check_cancelled()
        out = pipe(image_embeds=positive, negative_image_embeds=negative,
                   image=to_pipe(pixels, pipe), width=image.width, height=image.height,
                   strength=strength, num_inference_steps=steps, guidance_scale=guidance,
                   generator=generator, output_type="pt",
                   callback_on_step_end=StepReporter(ctx))
        return from_pipe(out.images, ctx)  # img2img post-processes to [0, 1] itself
    return _inpaint(ctx, positive, negative, pixels, mask, steps, guidance, generator,
                    inpaint_model, inpaint_revision)


def _inpaint(ctx: RunContext, positive: torch.Tensor, negative: torch.Tensor,
             pixels: torch.Tensor, mask: Mask, steps: int, guidance: float, generator: Any,
             model: str, revision: str | None) -> torch.Tensor:
    h, w = pixels.shape[-2:]
    if (mask.height, mask.width) != (h, w):
        raise NodeInputError("mask", f"the mask is {mask.width}x{mask.height} but the image is "
                             f"{w}x{h}; they must match")
    pipe = get_model(ctx.models.kandinsky_decoder, model, "inpaint", revision=revision)
    positive, negative = _on_pipe(pipe, positive, negative)
    # diffusers >= 0.19 reads the mask like graphkit: 1 (white) = repaint. It binarises the
    # tensor in place, so it gets its own copy; tensor images are expected in [-1, 1].
    alpha = to_pipe(mask.alpha, pipe).expand(pixels.shape[0], -1, -1, -1).clone()
    ctx.check_cancelled()
    out = pipe(image_embeds=positive, negative_image_embeds=negative,
               image=to_pipe(pixels, pipe) * 2 - 1, mask_image=alpha, width=w, height=h,
               num_inference_steps=steps, guidance_scale=guidance,
               generator=generator, output_type="pt",
               callback_on_step_end=StepReporter(ctx))
    return from_pipe(out.images * 0.5 + 0.5, ctx)


def _match_batch(embeds: ImageEmbeds, pixels: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Embeddings and images with one batch size (a batch of 1 is repeated)."""
    e, b = embeds.positive.shape[0], pixels.shape[0]
    n = max(e, b)
    if e not in (1, n) or b not in (1, n):
        raise NodeInputError("image", f"{b} images but {e} embeddings; give one of them a "
                             "batch of 1 or make them equal")

    def rep(t: torch.Tensor) -> torch.Tensor:
        return t.expand(n, *t.shape[1:]).contiguous() if t.shape[0] != n else t

    return rep(embeds.positive), rep(embeds.negative), rep(pixels)


def _on_pipe(pipe: Any, *embeds: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Embeddings on the decoder's device and in its dtype."""
    device, dtype = pipe_device(pipe), pipe.unet.dtype
    return tuple(e.to(device=device, dtype=dtype) for e in embeds)
