"""Mask utilities: invert, grow or shrink, feather, threshold, draw a region, view as image."""

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from PIL import ImageDraw

from graphkit import Image, Param, node
from graphkit.context import NodeInputError
from graphkit.imaging import pil_to_alpha
from graphkit.types import Mask

MAX_SIDE = 16384


@node("mask.invert", title="Invert mask", category="mask", version="1.0.0")
def mask_invert(mask: Mask) -> Mask:
    """1 becomes 0 and 0 becomes 1."""
    return Mask(1.0 - mask.alpha)


@node("mask.grow", title="Grow mask", category="mask", version="1.0.0")
def mask_grow(
    mask: Mask,
    pixels: Annotated[int, Param(ge=-512, le=512, description="Negative shrinks.")] = 8,
) -> Mask:
    """Grow the masked region by a number of pixels (shrink when negative)."""
    if pixels == 0:
        return mask
    k = 2 * abs(pixels) + 1
    if pixels > 0:
        return Mask(F.max_pool2d(mask.alpha, k, stride=1, padding=abs(pixels)))
    return Mask(-F.max_pool2d(-mask.alpha, k, stride=1, padding=abs(pixels)))


@node("mask.feather", title="Feather mask", category="mask", version="1.0.0")
def mask_feather(
    mask: Mask,
    radius: Annotated[float, Param(ge=0, le=256, description="Blur radius in pixels.")] = 8.0,
) -> Mask:
    """Soften the mask's edges with a Gaussian blur."""
    if radius == 0:
        return mask
    sigma = radius / 2
    half = int(radius) + 1
    xs = torch.arange(-half, half + 1, device=mask.alpha.device, dtype=mask.alpha.dtype)
    kernel = torch.exp(-(xs**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    a = F.pad(mask.alpha, (half, half, 0, 0), mode="replicate")
    a = F.conv2d(a, kernel.view(1, 1, 1, -1))
    a = F.pad(a, (0, 0, half, half), mode="replicate")
    a = F.conv2d(a, kernel.view(1, 1, -1, 1))
    return Mask(a.clamp(0, 1))


@node("mask.threshold", title="Threshold mask", category="mask", version="1.0.0")
def mask_threshold(
    mask: Mask,
    value: Annotated[float, Param(ge=0, le=1, description="Above this becomes 1.")] = 0.5,
) -> Mask:
    """A hard mask: 1 where the mask exceeds the value, else 0."""
    return Mask((mask.alpha > value).to(mask.alpha.dtype))


@node("mask.region", title="Mask from region", category="mask", version="1.0.0")
def mask_region(
    image: Image | None = None,
    width: Annotated[int, Param(ge=1, le=MAX_SIDE, description="Used without an image.")] = 512,
    height: Annotated[int, Param(ge=1, le=MAX_SIDE, description="Used without an image.")] = 512,
    shape: Literal["rectangle", "ellipse", "polygon"] = "rectangle",
    box: Annotated[list[float], Param(min_length=4, max_length=4,
                                      description="x0, y0, x1, y1 in pixels.")] = [0, 0, 256, 256],
    points: Annotated[list[list[float]], Param(max_length=1024,
                                               description="Polygon corners [[x, y], ...].")] = [],
) -> Mask:
    """A mask drawn from a rectangle, an ellipse or a polygon, sized like the image if given."""
    w, h = (image.width, image.height) if image is not None else (width, height)
    canvas = PILImage.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    if shape == "polygon":
        if len(points) < 3 or any(len(p) != 2 for p in points):
            raise NodeInputError("points", "a polygon needs at least 3 [x, y] points")
        draw.polygon([(p[0], p[1]) for p in points], fill=255)
    else:
        x0, y0, x1, y1 = box
        if x1 <= x0 or y1 <= y0:
            raise NodeInputError("box", "box must be [x0, y0, x1, y1] with x1 > x0 and y1 > y0")
        (draw.rectangle if shape == "rectangle" else draw.ellipse)([x0, y0, x1, y1], fill=255)
    alpha = pil_to_alpha(canvas)
    if image is not None:
        alpha = alpha.to(image.pixels.device).expand(image.pixels.shape[0], -1, -1, -1)
    return Mask(alpha.contiguous())


@node("mask.to_image", title="Mask to image", category="mask", version="1.0.0")
def mask_to_image(mask: Mask) -> Image:
    """A greyscale picture of the mask (white = masked), e.g. to save it."""
    return Image(mask.alpha.expand(-1, 3, -1, -1).contiguous())
