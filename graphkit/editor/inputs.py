"""Input images in the workspace: uploads from the browser and the list an input picker shows.

Uploads land in ``<workspace>/inputs/`` and are named in graphs as ``inputs/NAME`` (relative
to the workspace, which runs may read from), so a graph saved in the workspace finds them.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from graphkit.errors import GraphError, problem
from graphkit.fileio import atomic_write_bytes
from graphkit.limits import limits

INPUTS = "inputs"
IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
MAX_LISTED = 500
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def inputs_dir(workspace: Path) -> Path:
    return Path(workspace) / INPUTS


def list_images(workspace: Path) -> list[str]:
    """Images in the workspace's inputs folder, as graphs name them (``inputs/NAME``)."""
    folder = inputs_dir(workspace)
    if not folder.is_dir():
        return []
    names = sorted(p.name for p in folder.iterdir()
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not p.name.startswith("."))
    return [f"{INPUTS}/{n}" for n in names[:MAX_LISTED]]


def safe_name(name: str) -> str:
    """A plain file name from an uploaded file's name (no folders, no odd characters)."""
    stem, dot, suffix = Path(name.replace("\\", "/")).name.rpartition(".")
    stem = _UNSAFE.sub("_", stem if dot else suffix).strip("._-")[:80] or "image"
    suffix = suffix.lower() if dot else "png"
    return f"{stem}.{suffix}"


def check_image(data: bytes, name: str) -> str:
    """The format of uploaded image bytes; a GraphError (one line) when they are not a
    PNG, JPEG or WebP within the size limits."""
    lim = limits()
    if len(data) > lim.max_image_file_bytes:
        raise GraphError([problem("upload", f"'{name}' is {len(data)} bytes; the limit is "
                                  f"{lim.max_image_file_bytes}")])
    try:
        with PILImage.open(io.BytesIO(data), formats=sorted(set(IMAGE_SUFFIXES.values()))) as img:
            if img.width > lim.max_side or img.height > lim.max_side or (
                    img.width * img.height > lim.max_pixels):
                raise GraphError([problem("upload", f"'{name}' is {img.width}x{img.height}; the "
                                          f"limits are {lim.max_side} per side and "
                                          f"{lim.max_pixels} pixels")])
            img.verify()
            return str(img.format)
    except GraphError:
        raise
    except PILImage.DecompressionBombError as exc:
        raise GraphError([problem("upload", f"'{name}' refused: {exc}")]) from None
    except UnidentifiedImageError:
        raise GraphError([problem("upload", f"'{name}' is not a PNG, JPEG or WebP image")]
                         ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise GraphError([problem("upload", f"'{name}' is not a readable image ({exc})")]
                         ) from None


def save_upload(workspace: Path, name: str, data: bytes) -> str:
    """Store an uploaded image in the workspace's inputs folder; returns ``inputs/NAME``.

    The same bytes under the same name are reused; other bytes under a taken name get a
    free name (``photo_2.png``).
    """
    fmt = check_image(data, name)
    clean = safe_name(name)
    stem, suffix = clean.rsplit(".", 1)
    if IMAGE_SUFFIXES.get(f".{suffix}") != fmt:
        suffix = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[fmt]
    folder = inputs_dir(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    candidate, n = folder / f"{stem}.{suffix}", 1
    while candidate.exists():
        if candidate.is_file() and candidate.read_bytes() == data:
            return f"{INPUTS}/{candidate.name}"
        n += 1
        candidate = folder / f"{stem}_{n}.{suffix}"
    atomic_write_bytes(candidate, data)
    return f"{INPUTS}/{candidate.name}"
