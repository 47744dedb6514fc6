"""Resource limits on what a graph may ask for; configurable, checked with clear errors.

Set any of them with environment variables named ``GRAPHKIT_LIMIT_<NAME>`` (for example
``GRAPHKIT_LIMIT_MAX_STEPS=200``) or by passing a ``Limits`` to the API.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from graphkit.errors import Problem, problem


@dataclass(frozen=True)
class Limits:
    """Upper bounds; a graph that exceeds one is refused before it runs where possible."""

    max_nodes: int = 10_000
    max_graph_bytes: int = 16 * 1024 * 1024
    max_side: int = 8192
    max_pixels: int = 64 * 1024 * 1024
    max_steps: int = 200
    max_batch: int = 16
    max_upscaled_pixels: int = 64 * 1024 * 1024
    max_text_chars: int = 10_000
    max_image_file_bytes: int = 64 * 1024 * 1024
    max_sweep_variations: int = 100_000
    max_sweep_file_bytes: int = 16 * 1024 * 1024

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Limits:
        """Defaults, overridden by GRAPHKIT_LIMIT_<NAME> variables."""
        from graphkit.environment import whole_number

        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f"GRAPHKIT_LIMIT_{f.name.upper()}"
            values[f.name] = whole_number(env, name, f.default, minimum=1)
        return cls(**values)

    def check_params(self, node_id: str, params: dict[str, Any]) -> list[Problem]:
        """Problems with a node's params under the limits, by param-name convention."""
        found = []
        for name, value in params.items():
            limit = self._param_limit(name, value)
            if limit is not None and _size(value) > limit[0]:
                found.append(problem("limit", f"{limit[1]} {_size(value)} exceeds the limit "
                                     f"{limit[0]} ({limit[2]})", node_id, name))
        width, height = params.get("width"), params.get("height")
        if isinstance(width, int) and isinstance(height, int) and width * height > self.max_pixels:
            found.append(problem("limit", f"{width}x{height} is {width * height} pixels; the "
                                 f"limit is {self.max_pixels} (GRAPHKIT_LIMIT_MAX_PIXELS)",
                                 node_id, "width"))
        return found

    def _param_limit(self, name: str, value: Any) -> tuple[int, str, str] | None:
        if isinstance(value, bool):
            return None
        if name in ("width", "height") and isinstance(value, int):
            return self.max_side, name, "GRAPHKIT_LIMIT_MAX_SIDE"
        if name == "steps" and isinstance(value, int):
            return self.max_steps, "steps", "GRAPHKIT_LIMIT_MAX_STEPS"
        if name in ("batch", "batch_size", "num_images") and isinstance(value, int):
            return self.max_batch, "batch size", "GRAPHKIT_LIMIT_MAX_BATCH"
        if isinstance(value, str):
            return self.max_text_chars, "text length", "GRAPHKIT_LIMIT_MAX_TEXT_CHARS"
        return None

    def check_upscale(self, field: str, width: int, height: int, scale: float) -> None:
        """Raise NodeInputError when ``width x height`` upscaled by ``scale`` is too large."""
        from graphkit.context import NodeInputError

        out = int(width * scale) * int(height * scale)
        if out > self.max_upscaled_pixels:
            raise NodeInputError(field, f"{width}x{height} upscaled x{scale} is {out} "
                                 f"pixels; the limit is {self.max_upscaled_pixels} "
                                 "(GRAPHKIT_LIMIT_MAX_UPSCALED_PIXELS)")

    def check_image(self, field: str, width: int, height: int, what: str = "image") -> None:
        """Raise NodeInputError when an image at run time (one read, or one a node is about
        to make) is too large; call it before allocating."""
        from graphkit.context import NodeInputError

        if width > self.max_side or height > self.max_side:
            raise NodeInputError(field, f"{what} is {width}x{height}; the limit is "
                                 f"{self.max_side} per side (GRAPHKIT_LIMIT_MAX_SIDE)")
        if width * height > self.max_pixels:
            raise NodeInputError(field, f"{what} is {width}x{height} = {width * height} pixels; "
                                 f"the limit is {self.max_pixels} (GRAPHKIT_LIMIT_MAX_PIXELS)")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str) else int(value)


_LIMITS: Limits | None = None


def limits() -> Limits:
    """The process limits (from the environment on first use)."""
    global _LIMITS
    if _LIMITS is None:
        _LIMITS = Limits.from_env()
    return _LIMITS


def set_limits(new: Limits | None) -> None:
    """Replace the process limits (None: read the environment again on next use)."""
    global _LIMITS
    _LIMITS = new
