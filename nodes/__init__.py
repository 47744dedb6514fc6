"""The built-in node pack, registered through the ``graphkit.nodes`` entry point like any other."""

from nodes import image_io, image_ops, mask_ops, text  # noqa: F401

__all__ = ["image_io", "image_ops", "mask_ops", "text"]
