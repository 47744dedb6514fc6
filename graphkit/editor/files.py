"""Graphs in and out of the editor: examples, uploads (JSON or graphkit PNG), autosave."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from graphkit.errors import GraphError, problem
from graphkit.fileio import atomic_write_text
from graphkit.graph import GraphDoc, doc_from_raw, dumps_doc, load_doc, parse_json
from graphkit.imaging import pixels_to_pil
from graphkit.pngmeta import encode_png, graph_text_from_bytes, read_graph_text, run_info

MAX_UPLOAD = 16 * 1024 * 1024
SESSION_FORMAT = "graphkit-editor-session/1"


@dataclass
class Opened:
    """A graph document and the folder its relative input paths are read from."""

    doc: GraphDoc
    base_dir: Path
    source: str


def default_workspace() -> Path:
    return Path.home() / ".cache" / "graphkit" / "editor"


def examples_dir() -> Path:
    """The ``graphs/`` folder of this checkout (may not exist in an installed copy)."""
    return Path(__file__).resolve().parents[2] / "graphs"


def list_examples(folder: Path | None = None) -> list[Path]:
    folder = folder or examples_dir()
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def open_path(path: Path) -> Opened:
    """A graph file or a graphkit PNG on disk."""
    path = Path(path).resolve()
    if path.suffix.lower() == ".png":
        text = read_graph_text(path)
        try:
            return Opened(doc_from_raw(parse_json(text)), path.parent, path.name)
        except GraphError as exc:
            exc.source = path.name
            raise
    return Opened(load_doc(path), path.parent, path.name)


def open_upload(name: str, data: bytes, base_dir: Path) -> Opened:
    """An uploaded graph JSON or graphkit PNG; a GraphError says what is wrong with it."""
    if len(data) > MAX_UPLOAD:
        raise GraphError([problem("limit", f"file is {len(data)} bytes; the limit is "
                                  f"{MAX_UPLOAD}")], name)
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" or name.lower().endswith(".png"):
            doc = doc_from_png(data, name)
        else:
            doc = doc_from_raw(parse_json(data))
    except GraphError as exc:
        exc.source = name
        raise
    return Opened(doc, base_dir, name)


def doc_from_png(data: bytes, name: str = "image") -> GraphDoc:
    """The graph a graphkit PNG carries (read as the CLI reads it: no pixels decoded)."""
    return doc_from_raw(parse_json(graph_text_from_bytes(data, name)))


def image_png(pixels: object, graph_json: str, node_id: str) -> bytes:
    """PNG bytes of the first image of a batch, with the graph embedded."""
    pic = pixels_to_pil(pixels)[0]  # type: ignore[arg-type]
    return encode_png(pic, graph_json, run_info(graph_json, node=node_id))


def save_session(path: Path, opened: Opened) -> None:
    """Write the graph being edited, with where it came from, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "format": SESSION_FORMAT,
        "base_dir": str(opened.base_dir),
        "source": opened.source,
        "graph": json.loads(dumps_doc(opened.doc)),
    }
    atomic_write_text(path, json.dumps(body, indent=2, ensure_ascii=False) + "\n")


def load_session(path: Path) -> Opened | None:
    """The autosaved session, or None when there is none or it cannot be read."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("format") != SESSION_FORMAT:
            return None
        return Opened(doc_from_raw(body["graph"]), Path(body["base_dir"]), body.get("source", ""))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, GraphError):
        return None
