"""The graph (and the software that ran it) embedded in PNG text chunks, and read back.

Reading never decodes pixels and never hands the file to Pillow: the chunks are walked
directly, the header's size is checked against the limits first, image data is skipped,
and only graphkit's own text chunks (tEXt, zTXt or iTXt) are read, each inflated no
further than its size limit. Every problem is a one-line :class:`GraphError`.
"""

from __future__ import annotations

import functools
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image as PILImage
from PIL import PngImagePlugin

from graphkit.errors import GraphError, problem
from graphkit.fileio import open_regular

GRAPH_KEY = "graphkit.graph"
INFO_KEY = "graphkit.info"
MAX_INFO_BYTES = 1 << 20  # versions and models: a few kB in practice
MAX_CHUNKS = 1_000_000  # a 64-megapixel PNG in 8 kB IDAT chunks has about 24,000
SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
_MAGIC = {b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"RIFF": "RIFF/WebP", b"BM": "BMP",
          b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}


def encode_png(img: PILImage.Image, graph_json: str, info: dict[str, Any] | None = None) -> bytes:
    """PNG bytes of ``img`` carrying the graph and run info in iTXt chunks."""
    meta = PngImagePlugin.PngInfo()
    if graph_json:
        meta.add_itxt(GRAPH_KEY, graph_json, zip=True)
    if info:
        meta.add_itxt(INFO_KEY, json.dumps(info, sort_keys=True), zip=True)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=meta)
    return buf.getvalue()


class _PngError(Exception):
    """What is wrong with a PNG, as one sentence (turned into a GraphError by the caller)."""

    def __init__(self, message: str, code: str = "png") -> None:
        super().__init__(message)
        self.code = code


def read_meta(path: Path) -> dict[str, str]:
    """The graphkit text chunks of a PNG file (only regular files are opened)."""
    try:
        with open_regular(Path(path)) as handle:
            return _meta_or_error(handle, str(path))
    except OSError as exc:
        raise GraphError([problem("file", f"cannot read: {exc.strerror or exc}")],
                         str(path)) from None


def read_meta_bytes(data: bytes, source: str = "image") -> dict[str, str]:
    """The graphkit text chunks of PNG bytes (an upload)."""
    return _meta_or_error(io.BytesIO(data), source)


def read_graph_text(path: Path) -> str:
    """The graph JSON a graphkit PNG carries."""
    return _graph_of(read_meta(path), str(path))


def graph_text_from_bytes(data: bytes, source: str = "image") -> str:
    """The graph JSON carried by PNG bytes (an upload)."""
    return _graph_of(read_meta_bytes(data, source), source)


def read_info(path: Path) -> dict[str, Any]:
    """The run info (versions, models) a graphkit PNG carries, or {}."""
    raw = read_meta(path).get(INFO_KEY)
    if not raw:
        return {}
    try:
        info = json.loads(raw)
    except (ValueError, RecursionError):
        info = None
    if not isinstance(info, dict):
        raise GraphError([problem("png", f"the '{INFO_KEY}' chunk is not a JSON object, so "
                                  "the run info cannot be shown")], str(path))
    return info


def _graph_of(meta: dict[str, str], source: str) -> str:
    if GRAPH_KEY not in meta:
        raise GraphError([problem("png", "this PNG carries no graphkit graph")], source)
    return meta[GRAPH_KEY]


def _meta_or_error(handle: BinaryIO, source: str) -> dict[str, str]:
    try:
        return _read_text_chunks(handle)
    except _PngError as exc:
        raise GraphError([problem(exc.code, str(exc))], source) from None


def _read_text_chunks(handle: BinaryIO) -> dict[str, str]:
    """Walk the chunks: check the header, skip image data, read graphkit's text chunks."""
    head = handle.read(len(SIGNATURE))
    if head != SIGNATURE:
        kind = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
        raise _PngError(f"not a PNG image ({kind})" if kind else "not a PNG image")
    found: dict[str, str] = {}
    for index in range(MAX_CHUNKS):
        length, kind = _chunk_head(handle)
        if index == 0:
            if kind != b"IHDR":
                raise _PngError("not a valid PNG: it does not start with a header (IHDR) chunk")
            _check_header(_chunk_body(handle, kind, length))
        elif kind in TEXT_CHUNKS:
            _read_text_chunk(handle, kind, length, found)
        elif kind == b"IEND":
            return found
        else:
            handle.seek(length + 4, io.SEEK_CUR)  # data and CRC, unread
    raise _PngError(f"more than {MAX_CHUNKS} chunks; not a PNG graphkit writes")


def _chunk_head(handle: BinaryIO) -> tuple[int, bytes]:
    raw = handle.read(8)
    if len(raw) < 8:
        raise _PngError("the PNG is truncated (it ends before its IEND chunk)")
    length, kind = struct.unpack(">I4s", raw)
    if length > 0x7FFFFFFF or not kind.isalpha():
        raise _PngError("not a valid PNG: a chunk has a malformed length or type")
    return length, kind


def _chunk_body(handle: BinaryIO, kind: bytes, length: int) -> bytes:
    """A chunk's data, its CRC checked."""
    data = handle.read(length)
    crc = handle.read(4)
    if len(data) < length or len(crc) < 4:
        raise _PngError("the PNG is truncated (it ends inside a chunk)")
    if struct.unpack(">I", crc)[0] != zlib.crc32(kind + data):
        raise _PngError(f"the PNG is corrupt: the CRC of a {kind.decode()} chunk does not match")
    return data


