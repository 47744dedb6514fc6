"""Image utilities: resize, crop, composite through a mask."""

from typing import Annotated, Literal

import torch
import torch.nn.functional as F

from graphkit import Image, Param, node
from graphkit.context import NodeInputError
from graphkit.limits import limits
from graphkit.types import Mask

MAX_SIDE = 16384


@node("image.resize", title="Resize image", category="image", version="1.0.0")
def image_resize(
    image: Image,
    width: Annotated[int, Param(ge=0, le=MAX_SIDE, description="0 keeps the aspect ratio.")] = 512,
    height: Annotated[int, Param(ge=0, le=MAX_SIDE, description="0 keeps the aspect ratio.")] = 0,
    method: Literal["bicubic", "bilinear", "nearest", "area"] = "bicubic",
) -> Image:
    """Resize to width x height; a side set to 0 follows the other's aspect ratio."""
    w, h = _target_size(image.width, image.height, width, height)
    derived = "height" if height == 0 else "width"  # the side computed here, if any
    what = (f"the resized image ({image.width}x{image.height} to "
            f"{'width' if derived == 'height' else 'height'} {width or height}, keeping the "
            "aspect ratio)" if 0 in (width, height) else "the resized image")
    limits().check_image(derived, w, h, what)  # before anything is allocated
    pixels = _resize(image.pixels, w, h, method)
    return Image(pixels.clamp(0, 1))


def _target_size(w0: int, h0: int, w: int, h: int) -> tuple[int, int]:
    if w == 0 and h == 0:
        raise NodeInputError("width", "width and height cannot both be 0")
    if w == 0:
        w = max(1, round(w0 * h / h0))
    if h == 0:
        h = max(1, round(h0 * w / w0))
    return w, h


def _resize(t: torch.Tensor, w: int, h: int, method: str) -> torch.Tensor:
    if method in ("bicubic", "bilinear"):
        return F.interpolate(t, size=(h, w), mode=method, align_corners=False, antialias=True)
    return F.interpolate(t, size=(h, w), mode=method)


@node("image.crop", title="Crop image", category="image", version="1.0.0")
def image_crop(
    image: Image,
    x: Annotated[int, Param(ge=0, le=MAX_SIDE, description="Left edge in pixels.")] = 0,
    y: Annotated[int, Param(ge=0, le=MAX_SIDE, description="Top edge in pixels.")] = 0,
    width: Annotated[int, Param(ge=1, le=MAX_SIDE)] = 512,
    height: Annotated[int, Param(ge=1, le=MAX_SIDE)] = 512,
) -> Image:
    """Cut out the rectangle at (x, y) of width x height; it must lie inside the image."""
    if x + width > image.width:
        raise NodeInputError("width", f"x + width = {x + width} exceeds the image width "
                             f"{image.width}")
    if y + height > image.height:
        raise NodeInputError("height", f"y + height = {y + height} exceeds the image height "
                             f"{image.height}")
    return Image(image.pixels[:, :, y:y + height, x:x + width].contiguous())


@node("image.composite", title="Composite", category="image", version="1.0.0")
def image_composite(background: Image, foreground: Image, mask: Mask) -> Image:
    """Foreground where the mask is 1, background where it is 0, blended in between."""
    size = (background.height, background.width)
    for name, value in (("foreground", foreground), ("mask", mask)):
        if (value.height, value.width) != size:
            raise NodeInputError(name, f"{name} is {value.width}x{value.height} but the "
                                 f"background is {size[1]}x{size[0]}; resize it first")
    fg = foreground.pixels.to(background.pixels.device, background.pixels.dtype)
    m = mask.alpha.to(background.pixels.device, background.pixels.dtype)
    return Image(background.pixels * (1 - m) + fg * m)
