"""Port types: compatibility rule, byte counts and device moves."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from graphkit.types import (
    Image,
    ImageEmbeds,
    Latent,
    Mask,
    PortType,
    Prompt,
    SavedFiles,
    can_connect,
    is_port_annotation,
    port_type,
    value_nbytes,
    value_to,
)

SDXL = port_type(Latent.where(space="sdxl"))
KANDINSKY = port_type(Latent.where(space="kandinsky2.2"))
ANY_LATENT = port_type(Latent)


def test_same_class_connects() -> None:
    """A port type connects to itself."""
    for cls in (Image, Mask, Prompt, Latent, ImageEmbeds):
        assert can_connect(PortType(cls), PortType(cls))


def test_int_widens_to_float_but_not_back() -> None:
    """int feeds float; float does not feed int."""
    assert can_connect(PortType(int), PortType(float))
    assert not can_connect(PortType(float), PortType(int))


def test_mismatched_classes_refused() -> None:
    """Different value classes never connect."""
    assert not can_connect(PortType(Image), PortType(Mask))
    assert not can_connect(PortType(Mask), PortType(Image))
    assert not can_connect(PortType(Prompt), PortType(Latent))
    assert not can_connect(PortType(str), PortType(int))


def test_subclass_connects_to_base() -> None:
    """A subclass of an input's class is accepted, not the reverse."""

    class SpecialImage(Image):
        pass

    assert can_connect(PortType(SpecialImage), PortType(Image))
    assert not can_connect(PortType(Image), PortType(SpecialImage))


def test_latent_spaces_must_agree() -> None:
    """An SDXL latent is refused by a Kandinsky input; an unnarrowed input takes any space."""
    assert SDXL.attrs == (("space", "sdxl"),)
    assert not can_connect(SDXL, KANDINSKY)
    assert not can_connect(KANDINSKY, SDXL)
    assert can_connect(SDXL, SDXL)
    assert can_connect(SDXL, ANY_LATENT)
    assert can_connect(KANDINSKY, ANY_LATENT)


def test_port_type_names() -> None:
    """Names show narrowing attributes and plain type names."""
    assert SDXL.name == "Latent[space=sdxl]"
    assert str(PortType(Image)) == "Image"
    assert PortType(int).name == "Int"
    assert PortType(float).name == "Float"


def test_port_annotations_recognised() -> None:
    """Port classes (narrowed or not) are port annotations; plain values are not."""
    assert is_port_annotation(Image)
    assert is_port_annotation(Latent.where(space="sdxl"))
    assert not is_port_annotation(int)
    assert not is_port_annotation(str)
    with pytest.raises(TypeError):
        port_type("Image")


def test_nbytes_counts_tensor_storage() -> None:
    """nbytes is element size times count, summed over tensor fields."""
    pixels = torch.zeros(2, 3, 5, 7, dtype=torch.float32)
    assert Image(pixels).nbytes() == 2 * 3 * 5 * 7 * 4
    half = torch.zeros(1, 1, 8, 8, dtype=torch.float16)
    assert Mask(half).nbytes() == 64 * 2
    pos, neg = torch.zeros(1, 10), torch.zeros(1, 10, dtype=torch.float64)
    embeds = ImageEmbeds(pos, neg, "kandinsky2.2")
    assert embeds.nbytes() == 10 * 4 + 10 * 8 + len("kandinsky2.2")
    assert Prompt("abc", "de").nbytes() == 5
    assert value_nbytes(torch.zeros(3, dtype=torch.int64)) == 24
    assert value_nbytes(SavedFiles(("a",))) > 0


def test_to_same_device_returns_self() -> None:
    """Moving to the device a value is already on is free."""
    image = Image(torch.rand(1, 3, 4, 4))
    assert image.to("cpu") is image
    prompt = Prompt("x")
    assert prompt.to("cpu") is prompt


def test_to_moves_every_tensor_and_keeps_the_rest() -> None:
    """``to`` returns a copy with tensors moved (dtype kept) and plain fields unchanged."""
    target = "cuda" if torch.cuda.is_available() else "meta"
    latent = Latent(torch.rand(1, 4, 2, 2), "sdxl")
    moved = latent.to(target)
    assert moved is not latent
    assert moved.samples.device.type == torch.device(target).type
    assert moved.samples.shape == latent.samples.shape
    assert moved.space == "sdxl"
    assert latent.samples.device.type == "cpu"
    value: Any = value_to(Mask(torch.ones(1, 1, 2, 2)), target)
    assert value.alpha.device.type == torch.device(target).type
    assert value_to(3, target) == 3
    assert value_to(torch.ones(2), target).device.type == torch.device(target).type


def test_image_and_mask_sizes() -> None:
    """width and height read the last two tensor dimensions."""
    image = Image(torch.zeros(1, 3, 10, 20))
    assert (image.width, image.height) == (20, 10)
    mask = Mask(torch.zeros(1, 1, 7, 3))
    assert (mask.width, mask.height) == (3, 7)


def test_plain_value_ports_widen_int_to_float() -> None:
    """``Port(int)`` annotations are ports; an int port feeds a float port, not the reverse."""
    from graphkit.types import Port

    assert is_port_annotation(Port(int)) and not is_port_annotation(int)
    ints, floats = port_type(Port(int)), port_type(Port(float))
    assert can_connect(ints, floats) and not can_connect(floats, ints)
