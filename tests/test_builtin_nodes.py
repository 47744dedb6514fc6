"""The built-in node pack, checked numerically against expectations computed here."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from graphkit.context import NodeInputError, RunContext, RunControl, Sandbox
from graphkit.graph import GraphDoc
from graphkit.pngmeta import read_graph_text, read_info
from graphkit.registry import registry
from graphkit.types import Image, Mask, Prompt, SavedFiles
from graphkit.validate import validate
from nodes.image_io import image_load, image_save
from nodes.image_ops import image_composite, image_crop, image_resize
from nodes.mask_ops import (
    mask_feather,
    mask_grow,
    mask_invert,
    mask_region,
    mask_threshold,
    mask_to_image,
)
from nodes.text import text_prompt

CPU = torch.device("cpu")


def ctx_for(tmp_path: Path, graph_json: str = "") -> RunContext:
    """A context reading from ``tmp_path/in`` and writing into ``tmp_path/out``."""
    (tmp_path / "in").mkdir(exist_ok=True)
    sandbox = Sandbox([tmp_path / "in"], tmp_path / "out")
    return RunContext("n", "test", CPU, sandbox, RunControl(), lambda s, t: None, graph_json)


def rect_mask(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> Mask:
    alpha = torch.zeros(1, 1, h, w)
    alpha[..., y0:y1, x0:x1] = 1.0
    return Mask(alpha)


def area(mask: Mask) -> float:
    return float(mask.alpha.sum())


# --- image ops -------------------------------------------------------------------------------

def test_resize_exact_and_aspect_sizes() -> None:
    image = Image(torch.rand(1, 3, 40, 80))
    assert image_resize(image, width=50, height=30).pixels.shape == (1, 3, 30, 50)
    half = image_resize(image, width=40, height=0)
    assert (half.width, half.height) == (40, 20)
    tall = image_resize(image, width=0, height=10)
    assert (tall.width, tall.height) == (20, 10)
    with pytest.raises(NodeInputError) as err:
        image_resize(image, width=0, height=0)
    assert err.value.field == "width"


def test_resize_nearest_upscale_repeats_pixels() -> None:
    pixels = torch.rand(1, 3, 5, 7)
    out = image_resize(Image(pixels), width=14, height=10, method="nearest").pixels
    expected = pixels.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("method", ["bicubic", "bilinear", "area"])
def test_resize_keeps_range_and_flat_colour(method: str) -> None:
    """A flat image stays flat; bicubic overshoot is clamped into [0, 1]."""
    flat = image_resize(Image(torch.full((1, 3, 9, 9), 0.25)), width=20, height=13, method=method)
    assert torch.allclose(flat.pixels, torch.full((1, 3, 13, 20), 0.25), atol=1e-5)
    stripes = (torch.arange(16) % 2).float().expand(1, 3, 16, 16).clone()
    sharp = Image(stripes)
    big = image_resize(sharp, width=61, height=61, method=method).pixels
    assert float(big.min()) >= 0.0 and float(big.max()) <= 1.0


def test_crop_equals_slicing() -> None:
    pixels = torch.rand(2, 3, 30, 40)
    out = image_crop(Image(pixels), x=5, y=7, width=20, height=10)
    assert torch.equal(out.pixels, pixels[:, :, 7:17, 5:25])
    full = image_crop(Image(pixels), x=0, y=0, width=40, height=30)
    assert torch.equal(full.pixels, pixels)


def test_crop_outside_image_names_the_field() -> None:
    image = Image(torch.rand(1, 3, 30, 40))
    with pytest.raises(NodeInputError) as err:
        image_crop(image, x=30, y=0, width=20, height=10)
    assert err.value.field == "width" and "40" in err.value.message
    with pytest.raises(NodeInputError) as err:
        image_crop(image, x=0, y=25, width=10, height=10)
    assert err.value.field == "height"


def test_composite_blends_through_mask() -> None:
    torch.manual_seed(0)
    bg, fg, m = torch.rand(1, 3, 12, 16), torch.rand(1, 3, 12, 16), torch.rand(1, 1, 12, 16)
    out = image_composite(Image(bg), Image(fg), Mask(m)).pixels
    assert torch.allclose(out, bg * (1 - m) + fg * m, atol=1e-6)
    ones = image_composite(Image(bg), Image(fg), Mask(torch.ones(1, 1, 12, 16))).pixels
    assert torch.equal(ones, fg)
    zeros = image_composite(Image(bg), Image(fg), Mask(torch.zeros(1, 1, 12, 16))).pixels
    assert torch.equal(zeros, bg)


def test_composite_refuses_mismatched_sizes() -> None:
    bg = Image(torch.rand(1, 3, 12, 16))
    with pytest.raises(NodeInputError) as err:
        image_composite(bg, Image(torch.rand(1, 3, 12, 15)), Mask(torch.ones(1, 1, 12, 16)))
    assert err.value.field == "foreground"
    with pytest.raises(NodeInputError) as err:
        image_composite(bg, Image(torch.rand(1, 3, 12, 16)), Mask(torch.ones(1, 1, 11, 16)))
    assert err.value.field == "mask"


# --- mask ops --------------------------------------------------------------------------------

def test_invert() -> None:
    m = torch.rand(1, 1, 6, 6)
    assert torch.equal(mask_invert(Mask(m)).alpha, 1.0 - m)


@pytest.mark.parametrize("pixels", [1, 3, 5])
def test_grow_and_shrink_change_area_by_the_border(pixels: int) -> None:
    """A w x h rectangle grows to (w + 2p) x (h + 2p) and shrinks to (w - 2p) x (h - 2p)."""
    w, h = 20, 14
    mask = rect_mask(60, 60, 20, 20 + h, 20, 20 + w)
    grown = mask_grow(mask, pixels=pixels)
    shrunk = mask_grow(mask, pixels=-pixels)
    assert area(grown) == (w + 2 * pixels) * (h + 2 * pixels)
    assert area(shrunk) == (w - 2 * pixels) * (h - 2 * pixels)
    assert bool((grown.alpha >= mask.alpha).all()) and bool((shrunk.alpha <= mask.alpha).all())
    assert grown.alpha.shape == mask.alpha.shape == shrunk.alpha.shape
    assert mask_grow(mask, pixels=0) is mask


def test_feather_softens_edges_and_stays_in_range() -> None:
    mask = rect_mask(64, 64, 16, 48, 16, 48)
    soft = mask_feather(mask, radius=4.0).alpha
    assert soft.shape == mask.alpha.shape
    assert float(soft.min()) >= 0.0 and float(soft.max()) <= 1.0
    inbetween = ((soft > 0.01) & (soft < 0.99)).sum()
    assert int(inbetween) > 4 * 32  # a soft band all around the square
    assert float(soft[0, 0, 32, 32]) == pytest.approx(1.0, abs=1e-4)  # deep inside
    assert float(soft[0, 0, 2, 2]) == pytest.approx(0.0, abs=1e-4)  # far outside
    assert 0.2 < float(soft[0, 0, 32, 16]) < 0.8  # on the edge
    assert float(soft.sum()) == pytest.approx(area(mask), rel=0.02)  # blur keeps the mass
    row = soft[0, 0, 32]
    assert bool((row[:33].diff() >= -1e-6).all())  # rises monotonically towards the centre
    assert mask_feather(mask, radius=0.0) is mask


def test_threshold_is_binary() -> None:
    m = torch.rand(1, 1, 20, 20)
    out = mask_threshold(Mask(m), value=0.3).alpha
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(out.bool(), m > 0.3)


def test_region_rectangle_area() -> None:
    mask = mask_region(width=100, height=80, shape="rectangle", box=[10, 20, 50, 60])
    assert mask.alpha.shape == (1, 1, 80, 100)
    assert area(mask) == pytest.approx(40 * 40, rel=0.06)
    ys, xs = torch.nonzero(mask.alpha[0, 0], as_tuple=True)
    assert (int(xs.min()), int(ys.min())) == (10, 20)


def test_region_ellipse_and_polygon_area() -> None:
    ellipse = mask_region(width=100, height=100, shape="ellipse", box=[10, 10, 90, 50])
    assert area(ellipse) == pytest.approx(math.pi * 40 * 20, rel=0.05)
    triangle = [[10, 10], [90, 10], [10, 70]]
    poly = mask_region(width=100, height=100, shape="polygon", points=triangle)
    assert area(poly) == pytest.approx(0.5 * 80 * 60, rel=0.05)


def test_region_follows_image_size_and_batch() -> None:
    image = Image(torch.rand(2, 3, 30, 50))
    mask = mask_region(image, shape="rectangle", box=[0, 0, 10, 10])
    assert mask.alpha.shape == (2, 1, 30, 50)
    assert torch.equal(mask.alpha[0], mask.alpha[1])


def test_region_refuses_bad_shapes() -> None:
    with pytest.raises(NodeInputError) as err:
        mask_region(width=10, height=10, box=[5, 5, 2, 8])
    assert err.value.field == "box"
    with pytest.raises(NodeInputError) as err:
        mask_region(width=10, height=10, shape="polygon", points=[[0, 0], [5, 5]])
    assert err.value.field == "points"


def test_mask_to_image_is_grey() -> None:
    m = torch.rand(1, 1, 5, 6)
    pixels = mask_to_image(Mask(m)).pixels
    assert pixels.shape == (1, 3, 5, 6)
    for c in range(3):
        assert torch.equal(pixels[:, c:c + 1], m)


def test_prompt() -> None:
    assert text_prompt(text="a cat", negative="blur") == Prompt("a cat", "blur")


# --- image.load ------------------------------------------------------------------------------

def test_load_rgba_gives_pixels_and_transparency_mask(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, size=(6, 9, 4), dtype=np.uint8)
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "in" / "a.png")
    out = image_load(ctx, path="a.png")
    pixels = torch.from_numpy(rgba[..., :3].astype(np.float32) / 255).permute(2, 0, 1)[None]
    alpha = torch.from_numpy(rgba[..., 3].astype(np.float32) / 255)[None, None]
    assert torch.allclose(out["image"].pixels, pixels)
    assert torch.allclose(out["mask"].alpha, 1.0 - alpha)


def test_load_opaque_and_jpeg(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    PILImage.new("RGB", (8, 4), (255, 0, 128)).save(tmp_path / "in" / "b.jpg", quality=95)
    out = image_load(ctx, path="b.jpg")
    assert (out["image"].width, out["image"].height) == (8, 4)
    assert float(out["mask"].alpha.abs().max()) == 0.0
    red = out["image"].pixels[0, 0]
    assert float(red.mean()) > 0.95


def refusal(ctx: RunContext, path: str) -> NodeInputError:
    with pytest.raises(NodeInputError) as err:
        image_load(ctx, path=path)
    assert err.value.field == "path"
    assert "\n" not in err.value.message
    return err.value


def test_load_refuses_paths_outside_the_folder(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    PILImage.new("RGB", (2, 2)).save(tmp_path / "secret.png")
    (tmp_path / "in" / "sub").mkdir()
    assert "'..'" in refusal(ctx, "sub/../../secret.png").message
    assert "absolute" in refusal(ctx, str(tmp_path / "secret.png")).message
    assert "URL" in refusal(ctx, "https://example.com/a.png").message
    assert "absolute" in refusal(ctx, "~/a.png").message
    assert "absolute" in refusal(ctx, "C:/a.png").message
    os.symlink(tmp_path / "secret.png", tmp_path / "in" / "link.png")
    assert "outside" in refusal(ctx, "link.png").message


def test_load_refuses_missing_and_non_images(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    assert "not found" in refusal(ctx, "nope.png").message
    (tmp_path / "in" / "notes.png").write_text("just text")
    assert "not a readable image" in refusal(ctx, "notes.png").message
    PILImage.new("RGB", (2, 2)).save(tmp_path / "in" / "anim.gif")
    assert "GIF" in refusal(ctx, "anim.gif").message
    (tmp_path / "in" / "folder.png").mkdir()
    assert "regular file" in refusal(ctx, "folder.png").message


def test_load_symlink_inside_folder_is_fine(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    PILImage.new("RGB", (3, 2)).save(tmp_path / "in" / "real.png")
    os.symlink(tmp_path / "in" / "real.png", tmp_path / "in" / "alias.png")
    assert image_load(ctx, path="alias.png")["image"].width == 3


# --- image.save ------------------------------------------------------------------------------

def test_save_writes_png_with_graph(tmp_path: Path) -> None:
    graph_json = '{"format": "graphkit/1", "nodes": {}}\n'
    ctx = ctx_for(tmp_path, graph_json)
    pixels = torch.rand(1, 3, 7, 5)
    files = image_save(ctx, Image(pixels), name="pic")
    assert isinstance(files, SavedFiles)
    (path,) = files.paths
    assert Path(path) == tmp_path / "out" / "pic.png"
    with PILImage.open(path) as img:
        assert img.format == "PNG" and img.size == (5, 7)
        stored = torch.from_numpy(np.asarray(img.convert("RGB")).copy())
    expected = (pixels[0].permute(1, 2, 0) * 255).round().to(torch.uint8)
    assert torch.equal(stored, expected)
    assert read_graph_text(Path(path)) == graph_json
    assert read_info(Path(path))["node"] == "n"


def test_save_batch_numbers_files(tmp_path: Path) -> None:
    files = image_save(ctx_for(tmp_path), Image(torch.rand(2, 3, 4, 4)), name="b")
    assert [Path(p).name for p in files.paths] == ["b_0.png", "b_1.png"]


def test_a_save_never_overwrites_another_saves_file_of_the_same_run(tmp_path: Path) -> None:
    """A batch saved as 'a' writes a_0.png: a save named 'A_0' in the same run (the same
    Sandbox) is refused, not written over it; the first file keeps its pixels."""
    ctx = ctx_for(tmp_path)
    batch = image_save(ctx, Image(torch.zeros(2, 3, 4, 4)), name="a")
    first = Path(batch.paths[0]).read_bytes()
    other = RunContext("other", "image.save", CPU, ctx.sandbox, RunControl(), lambda s, t: None)
    with pytest.raises(NodeInputError, match=r"^'A_0.png' was already written in this run "
                                             r"by node 'n'; give each output its own name$"):
        image_save(other, Image(torch.ones(1, 3, 4, 4)), name="A_0")
    assert Path(batch.paths[0]).read_bytes() == first
    # the node that claimed a name may write it again (a retry after running out of memory)
    assert image_save(ctx, Image(torch.ones(2, 3, 4, 4)), name="a").paths == batch.paths
    assert Path(batch.paths[0]).read_bytes() != first


@pytest.mark.parametrize("name", ["a/b", "../up", "/abs", ".hidden", ""])
def test_save_refuses_names_with_folders(tmp_path: Path, name: str) -> None:
    """Refused by the param check before a run, and by the node itself if called directly."""
    with pytest.raises(NodeInputError) as err:
        image_save(ctx_for(tmp_path), Image(torch.rand(1, 3, 2, 2)), name=name)
    assert err.value.field == "name"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    doc = GraphDoc.model_validate({"nodes": {
        "l": {"type": "image.load", "params": {"path": "x.png"}},
        "s": {"type": "image.save", "params": {"name": name}, "inputs": {"image": "l.image"}}}})
    (p,) = validate(doc, registry())
    assert (p.code, p.node, p.field) == ("bad_param", "s", "name")
