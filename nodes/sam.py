"""Segment Anything: a mask from points and/or a box on an image."""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F

from graphkit import Image, Param, RunContext, node
from graphkit.context import NodeInputError
from graphkit.types import Mask
from nodes._diffusion import Model, Revision, get_model

SAM_BASE = "facebook/sam-vit-base"


@node("sam.mask", title="SAM mask", category="mask", version="1.0.0")
def sam_mask(
    ctx: RunContext,
    image: Image,
    points: Annotated[list[list[float]], Param(max_length=64, description=(
        "[[x, y, label], ...] in pixels of the input image; label 1 = on the object, "
        "0 = background."))] = [],
    box: Annotated[list[float], Param(max_length=4, description=(
        "[x0, y0, x1, y1] around the object in pixels, or [] for none."))] = [],
    mask_index: Annotated[int, Param(ge=-1, le=2, description=(
        "Which of SAM's three candidate masks; -1 = the highest scoring."))] = -1,
    model: Model = SAM_BASE,
    revision: Revision = None,
) -> Mask:
    """A hard mask (1 = the object) at the image's size, from point and/or box prompts."""
    _require_prompt(points, box)
    coords, labels = _check_points(points, image.width, image.height)
    _check_box(box)
    sam, processor = get_model(ctx.models.sam, model, revision=revision)
    proc = processor.image_processor
    device, dtype = sam.device, sam.dtype
    pixels, (new_h, new_w) = _preprocess(image.pixels.to(device), proc)
    batch = pixels.shape[0]
    sx, sy = new_w / image.width, new_h / image.height
    kwargs: dict[str, Any] = {}
    if coords:
        pts = torch.tensor(coords, device=device, dtype=torch.float32) * torch.tensor(
            [sx, sy], device=device)
        kwargs["input_points"] = pts.to(dtype).expand(batch, 1, -1, -1)
        kwargs["input_labels"] = torch.tensor(labels, device=device).expand(batch, 1, -1)
    if box:
        scaled = torch.tensor(box, device=device, dtype=torch.float32) * torch.tensor(
            [sx, sy, sx, sy], device=device)
        kwargs["input_boxes"] = scaled.to(dtype).expand(batch, 1, -1)
    ctx.check_cancelled()
    with torch.no_grad():
        out = sam(pixel_values=pixels.to(dtype), multimask_output=True, **kwargs)
    masks = out.pred_masks[:, 0].float()  # (B, 3, h, w) logits
    if mask_index < 0:
        pick = out.iou_scores[:, 0].argmax(dim=-1)
    else:
        pick = torch.full((batch,), mask_index, device=masks.device, dtype=torch.long)
    chosen = masks[torch.arange(batch, device=masks.device), pick].unsqueeze(1)
    size = [(image.height, image.width)] * batch
    full = proc.post_process_masks(list(chosen.unsqueeze(1)), size, [(new_h, new_w)] * batch)
    alpha = torch.cat([m[0] for m in full]).unsqueeze(1)
    return Mask(alpha.to(device=ctx.device, dtype=torch.float32))


def _preprocess(pixels: torch.Tensor, proc: Any) -> tuple[torch.Tensor, tuple[int, int]]:
    """The image processor's steps on the tensor: longest side resized, normalised, padded."""
    longest = _size(proc.size, "longest_edge")
    pad_h, pad_w = _size(proc.pad_size, "height"), _size(proc.pad_size, "width")
    h, w = pixels.shape[-2:]
    scale = longest / max(h, w)
    new_h, new_w = max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))
    x = F.interpolate(pixels.float(), size=(new_h, new_w), mode="bilinear",
                      align_corners=False, antialias=True).clamp(0, 1)
    mean = torch.tensor(proc.image_mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(proc.image_std, device=x.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    x = F.pad(x, (0, pad_w - new_w, 0, pad_h - new_h))
    return x, (new_h, new_w)


def _size(sizes: Any, key: str) -> int:
    value = sizes.get(key) if isinstance(sizes, dict) else getattr(sizes, key, None)
    if value is None:
        raise ValueError(f"SAM image processor has no '{key}' size")
    return int(value)


def _check_points(points: list[list[float]], width: int, height: int
                  ) -> tuple[list[list[float]], list[int]]:
    coords, labels = [], []
    for i, p in enumerate(points):
        if len(p) != 3 or p[2] not in (0, 1):
            raise NodeInputError("points", f"point {i} is {p}; each point is [x, y, label] "
                                 "with label 1 (object) or 0 (background)")
        if not (0 <= p[0] < width and 0 <= p[1] < height):
            raise NodeInputError("points", f"point {i} ({p[0]}, {p[1]}) lies outside the "
                                 f"{width}x{height} image")
        coords.append([p[0], p[1]])
        labels.append(int(p[2]))
    return coords, labels


def _check_box(box: list[float]) -> None:
    if not box:
        return
    if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
        raise NodeInputError("box", f"box is {box}; give [x0, y0, x1, y1] with x1 > x0 and "
                             "y1 > y0, or [] for none")


def _require_prompt(points: list[list[float]], box: list[float]) -> None:
    if not points and not box:
        raise NodeInputError("points", "give at least one point or a box")
