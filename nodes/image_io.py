"""Load images from allowed folders; save PNGs (carrying their graph) into the output folder."""

from pathlib import Path
from typing import Annotated

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from graphkit import Image, Param, RunContext, SavedFiles, node
from graphkit.context import NodeInputError
from graphkit.fileio import atomic_write_bytes
from graphkit.imaging import pil_to_alpha, pil_to_pixels, pixels_to_pil
from graphkit.pngmeta import encode_png, run_info
from graphkit.types import Mask

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP"}


@node("image.load", title="Load image", category="image", version="1.0.0",
      outputs={"image": Image, "mask": Mask}, file_params=("path",))
def image_load(
    ctx: RunContext,
    path: Annotated[str, Param(min_length=1, max_length=1024,
                               description="PNG, JPEG or WebP, relative to the graph's folder "
                                           "or an allowed input folder.")],
) -> dict:
    """Load an image; its mask output is 1 where the image is transparent (0 if opaque)."""
    file = ctx.sandbox.resolve_input(path, "path")
    limits = ctx.limits
    if file.stat().st_size > limits.max_image_file_bytes:
        raise NodeInputError("path", f"'{path}' is larger than {limits.max_image_file_bytes} "
                             "bytes (GRAPHKIT_LIMIT_MAX_IMAGE_FILE_BYTES)")
    try:
        with PILImage.open(file, formats=sorted(ALLOWED_FORMATS)) as img:
            limits.check_image("path", img.width, img.height, f"'{path}'")
            img.load()
            rgba = img.convert("RGBA")
    except PILImage.DecompressionBombError as exc:
        raise NodeInputError("path", f"'{path}' claims more pixels than allowed, a possible "
                             f"decompression bomb ({exc}); the limit is {limits.max_pixels} "
                             "(GRAPHKIT_LIMIT_MAX_PIXELS)") from None
    except UnidentifiedImageError:
        raise NodeInputError("path", f"'{path}' is not a readable image: {_sniff(file)}; "
                             "only PNG, JPEG and WebP are read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise NodeInputError("path", f"'{path}' is not a readable image ({exc})") from None
    pixels = pil_to_pixels(rgba).to(ctx.device)
    alpha = pil_to_alpha(rgba.getchannel("A")).to(ctx.device)
    return {"image": Image(pixels), "mask": Mask(1.0 - alpha)}


_MAGIC = {b"GIF8": "GIF", b"BM": "BMP", b"II*\x00": "TIFF", b"MM\x00*": "TIFF",
          b"\x00\x00\x01\x00": "ICO", b"8BPS": "PSD"}


def _sniff(file: Path) -> str:
    """Name a file's format from its first bytes, without handing it to a decoder."""
    with file.open("rb") as handle:
        head = handle.read(8)
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return f"it is {name}"
    return "its format is not recognised"


@node("image.save", title="Save image", category="image", version="1.0.0", output_node=True,
      output_params=("name",))
def image_save(
    ctx: RunContext,
    image: Image,
    # pydantic matches patterns with Rust's regex, where '$' is the end of the text (no
    # newline before it) and the classes are ASCII; the JSON Schema keeps the portable form.
    name: Annotated[str, Param(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,100}$",
                               description="File name without extension; PNG is written "
                                           "into the run's output folder.")] = "image",
) -> SavedFiles:
    """Write the image as PNG into the output folder, with the graph embedded for sharing."""
    pics = pixels_to_pil(image.pixels)
    info = run_info(ctx.graph_json, ctx.extras.get("models"), node=ctx.node_id)
    paths = []
    for i, pic in enumerate(pics):
        stem = name if len(pics) == 1 else f"{name}_{i}"
        target = ctx.sandbox.output_file(stem, ".png", owner=ctx.node_id)
        atomic_write_bytes(target, encode_png(pic, ctx.graph_json, info))
        paths.append(str(target))
    return SavedFiles(tuple(paths))
