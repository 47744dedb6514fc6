"""SDXL nodes: text to image, image to image, inpaint (SDXL-Turbo and SDXL checkpoints)."""

from __future__ import annotations

from typing import Annotated, Any

import torch

from graphkit import Image, Param, Prompt, RunContext, node
from graphkit.context import NodeInputError
from graphkit.registry import Batching
from graphkit.types import Mask
from nodes._diffusion import (
    Model,
    Revision,
    Seed,
    StepReporter,
    batch_prompts,
    calls_by_negative,
    check_multiple,
    check_strength,
    from_pipe,
    generators,
    get_model,
    to_pipe,
)

TURBO = "stabilityai/sdxl-turbo"
INPAINT = "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"

Steps = Annotated[int, Param(ge=1, le=50, description="Denoising steps; 1-4 for SDXL-Turbo.")]
Guidance = Annotated[float, Param(ge=0, le=30, description="Classifier-free guidance; "
                                                         "0 for SDXL-Turbo (off).")]
Side = Annotated[int, Param(ge=64, le=4096, multiple_of=8, description="Pixels, multiple of 8.")]
Strength = Annotated[float, Param(ge=0, le=1, description="How much of the input to redraw "
                                                         "(1 = all of it).")]


def _text2image_batch(
    ctx: RunContext,
    items: list[dict[str, Any]],
    steps: int = 1,
    guidance: float = 0.0,
    width: int = 512,
    height: int = 512,
    model: str = TURBO,
    revision: str | None = None,
) -> list[Image]:
    """SDXL text to image for several (prompt, seed) items, one pipeline call per kind of
    negative prompt, one generator per item."""
    pipe = get_model(ctx.models.sdxl, model, "text2image", revision=revision)
    report = StepReporter(ctx)

    def call(texts: list[str], negatives: list[str] | None, seeds: list[int]) -> torch.Tensor:
        ctx.check_cancelled()
        out = pipe(
            prompt=texts,
            negative_prompt=negatives,
            num_inference_steps=steps,
            guidance_scale=guidance,
            width=width,
            height=height,
            generator=generators(ctx, seeds),
            output_type="pt",
            callback_on_step_end=report,
        )
        return from_pipe(out.images, ctx)

    return [Image(pixels) for pixels in calls_by_negative(
        [it["prompt"] for it in items], [it["seed"] for it in items], call)]


@node("sdxl.text2image", title="SDXL text to image", category="generate", version="1.0.0",
      batching=Batching(("prompt", "seed"), _text2image_batch))
def sdxl_text2image(
    ctx: RunContext,
    prompt: Prompt,
    steps: Steps = 1,
    guidance: Guidance = 0.0,
    width: Side = 512,
    height: Side = 512,
    seed: Seed = 0,
    model: Model = TURBO,
    revision: Revision = None,
) -> Image:
    """Text to image; SDXL-Turbo needs 1-4 steps and guidance 0.

    SDXL-Turbo is trained with Adversarial Diffusion Distillation for 1-4 steps without
    guidance; other SDXL checkpoints want ~25 steps and guidance 5-8. The negative prompt
    only acts when guidance > 1. In a sweep, variations that differ only in prompt or seed
    run as one batch.
    """
    return _text2image_batch(ctx, [{"prompt": prompt, "seed": seed}], steps, guidance,
                             width, height, model, revision)[0]


