"""Graphs in and out of the editor: examples, uploads (JSON or graphkit PNG), saving a graph
file in place (noticing when it changed on disk), saving into the workspace under a name,
and each browser tab's autosave."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from graphkit.errors import GraphError, problem
from graphkit.fileio import atomic_write_text
from graphkit.graph import GraphDoc, doc_from_raw, dumps_doc, load_doc, parse_json
from graphkit.imaging import pixels_to_pil
from graphkit.limits import limits
from graphkit.pngmeta import encode_png, graph_text_from_bytes, read_graph_text, run_info

MAX_UPLOAD = 16 * 1024 * 1024
SESSION_FORMAT = "graphkit-editor-session/2"
NAME_MAX = 120
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Opened:
    """A graph document, the folder its relative input paths are read from, and the graph
    file it is saved to in place (None for examples, uploads and new graphs).

    ``digest`` is the SHA-256 of that file's bytes when it was last read or written: a
    different digest on disk means someone else changed the file since.
    """

    doc: GraphDoc
    base_dir: Path
    source: str
    file: Path | None = None
    digest: str | None = None


def examples_dir() -> Path:
    """The ``graphs/`` folder of this checkout (may not exist in an installed copy)."""
    return Path(__file__).resolve().parents[2] / "graphs"


def list_examples(folder: Path | None = None) -> list[Path]:
    folder = folder or examples_dir()
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_digest(path: Path) -> str | None:
    """The SHA-256 of a file's bytes, or None when it cannot be read (gone, not a file)."""
    try:
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            return digest_of(handle.read(limits().max_graph_bytes + 1))
    except OSError:
        return None


def open_path(path: Path) -> Opened:
    """A graph file (edited in place) or a graphkit PNG (saved under a new name) on disk."""
    path = Path(path).resolve()
    if path.suffix.lower() == ".png":
        text = read_graph_text(path)
        try:
            return Opened(doc_from_raw(parse_json(text)), path.parent, path.name)
        except GraphError as exc:
            exc.source = path.name
            raise
    doc = load_doc(path, limits().max_graph_bytes)
    return Opened(doc, path.parent, path.name, file=path, digest=read_digest(path))


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


def write_graph(path: Path, text: str) -> str:
    """Write graph JSON text atomically; returns the digest of what was written."""
    data = text.encode("utf-8")
    atomic_write_text(path, text)
    return digest_of(data)


def workspace_file(workspace: Path, name: str) -> Path:
    """The graph file a name typed by the user stands for: ``NAME.json`` in the workspace.

    A name is one plain file name (no folders, no control characters, at most
    ``NAME_MAX`` characters); ``.json`` is added when missing.
    """
    name = name.strip()
    if not name:
        raise GraphError([problem("name", "type a name for the graph file")])
    if _CONTROL.search(name):
        raise GraphError([problem("name", "the name contains a control character (such as "
                                  "NUL or a line break)")])
    if len(name) > NAME_MAX:
        raise GraphError([problem("name", f"the name is {len(name)} characters; at most "
                                  f"{NAME_MAX}")])
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise GraphError([problem("name", "give a plain file name (no folders, not starting "
                                  "with '.'); graphs are saved in the workspace")])
    if not name.lower().endswith(".json"):
        name += ".json"
    return Path(workspace) / name


def slug(text: str) -> str:
    """A file name stem from a graph name."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in text).strip("_")
    return stem[:80] or "graph"


def save_session(path: Path, opened: Opened, graph_text: str | None = None) -> None:
    """Write a tab's graph, with where it came from and where it is saved, atomically.

    ``graph_text`` is the document's ``dumps_doc`` text when the caller has it already.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    head = {
        "format": SESSION_FORMAT,
        "base_dir": str(opened.base_dir),
        "source": opened.source,
        "file": str(opened.file) if opened.file else None,
        "digest": opened.digest,
    }
    graph = (graph_text if graph_text is not None else dumps_doc(opened.doc)).rstrip("\n")
    body = json.dumps(head, indent=2, ensure_ascii=False)[:-2]  # open, to add the graph
    atomic_write_text(path, f'{body},\n  "graph": {graph}\n}}\n')


def load_session(path: Path) -> Opened | None:
    """A tab's autosave, or None when there is none or it cannot be read."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("format") != SESSION_FORMAT:
            return None
        file = body.get("file")
        digest = body.get("digest")
        return Opened(doc_from_raw(body["graph"]), Path(body["base_dir"]),
                      str(body.get("source", "")), Path(file) if isinstance(file, str) else None,
                      digest if isinstance(digest, str) else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, GraphError):
        return None
