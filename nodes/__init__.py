"""The built-in node pack, registered through the ``graphkit.nodes`` entry point like any other.

Diffusion modules import diffusers/transformers only inside their node functions, so listing
and validating graphs stays fast.
"""

from nodes import image_io, image_ops, kandinsky, mask_ops, sam, sdxl, text, upscale  # noqa: F401

__all__ = ["image_io", "image_ops", "kandinsky", "mask_ops", "sam", "sdxl", "text", "upscale"]
