"""Helpers shared by the diffusion nodes: model lookup, step progress, tensor handoff.

Nothing here imports diffusers or transformers at module import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import torch

from graphkit.context import NodeInputError, RunContext
from graphkit.registry import Param

MAX_SEED = 2**32 - 1

# param types every diffusion node shares
Seed = Annotated[int, Param(ge=0, le=MAX_SEED, description="Same seed, same result.")]
Model = Annotated[str, Param(min_length=1, max_length=500,
                             description="Hub id or local folder (save_pretrained layout).")]
Revision = Annotated[str | None, Param(max_length=200, description="Hub revision (commit, "
                                                                   "branch or tag).")]


def get_model(getter: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a model-manager getter; a model that cannot be had is the user's input error."""
    from graphkit.model_sources import ModelError

    try:
        return getter(*args, **kwargs)
    except ModelError as err:
        raise NodeInputError("model", str(err)) from None


class StepReporter:
    """A diffusers ``callback_on_step_end`` that reports progress (and so can cancel).

    ``total`` is the number of steps across every pipeline call this reporter is given
    to; when None, the pipeline's own step count (after strength) is used.
    """

    def __init__(self, ctx: RunContext, total: int | None = None) -> None:
        self.ctx = ctx
        self.total = total
        self.done = 0

    def __call__(self, pipe: Any, step: int, timestep: Any, kwargs: dict) -> dict:
        self.done += 1
        total = self.total or int(getattr(pipe, "_num_timesteps", 0) or 0) or self.done
        self.ctx.progress(self.done, max(total, self.done))
        return {}

    def legacy(self, step: int, timestep: Any, latents: Any) -> None:
        """The older ``callback(step, t, latents)`` form, for pipelines without the new one."""
        self.done += 1
        total = self.total or self.done
        self.ctx.progress(self.done, max(total, self.done))


def pipe_device(pipe: Any) -> torch.device:
    """Where a pipeline runs (its execution device, which offloading may differ from)."""
    device = getattr(pipe, "_execution_device", None) or getattr(pipe, "device", None)
    return torch.device(device) if device is not None else torch.device("cpu")


def to_pipe(t: torch.Tensor, pipe: Any) -> torch.Tensor:
    """A [0, 1] tensor moved to the pipeline's device (float32; diffusers casts it)."""
    return t.to(device=pipe_device(pipe), dtype=torch.float32)


def from_pipe(t: torch.Tensor, ctx: RunContext) -> torch.Tensor:
    """A pipeline's image tensor as an Image's pixels: float32 on the run device, in [0, 1]."""
    return t.to(device=ctx.device, dtype=torch.float32).clamp(0, 1)


def check_multiple(field: str, what: str, width: int, height: int, m: int) -> None:
    """Refuse sizes that are not multiples of ``m`` (the model's latent grid)."""
    if width % m or height % m:
        raise NodeInputError(field, f"{what} is {width}x{height}; width and height must be "
                             f"multiples of {m} (resize or crop it first)")


def check_strength(steps: int, strength: float) -> None:
    """img2img/inpaint run int(steps * strength) steps; refuse settings that give none."""
    if int(steps * strength) < 1:
        raise NodeInputError("steps", f"steps x strength = {steps} x {strength} gives no "
                             "denoising step; raise steps or strength")


def batch_prompts(text: str, negative: str, n: int) -> tuple[list[str], list[str] | None]:
    """Prompt lists matching an image batch of ``n`` (no negative when it is empty)."""
    return [text] * n, ([negative] * n if negative else None)


def generators(ctx: RunContext, seeds: list[int]) -> list[torch.Generator]:
    """One seeded generator per batch item: item i draws exactly what a single run would."""
    return [ctx.generator(seed) for seed in seeds]


def split_batch(pixels: torch.Tensor, n: int) -> list[torch.Tensor]:
    """A pipeline's (n, ...) output as n tensors of batch 1."""
    if pixels.shape[0] != n:
        raise ValueError(f"the pipeline returned {pixels.shape[0]} images for {n} items")
    return [pixels[i:i + 1] for i in range(n)]


def calls_by_negative(
    prompts: list[Any],
    seeds: list[int],
    call: Callable[[list[str], list[str] | None, list[int]], torch.Tensor],
) -> list[torch.Tensor]:
    """Each item's pixels (batch 1, in item order) from one ``call(texts, negatives, seeds)``
    per kind of negative prompt (see :func:`by_negative`); ``negatives`` is None for the
    items without one."""
    found: list[torch.Tensor | None] = [None] * len(prompts)
    for part in by_negative(prompts):
        negatives = [prompts[i].negative for i in part]
        pixels = call([prompts[i].text for i in part], negatives if negatives[0] else None,
                      [seeds[i] for i in part])
        for i, one in zip(part, split_batch(pixels, len(part)), strict=True):
            found[i] = one
    return found  # type: ignore[return-value]


def by_negative(prompts: list[Any]) -> list[list[int]]:
    """Indices of the prompts with a negative, and of those without, as separate calls.

    A pipeline treats "no negative" (None) and a list of negatives differently, so items
    of each kind run in their own call to match their single runs.
    """
    with_neg = [i for i, p in enumerate(prompts) if p.negative]
    without = [i for i, p in enumerate(prompts) if not p.negative]
    return [part for part in (with_neg, without) if part]
