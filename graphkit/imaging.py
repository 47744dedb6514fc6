"""Conversions between PIL images and the tensors that flow along edges."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image as PILImage


def pil_to_pixels(img: PILImage.Image) -> torch.Tensor:
    """An RGB PIL image as a (1, 3, H, W) float tensor in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0)


def pil_to_alpha(img: PILImage.Image) -> torch.Tensor:
    """A greyscale PIL image as a (1, 1, H, W) float tensor in [0, 1]."""
    arr = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).unsqueeze(0).unsqueeze(0)


def pixels_to_pil(pixels: torch.Tensor) -> list[PILImage.Image]:
    """(B, 3, H, W) in [0, 1] to a list of RGB PIL images."""
    arr = _to_uint8(pixels).permute(0, 2, 3, 1).numpy()
    return [PILImage.fromarray(a, "RGB") for a in arr]


def alpha_to_pil(alpha: torch.Tensor) -> list[PILImage.Image]:
    """(B, 1, H, W) in [0, 1] to a list of greyscale PIL images."""
    arr = _to_uint8(alpha)[:, 0].numpy()
    return [PILImage.fromarray(a, "L") for a in arr]


def _to_uint8(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return t.cpu()