def _redraw_batch(
    ctx: RunContext,
    task: str,
    items: list[dict[str, Any]],
    image: Image,
    mask: Mask | None,
    strength: float,
    steps: int,
    guidance: float,
    model: str,
    revision: str | None,
) -> list[Image]:
    """SDXL image to image (no mask) or inpaint for several (prompt, seed) items.

    Items run in one pipeline call per kind of negative prompt, with the image (and mask)
    repeated once per item and one generator per item, so that each generator draws what it
    would in a single run (the VAE encodes each copy with its item's generator). An image
    batch of more than one runs item by item, its prompt repeated over the batch.
    """
    check_multiple("image", "the image", image.width, image.height, 8)
    if mask is not None and (mask.width, mask.height) != (image.width, image.height):
        raise NodeInputError("mask", f"the mask is {mask.width}x{mask.height} but the image is "
                             f"{image.width}x{image.height}; they must match")
    check_strength(steps, strength)
    pipe = get_model(ctx.models.sdxl, model, task, revision=revision)
    report = StepReporter(ctx)

    def call(texts: list[str], negatives: list[str] | None, copies: int,
             generator: Any) -> torch.Tensor:
        ctx.check_cancelled()
        extra = {} if mask is None else {
            "mask_image": to_pipe(mask.alpha.repeat(copies, 1, 1, 1), pipe),
            "width": image.width, "height": image.height}
        out = pipe(prompt=texts, negative_prompt=negatives,
                   image=to_pipe(image.pixels.repeat(copies, 1, 1, 1), pipe),
                   strength=strength, num_inference_steps=steps, guidance_scale=guidance,
                   generator=generator, output_type="pt", callback_on_step_end=report, **extra)
        return from_pipe(out.images, ctx)

    prompts: list[Prompt] = [it["prompt"] for it in items]
    size = image.pixels.shape[0]
    if size != 1 or len(items) == 1:
        return [Image(call(*batch_prompts(p.text, p.negative, size), 1,
                           ctx.generator(it["seed"]))) for p, it in zip(prompts, items,
                                                                       strict=True)]
    return [Image(pixels) for pixels in calls_by_negative(
        prompts, [it["seed"] for it in items],
        lambda texts, negatives, seeds: call(texts, negatives, len(seeds),
                                             generators(ctx, seeds)))]


def _image2image_batch(ctx: RunContext, items: list[dict[str, Any]], image: Image,
                       strength: float = 0.5, steps: int = 2, guidance: float = 0.0,
                       model: str = TURBO, revision: str | None = None) -> list[Image]:
    return _redraw_batch(ctx, "image2image", items, image, None, strength, steps, guidance,
                         model, revision)


def _inpaint_batch(ctx: RunContext, items: list[dict[str, Any]], image: Image, mask: Mask,
                   strength: float = 0.99, steps: int = 20, guidance: float = 8.0,
                   model: str = INPAINT, revision: str | None = None) -> list[Image]:
    return _redraw_batch(ctx, "inpaint", items, image, mask, strength, steps, guidance,
                         model, revision)


@node("sdxl.image2image", title="SDXL image to image", category="generate", version="1.0.0",
      batching=Batching(("prompt", "seed"), _image2image_batch))
def sdxl_image2image(
    ctx: RunContext,
    image: Image,
    prompt: Prompt,
    strength: Strength = 0.5,
    steps: Steps = 2,
    guidance: Guidance = 0.0,
    seed: Seed = 0,
    model: Model = TURBO,
    revision: Revision = None,
) -> Image:
    """Redraw an image guided by a prompt; output has the input's size (multiples of 8).

    int(steps x strength) denoising steps run (SDXL-Turbo: steps 2, strength 0.5 = 1 step).
    In a sweep, variations that differ only in prompt or seed run as one batch.
    """
    return _image2image_batch(ctx, [{"prompt": prompt, "seed": seed}], image, strength,
                              steps, guidance, model, revision)[0]


@node("sdxl.inpaint", title="SDXL inpaint", category="generate", version="1.0.0",
      batching=Batching(("prompt", "seed"), _inpaint_batch))
def sdxl_inpaint(
    ctx: RunContext,
    image: Image,
    mask: Mask,
    prompt: Prompt,
    strength: Strength = 0.99,
    steps: Steps = 20,
    guidance: Guidance = 8.0,
    seed: Seed = 0,
    model: Model = INPAINT,
    revision: Revision = None,
) -> Image:
    """Repaint where the mask is 1 (white) and keep the rest; output has the image's size.

    The default is the 9-channel SDXL inpainting checkpoint (20 steps, guidance 8); an SDXL
    text-to-image checkpoint works too (e.g. SDXL-Turbo with 2-4 steps and guidance 0). In a
    sweep, variations that differ only in prompt or seed run as one batch.
    """
    return _inpaint_batch(ctx, [{"prompt": prompt, "seed": seed}], image, mask, strength,
                          steps, guidance, model, revision)[0]
