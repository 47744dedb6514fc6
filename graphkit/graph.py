"""The graph file: pydantic model, format migrations, deterministic load and save."""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from graphkit.errors import GraphError, Problem, problem
from graphkit.fileio import atomic_write_text, open_regular

FORMAT = "graphkit/1"
# Names from files are matched whole (fullmatch) and in ASCII only: an anchored ``$`` would
# let a trailing newline through, and ``\d``/``\w`` accept non-ASCII digits and letters.
_ID = r"[A-Za-z_][A-Za-z0-9_\-]{0,63}"
NODE_ID = rf"\A{_ID}\Z"  # a pattern string, whole-text however it is applied
NODE_ID_RE = re.compile(_ID, re.ASCII)
MAX_DEPTH = 64  # nesting levels of JSON a graph file may use
_SURROGATE = re.compile("[\ud800-\udfff]")
PORT_REF = re.compile(rf"({_ID})\.([A-Za-z_][A-Za-z0-9_]*)", re.ASCII)


class NodeEntry(BaseModel):
    """One node of a graph file: its type, params by name, and input links."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=200)
    version: str | None = Field(default=None, max_length=50)
    pack: str | None = Field(default=None, max_length=200)
    params: dict[str, JsonValue] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict)


class GraphDoc(BaseModel):
    """A whole graph file. ``ui`` holds positions, titles and notes; execution ignores it."""

    model_config = ConfigDict(extra="forbid")

    format: str = FORMAT
    name: str = Field(default="", max_length=500)
    nodes: dict[str, NodeEntry] = Field(default_factory=dict)
    ui: dict[str, JsonValue] = Field(default_factory=dict)


def _v0_to_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """Format 0 listed nodes with an ``id`` field and linked inputs as [node, port] pairs."""
    nodes: dict[str, Any] = {}
    for entry in raw.get("nodes", []):
        entry = dict(entry)
        node_id = entry.pop("id")
        links = entry.get("inputs", {})
        entry["inputs"] = {port: f"{src[0]}.{src[1]}" for port, src in links.items()}
        nodes[node_id] = entry
    out = {k: v for k, v in raw.items() if k not in ("nodes", "format")}
    return {**out, "format": "graphkit/1", "nodes": nodes}


MIGRATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "graphkit/0": _v0_to_v1,
}


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring a raw graph document up to the current format, one step at a time."""
    seen = set()
    while raw.get("format") in MIGRATIONS and raw["format"] not in seen:
        seen.add(raw["format"])
        raw = MIGRATIONS[raw["format"]](raw)
    return raw


class _Parsed(dict):  # type: ignore[type-arg]
    """A parsed JSON object that remembers the keys it held twice."""

    duplicates: tuple[str, ...] = ()


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = _Parsed()
    seen_twice = []
    for key, value in pairs:
        if key in out:
            seen_twice.append(key)
        out[key] = value
    out.duplicates = tuple(seen_twice)
    return out


