"""Port data types: what flows along edges, their sizes, device moves, and compatibility.

A port is declared with a value class (``Image``) or with a class narrowed by attributes
(``Latent.where(space="sdxl")``). Attributes that both sides declare must agree, so an
SDXL latent into a Kandinsky decoder is refused at validation time, before anything runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, get_args, get_origin

import torch


class PortValue:
    """Base of every value that travels along an edge."""

    port_name: ClassVar[str] = "value"

    def nbytes(self) -> int:
        """Bytes this value holds (tensor storage; small for plain data)."""
        return sum(_nbytes(v) for v in _fields(self))

    def to(self, device: torch.device | str) -> PortValue:
        """A copy of this value whose tensors live on ``device`` (self if already there)."""
        changes = {
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        if all(getattr(self, k) is v for k, v in changes.items()):
            return self
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def where(cls, **attrs: Any) -> Any:
        """This type narrowed by attributes, for use as an annotation."""
        return Annotated[cls, PortAttrs(attrs)]


def _fields(value: Any) -> list[Any]:
    if dataclasses.is_dataclass(value):
        return [getattr(value, f.name) for f in dataclasses.fields(value)]
    return []


def _nbytes(v: Any) -> int:
    if isinstance(v, torch.Tensor):
        return v.element_size() * v.nelement()
    if isinstance(v, PortValue):
        return v.nbytes()
    if isinstance(v, (str, bytes)):
        return len(v)
    return 8


@dataclass(frozen=True)
class PortAttrs:
    """Attributes narrowing a port type (e.g. a latent space)."""

    attrs: dict[str, Any]

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.attrs.items())))


@dataclass(frozen=True)
class Prompt(PortValue):
    """A text prompt and its negative prompt."""

    port_name: ClassVar[str] = "prompt"
    text: str
    negative: str = ""


@dataclass(frozen=True, eq=False)
class Image(PortValue):
    """RGB images as a float tensor (batch, 3, height, width) with values in [0, 1]."""

    port_name: ClassVar[str] = "image"
    pixels: torch.Tensor

    @property
    def width(self) -> int:
        return int(self.pixels.shape[-1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[-2])


@dataclass(frozen=True, eq=False)
class Mask(PortValue):
    """Masks as a float tensor (batch, 1, height, width) in [0, 1]; 1 marks the region."""

    port_name: ClassVar[str] = "mask"
    alpha: torch.Tensor

    @property
    def width(self) -> int:
        return int(self.alpha.shape[-1])

    @property
    def height(self) -> int:
        return int(self.alpha.shape[-2])


@dataclass(frozen=True, eq=False)
class Latent(PortValue):
    """Latents of one model family's latent space (e.g. ``sdxl``, ``kandinsky2.2``)."""

    port_name: ClassVar[str] = "latent"
    samples: torch.Tensor
    space: str


@dataclass(frozen=True, eq=False)
class ImageEmbeds(PortValue):
    """Image embeddings (positive and negative) in one embedding space."""

    port_name: ClassVar[str] = "embeds"
    positive: torch.Tensor
    negative: torch.Tensor
    space: str


@dataclass(frozen=True)
class SavedFiles(PortValue):
    """Files an output node wrote (its cached result)."""

    port_name: ClassVar[str] = "files"
    paths: tuple[str, ...] = field(default=())


PLAIN_TYPES: dict[type, str] = {int: "Int", float: "Float", str: "Text", bool: "Bool"}


@dataclass(frozen=True)
class PortType:
    """A port's declared type: a value class plus narrowing attributes."""

    cls: type
    attrs: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        base = PLAIN_TYPES.get(self.cls, self.cls.__name__)
        if not self.attrs:
            return base
        inner = ", ".join(f"{k}={v}" for k, v in self.attrs)
        return f"{base}[{inner}]"

    def __str__(self) -> str:
        return self.name


def Port(cls: type, **attrs: Any) -> Any:  # noqa: N802 - reads like a type
    """A plain value (int, float, str, bool) passed along an edge: ``n: Port(int)``."""
    return Annotated[cls, PortAttrs(attrs)]


def is_port_annotation(annotation: Any) -> bool:
    """True when an annotation declares a port: a PortValue class, or ``Port(int)``."""
    cls = _strip(annotation)[0]
    if not isinstance(cls, type):
        return False
    marked = get_origin(annotation) is Annotated and any(
        isinstance(m, PortAttrs) for m in get_args(annotation)[1:])
    return issubclass(cls, PortValue) or (marked and cls in PLAIN_TYPES)


def port_type(annotation: Any) -> PortType:
    """The PortType an annotation declares."""
    cls, attrs = _strip(annotation)
    if not isinstance(cls, type):
        raise TypeError(f"not a port type: {annotation!r}")
    return PortType(cls, tuple(sorted(attrs.items())))


def _strip(annotation: Any) -> tuple[Any, dict[str, Any]]:
    attrs: dict[str, Any] = {}
    if get_origin(annotation) is Annotated:
        base, *meta = get_args(annotation)
        for m in meta:
            if isinstance(m, PortAttrs):
                attrs.update(m.attrs)
        return base, attrs
    return annotation, attrs


def can_connect(output: PortType, input: PortType) -> bool:
    """Whether a value of type ``output`` may feed an input declared as ``input``.

    Same class (or a subclass), or int into float; every attribute both declare must match.
    """
    same = output.cls is input.cls or (
        isinstance(output.cls, type) and issubclass(output.cls, input.cls)
    )
    widened = output.cls is int and input.cls is float
    if not (same or widened):
        return False
    declared = dict(input.attrs)
    return all(declared.get(k, v) == v for k, v in output.attrs)


def value_nbytes(value: Any) -> int:
    """Bytes of any value a node produced."""
    return _nbytes(value)


def value_to(value: Any, device: torch.device | str) -> Any:
    """Move any node value to ``device`` (plain values stay as they are)."""
    if isinstance(value, PortValue):
        return value.to(device)
    if isinstance(value, torch.Tensor):
        return value.to(device)
    return value
