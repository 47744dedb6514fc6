"""The graph (and the software that ran it) embedded in PNG text chunks, and read back."""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from PIL import PngImagePlugin

from graphkit.errors import GraphError, problem

GRAPH_KEY = "graphkit.graph"
INFO_KEY = "graphkit.info"


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


def read_meta(path: Path) -> dict[str, str]:
    """The graphkit text chunks of a PNG file."""
    _allow_text_chunks_up_to_the_graph_limit()
    try:
        with PILImage.open(path) as img:
            if img.format != "PNG":
                raise GraphError([problem("png", f"not a PNG image ({img.format})")], str(path))
            text = dict(getattr(img, "text", {}) or {})
    except GraphError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise GraphError([problem("png", f"cannot read PNG: {exc}")], str(path)) from None
    return {k: v for k, v in text.items() if k.startswith("graphkit.")}


def _allow_text_chunks_up_to_the_graph_limit() -> None:
    """Pillow refuses text chunks over 1 MB decompressed (a bomb guard); a graph may be as
    large as the graph file limit, so raise Pillow's bound to that (never lower it)."""
    from graphkit.limits import limits

    need = limits().max_graph_bytes + (1 << 20)  # the graph, and the run info beside it
    PngImagePlugin.MAX_TEXT_CHUNK = max(PngImagePlugin.MAX_TEXT_CHUNK, need)
    PngImagePlugin.MAX_TEXT_MEMORY = max(PngImagePlugin.MAX_TEXT_MEMORY, 2 * need)


def read_graph_text(path: Path) -> str:
    """The graph JSON a graphkit PNG carries."""
    meta = read_meta(path)
    if GRAPH_KEY not in meta:
        raise GraphError([problem("png", "this PNG carries no graphkit graph")], str(path))
    return meta[GRAPH_KEY]


def read_info(path: Path) -> dict[str, Any]:
    """The run info (versions, models) a graphkit PNG carries, or {}."""
    raw = read_meta(path).get(INFO_KEY)
    return json.loads(raw) if raw else {}


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
