"""Pictures and short text for node outputs: images, masks over their image, prompts, embeds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image as PILImage
from PIL import ImageDraw

from graphkit.graph import GraphDoc, split_ref
from graphkit.imaging import alpha_to_pil, pixels_to_pil
from graphkit.registry import Registry
from graphkit.types import Image, ImageEmbeds, Latent, Mask, Prompt, SavedFiles

MASK_COLOUR = (255, 40, 120)


@dataclass
class Preview:
    """What to show for one output port."""

    port: str
    text: str
    image: PILImage.Image | None = None
    extra: list[str] = field(default_factory=list)


def _tensor_line(name: str, t: torch.Tensor) -> str:
    shape = "x".join(str(s) for s in t.shape)
    return f"{name}: {shape} {str(t.dtype).replace('torch.', '')} on {t.device}"


def preview(port: str, value: Any, under: Image | None = None) -> Preview:
    """A preview of one output value; masks are drawn over ``under`` when sizes match."""
    if isinstance(value, Image):
        pic = pixels_to_pil(value.pixels[:1])[0]
        return Preview(port, f"image {value.width}x{value.height}, batch "
                       f"{value.pixels.shape[0]}", pic)
    if isinstance(value, Mask):
        mask = alpha_to_pil(value.alpha[:1])[0]
        pic = mask.convert("RGB")
        if under is not None and (under.width, under.height) == (value.width, value.height):
            pic = overlay(pixels_to_pil(under.pixels[:1])[0], mask)
        cover = float(value.alpha.float().mean()) * 100
        return Preview(port, f"mask {value.width}x{value.height}, {cover:.1f}% covered", pic)
    if isinstance(value, Prompt):
        neg = f"\n\nnegative: {value.negative}" if value.negative else ""
        return Preview(port, f"prompt: {value.text}{neg}")
    if isinstance(value, ImageEmbeds):
        return Preview(port, f"image embeds ({value.space})",
                       extra=[_tensor_line("positive", value.positive),
                              _tensor_line("negative", value.negative)])
    if isinstance(value, Latent):
        return Preview(port, f"latent ({value.space})", extra=[_tensor_line("samples",
                                                                             value.samples)])
    if isinstance(value, SavedFiles):
        return Preview(port, "wrote " + (", ".join(value.paths) or "nothing"))
    if isinstance(value, torch.Tensor):
        return Preview(port, _tensor_line("tensor", value))
    return Preview(port, f"{type(value).__name__}: {value!r}"[:500])


def overlay(image: PILImage.Image, mask: PILImage.Image, alpha: float = 0.5) -> PILImage.Image:
    """The image with the masked region tinted."""
    tint = PILImage.new("RGB", image.size, MASK_COLOUR)
    weight = mask.convert("L").point(lambda v: int(v * alpha))
    return PILImage.composite(tint, image.convert("RGB"), weight)


def draw_points(image: PILImage.Image, points: list[Any], radius: int = 5) -> PILImage.Image:
    """SAM points on a copy of the image: green foreground, red background."""
    pic = image.convert("RGB").copy()
    draw = ImageDraw.Draw(pic)
    for p in points:
        if not isinstance(p, list | tuple) or len(p) < 2:
            continue
        x, y = float(p[0]), float(p[1])
        fg = len(p) < 3 or int(p[2]) == 1
        colour = (40, 220, 60) if fg else (235, 40, 40)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour,
                     outline=(255, 255, 255), width=2)
    return pic


def image_source(doc: GraphDoc, reg: Registry, node_id: str) -> tuple[str, str] | None:
    """The nearest upstream Image output of a node (to draw its masks over), if any."""
    frontier = [node_id]
    seen = {node_id}
    while frontier:
        entry = doc.nodes.get(frontier.pop(0))
        if entry is None:
            continue
        for ref in entry.inputs.values():
            parts = split_ref(ref)
            if parts is None or parts[0] not in doc.nodes:
                continue
            spec = reg.get(doc.nodes[parts[0]].type)
            out = spec.outputs.get(parts[1]) if spec else None
            if out is not None and out.cls is Image:
                return parts
            if parts[0] not in seen:
                seen.add(parts[0])
                frontier.append(parts[0])
    return None