def _plain(value: Any, path: tuple[str, ...], problems: list[Problem]) -> Any:
    """Plain dicts and lists again, with a problem for every duplicate key on the way.

    Also refuses nesting deeper than MAX_DEPTH and text with unpaired surrogates (which
    cannot be written back as UTF-8).
    """
    if len(path) > MAX_DEPTH:
        raise GraphError([problem("json", f"JSON nests deeper than {MAX_DEPTH} levels")])
    if isinstance(value, str):
        _check_text(value, path)
        return value
    if isinstance(value, list):
        return [_plain(v, (*path, str(i)), problems) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    for key in getattr(value, "duplicates", ()):
        problems.append(_duplicate_problem(path, key))
    out = {}
    for k, v in value.items():
        _check_text(k, path)
        out[k] = _plain(v, (*path, k), problems)
    return out


def _check_text(text: str, path: tuple[str, ...]) -> None:
    if _SURROGATE.search(text):
        where = ".".join(path) or "top level"
        raise GraphError([problem("json", f"text at {_short_path(where)} holds an unpaired "
                                  "surrogate escape (not valid Unicode)")])


def _short_path(text: str) -> str:
    text = text.encode("ascii", "backslashreplace").decode()
    return text if len(text) <= 80 else text[:77] + "..."


class _NotFiniteError(ValueError):
    """NaN, Infinity, or a number too large for a float, in JSON text."""


def _refuse_constant(name: str) -> Any:
    raise _NotFiniteError(f"{name} is not a JSON number; use a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFiniteError(f"number {text[:40]} is too large for a float")
    return value


def _duplicate_problem(path: tuple[str, ...], key: str) -> Problem:
    msg = f"key '{key}' appears twice in one object"
    if path == ("nodes",):
        return problem("duplicate_key", f"{msg}: two nodes with one id", node=key)
    if len(path) >= 2 and path[0] == "nodes":
        hint = ": two links into one input" if path[2:] == ("inputs",) else ""
        return problem("duplicate_key", msg + hint, node=path[1],
                       field=".".join((*path[2:], key)))
    return problem("duplicate_key", msg, field=".".join((*path, key)))


def parse_json(text: str | bytes) -> Any:
    """Parse JSON, refusing duplicate keys (each one reported); errors carry line and column."""
    try:
        raw = json.loads(text, object_pairs_hook=_pairs_hook, parse_constant=_refuse_constant,
                         parse_float=_finite_float)
    except _NotFiniteError as exc:
        raise GraphError([problem("json", f"malformed JSON: {exc}")]) from None
    except json.JSONDecodeError as exc:
        raise GraphError(
            [problem("json", f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
        ) from None
    except (RecursionError, ValueError) as exc:
        raise GraphError([problem("json", f"unreadable JSON: {exc}")]) from None
    problems: list[Problem] = []
    try:
        raw = _plain(raw, (), problems)
    except RecursionError:
        raise GraphError([problem("json", "JSON nests too deeply")]) from None
    if problems:
        raise GraphError(problems)
    return raw


def doc_from_raw(raw: Any) -> GraphDoc:
    """Typed graph document from parsed JSON, with every structural problem reported."""
    if not isinstance(raw, dict):
        raise GraphError([problem("structure", "a graph file must be a JSON object")])
    fmt = raw.get("format", FORMAT)
    if not isinstance(fmt, str):
        raise GraphError([problem("format", "'format' must be a string such as "
                                  f"{FORMAT!r}", field="format")])
    try:
        raw = migrate(raw)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        raise GraphError([problem("structure", f"malformed {fmt!r} graph: nodes must be a list "
                                  "of objects with an 'id', links [node, port] pairs",
                                  field="nodes")]) from None
    if raw.get("format", FORMAT) != FORMAT:
        raise GraphError([problem(
            "format", f"unsupported graph format {fmt!r}; this graphkit reads {FORMAT!r}"
            " and migrates 'graphkit/0'", field="format")])
    try:
        return GraphDoc.model_validate(raw)
    except ValidationError as exc:
        raise GraphError([_structure_problem(e) for e in exc.errors()]) from None
    except RecursionError:
        raise GraphError([problem("structure", "graph nests too deeply")]) from None


def _structure_problem(err: Any) -> Problem:
    loc = [str(x) for x in err.get("loc", ())]
    node = field = None
    if len(loc) >= 2 and loc[0] == "nodes":
        node = loc[1]
        field = ".".join(loc[2:]) or None
    elif loc:
        field = ".".join(loc)
    msg = err.get("msg", "invalid").replace("\n", " ")
    if err.get("type") == "extra_forbidden":
        msg = "unknown key"
    return problem("structure", msg, node=node, field=field)


def dumps_doc(doc: GraphDoc) -> str:
    """Deterministic JSON text: fixed field order, sorted ids and names, two-space indent."""
    nodes = {}
    for node_id in sorted(doc.nodes):
        entry = doc.nodes[node_id]
        out: dict[str, Any] = {"type": entry.type}
        if entry.version:
            out["version"] = entry.version
        if entry.pack:
            out["pack"] = entry.pack
        if entry.params:
            out["params"] = _sorted(entry.params)
        if entry.inputs:
            out["inputs"] = dict(sorted(entry.inputs.items()))
        nodes[node_id] = out
    top: dict[str, Any] = {"format": FORMAT}
    if doc.name:
        top["name"] = doc.name
    top["nodes"] = nodes
    if doc.ui:
        top["ui"] = _sorted(doc.ui)
    return json.dumps(top, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def is_node_id(text: str) -> bool:
    """Whether ``text`` is a valid node id: ASCII letters, digits, '_' or '-', at most 64."""
    return NODE_ID_RE.fullmatch(text) is not None


def split_ref(ref: str) -> tuple[str, str] | None:
    """``"node.port"`` into (node, port), or None when it is not of that shape."""
    match = PORT_REF.fullmatch(ref)
    return (match.group(1), match.group(2)) if match else None


def load_doc(path: Path, max_bytes: int = 16 * 1024 * 1024) -> GraphDoc:
    """Read a graph file into a GraphDoc; every problem names the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise GraphError([problem("limit", f"file is {size} bytes; the limit is {max_bytes} "
                                     "(GRAPHKIT_LIMIT_MAX_GRAPH_BYTES)")])
        with open_regular(path) as handle:  # bounded: a growing file stops here
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise GraphError([problem("limit", f"file is larger than {max_bytes} bytes "
                                      "(GRAPHKIT_LIMIT_MAX_GRAPH_BYTES)")])
    except OSError as exc:
        raise GraphError([problem("file", f"cannot read: {exc.strerror or exc}")],
                         str(path)) from None
    except GraphError as exc:
        exc.source = str(path)
        raise
    try:
        return doc_from_raw(parse_json(data))
    except GraphError as exc:
        exc.source = str(path)
        raise


def save_doc(doc: GraphDoc, path: Path) -> None:
    """Write a graph file atomically."""
    atomic_write_text(Path(path), dumps_doc(doc))


def copy_doc(doc: GraphDoc) -> GraphDoc:
    """A deep copy (edits to it leave the original alone)."""
    return GraphDoc.model_validate(copy.deepcopy(doc.model_dump()))
