"""The image processor classes graphkit's models use, chosen explicitly without torchvision.

transformers 5 gives the name ``<Model>ImageProcessor`` to the torchvision implementation.
When torchvision is not installed (the CPU torch build here has no matching torchvision), a
lookup of that name falls back to ``<Model>ImageProcessorPil`` and logs a warning that reads
like a broken install. diffusers looks these names up when its pipeline modules are
imported, and pipeline folders name them in ``model_index.json`` (the Kandinsky prior's
``image_processor``). Binding the names to the PIL classes first gives the same classes
without the warning. With torchvision installed nothing changes.
"""

from __future__ import annotations

import sys
import threading

# Names the default models and diffusers' pipeline imports look up.
IMAGE_PROCESSORS = (
    "CLIPImageProcessor",
    "SamImageProcessor",
    "SiglipImageProcessor",
    "Siglip2ImageProcessor",
)
_done = False
_lock = threading.Lock()


def choose_pil_image_processors() -> None:
    """Bind each name in IMAGE_PROCESSORS to its PIL class when torchvision is missing."""
    global _done
    with _lock:
        if _done:
            return
        _done = True
        import transformers
        import transformers.processing_utils  # noqa: F401 - see below
        from transformers.utils import is_torchvision_available

        if is_torchvision_available():
            return
        # Importing processing_utils re-executes transformers' __init__ once and puts a new
        # module object in sys.modules; bind the names on the one imports now see.
        module = sys.modules["transformers"]
        missing = getattr(module, "_object_missing_backend", {})
        chosen = {}
        for name in IMAGE_PROCESSORS:
            if name in vars(module) or "torchvision" not in missing.get(name, ()):
                continue  # already resolved, or not a torchvision-only class here
            try:
                chosen[name] = getattr(module, f"{name}Pil")
            except (AttributeError, ImportError):
                continue  # this transformers has no PIL twin: leave its own fallback
        module = sys.modules["transformers"]
        for name, pil_class in chosen.items():
            setattr(module, name, pil_class)