def _check_header(data: bytes) -> None:
    """The size the header claims, against the limits, before anything else is read."""
    from graphkit.limits import limits

    if len(data) != 13:
        raise _PngError("not a valid PNG: its header chunk has the wrong length")
    width, height = struct.unpack(">II", data[:8])
    if width == 0 or height == 0:
        raise _PngError(f"not a valid PNG: its header says {width}x{height}")
    lim = limits()
    if width > lim.max_side or height > lim.max_side:
        raise _PngError(f"the PNG claims {width}x{height} pixels; the limit is {lim.max_side} "
                        "per side (GRAPHKIT_LIMIT_MAX_SIDE)", "limit")
    # an upscaled output may be as large as its own limit allows, and still carry its graph
    pixels, name = (lim.max_pixels, "MAX_PIXELS")
    if lim.max_upscaled_pixels > lim.max_pixels:
        pixels, name = lim.max_upscaled_pixels, "MAX_UPSCALED_PIXELS"
    if width * height > pixels:
        raise _PngError(f"the PNG claims {width}x{height} = {width * height} pixels; the limit "
                        f"is {pixels} (GRAPHKIT_LIMIT_{name})", "limit")


def _limit_of(key: str) -> tuple[int, str]:
    from graphkit.limits import limits

    if key == GRAPH_KEY:
        return limits().max_graph_bytes, " (GRAPHKIT_LIMIT_MAX_GRAPH_BYTES)"
    return MAX_INFO_BYTES, ""


def _read_text_chunk(handle: BinaryIO, kind: bytes, length: int, found: dict[str, str]) -> None:
    """Read one text chunk if its keyword is graphkit's; skip it otherwise."""
    start = handle.tell()
    key = handle.read(min(length, 80)).partition(b"\x00")[0].decode("latin-1")
    if key not in (GRAPH_KEY, INFO_KEY):
        handle.seek(start + length + 4)
        return
    if key in found:
        raise _PngError(f"the PNG carries two '{key}' chunks; which one is meant is unclear")
    limit, hint = _limit_of(key)
    if length > limit + limit // 64 + 1024:  # more than zlib could need for ``limit`` bytes
        raise _PngError(f"the '{key}' chunk is {length} bytes; the limit is {limit}{hint}", "limit")
    handle.seek(start)
    data = _chunk_body(handle, kind, length)
    raw, compressed = _text_payload(kind, data[len(key) + 1:], key)
    text = _inflate(raw, limit, key, hint) if compressed else raw
    if len(text) > limit:
        raise _PngError(f"the '{key}' text is over {limit} bytes{hint}", "limit")
    try:
        found[key] = text.decode("latin-1" if kind == b"tEXt" else "utf-8")
    except UnicodeDecodeError:
        raise _PngError(f"the '{key}' text is not valid UTF-8") from None


def _text_payload(kind: bytes, rest: bytes, key: str) -> tuple[bytes, bool]:
    """The (maybe compressed) text of a chunk after its keyword, and whether it is compressed."""
    if kind == b"tEXt":
        return rest, False
    if kind == b"zTXt":
        if rest[:1] != b"\x00":
            raise _PngError(f"the '{key}' chunk names an unknown compression method")
        return rest[1:], True
    if len(rest) < 2 or rest[1:2] != b"\x00":
        raise _PngError(f"the '{key}' chunk names an unknown compression method")
    compressed = rest[0] == 1
    _language, _, rest = rest[2:].partition(b"\x00")
    _translated, _, text = rest.partition(b"\x00")
    return text, compressed


def _inflate(raw: bytes, limit: int, key: str, hint: str) -> bytes:
    """Decompress at most ``limit`` + 1 bytes (a zip bomb stops at the limit)."""
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise _PngError(f"the '{key}' chunk cannot be decompressed (corrupt data)") from None
    if len(text) > limit:
        raise _PngError(f"the '{key}' text inflates to more than {limit} bytes{hint}", "limit")
    return text


def run_info(graph_json: str = "", manager: Any = None, **extra: Any) -> dict[str, Any]:
    """Software versions, the model profile, and the models this graph uses with the
    revisions loaded (from ``manager``, else the process's model manager if there is one)."""
    import sys

    info: dict[str, Any] = {"versions": dict(_versions()), **extra}
    if manager is None:
        models = sys.modules.get("graphkit.models")
        manager = getattr(models, "_MANAGER", None) if models is not None else None
    if manager is not None:
        info["profile"] = manager.profile
        used = _graph_models(graph_json)
        info["models"] = {name: entry for name, entry in manager.loaded().items()
                          if used is None or name in used}
    return info


def recorded_profile(info: dict[str, Any]) -> str | None:
    """The model profile ('hub' or 'tiny') a PNG's run info records, or None.

    PNGs written before the profile was recorded still say which kind each model was."""
    profile = info.get("profile")
    if profile in ("hub", "tiny"):
        return profile
    models = info.get("models")
    kinds = {entry.get("kind") for entry in models.values() if isinstance(entry, dict)} \
        if isinstance(models, dict) else set()
    if "tiny" in kinds:
        return "tiny"
    return "hub" if kinds else None


@functools.cache
def _versions() -> tuple[tuple[str, str | None], ...]:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for dist in ("graphkit", "torch", "diffusers", "transformers"):
        try:
            found.append((dist, version(dist)))
        except PackageNotFoundError:
            found.append((dist, None))
    return tuple(found)


def _graph_models(graph_json: str) -> set[str] | None:
    """Model names a graph's nodes use (defaults included), named as the model manager
    names them (``id@revision`` when a revision is pinned); None when it cannot be read."""
    from graphkit.graph import doc_from_raw, parse_json
    from graphkit.registry import registry
    from graphkit.requirements import model_params

    if not graph_json:
        return None
    try:
        doc = doc_from_raw(parse_json(graph_json))
    except GraphError:
        return None
    return {name if revision is None else f"{name}@{revision}"
            for name, revision in model_params(doc, registry()).values()}
