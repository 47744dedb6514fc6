"""Sweep specs: ``NODE.PARAM=SPEC`` axes, their values, and the variations they make.

SPEC is one of:

- a comma list ``a,b,c``: each value is parsed as ``--set`` parses it (JSON, or the literal
  text for a text param). Commas inside JSON brackets or double-quoted strings do not
  split, so ``[1,2],[3,4]`` is two values and ``"a, b",c`` is two texts; whitespace around
  each value is dropped; an empty value is refused (write ``""`` for an empty text).
- an inclusive integer range ``A..B`` (``0..99`` is 100 values; A <= B).
- ``@FILE``: one value per line, each parsed as ``--set`` parses it; blank lines are
  skipped. FILE is a path as typed on the command line (relative to the current folder);
  it must be a regular file of UTF-8 text, at most ``max_sweep_file_bytes``. Given a
  ``file_root`` (the editor gives its workspace), FILE is relative to that folder and must
  stay inside it, links included.

Several axes make the cartesian product (the last axis varies fastest); ``zip`` pairs them
instead (equal lengths). Every value is checked against the param's type and bounds, and
the number of variations against ``max_sweep_variations``, before anything runs. Sizes
are limited by GRAPHKIT_LIMIT_MAX_SWEEP_VARIATIONS and GRAPHKIT_LIMIT_MAX_SWEEP_FILE_BYTES.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from graphkit.errors import GraphError, problem
from graphkit.limits import Limits, limits
from graphkit.overrides import parse_value, split_override

if TYPE_CHECKING:
    from graphkit.api import Graph

_RANGE = re.compile(r"^\s*(-?\d{1,19})\s*\.\.\s*(-?\d{1,19})\s*$")


@dataclass(frozen=True)
class Axis:
    """One swept param and its values, in order."""

    node: str
    param: str
    values: tuple[Any, ...]

    @property
    def name(self) -> str:
        return f"{self.node}.{self.param}"


@dataclass(frozen=True)
class Variation:
    """One override set of a sweep; ``index`` is its place in the full sweep."""

    index: int
    set: dict[str, Any]


@dataclass(frozen=True)
class Sweep:
    """Axes combined as a cartesian product, or paired (``zip``)."""

    axes: tuple[Axis, ...]
    zip: bool = False

    def __len__(self) -> int:
        if self.zip:
            return len(self.axes[0].values)
        return math.prod(len(a.values) for a in self.axes)

    def variations(self) -> list[Variation]:
        """Every variation, numbered from 0."""
        names = [a.name for a in self.axes]
        columns = [a.values for a in self.axes]
        combos = zip(*columns, strict=True) if self.zip else itertools.product(*columns)
        return [Variation(i, dict(zip(names, combo, strict=True)))
                for i, combo in enumerate(combos)]

    def describe(self) -> dict[str, Any]:
        """What identifies this sweep (for the manifest's description)."""
        return {"zip": self.zip, "axes": [{"param": a.name, "count": len(a.values)}
                                          for a in self.axes]}


def _fail(message: str, node: str | None = None, field: str | None = None) -> GraphError:
    return GraphError([problem("sweep", message, node, field)])


def build_sweep(graph: Graph, axes: Mapping[str, Any] | Iterable[str], zip: bool = False,
                lim: Limits | None = None, file_root: Path | None = None) -> Sweep:
    """Parse and check a sweep over ``graph``; GraphError (one problem) on bad input.

    ``axes`` is either ``NODE.PARAM=SPEC`` strings (the command line) or a mapping from
    ``"NODE.PARAM"`` to a SPEC string or to a list of values (the Python API; list values
    are used as they are, not parsed). ``file_root``: read @FILE only inside this folder.
    """
    lim = lim or limits()
    parsed: list[Axis] = []
    if isinstance(axes, Mapping):
        items = [(str(k), v) for k, v in axes.items()]
    else:
        items = []
        for item in axes:
            node_id, name, raw = split_override(item)
            items.append((f"{node_id}.{name}", raw))
    if not items:
        raise _fail("a sweep needs at least one NODE.PARAM=SPEC")
    seen: set[str] = set()
    for key, spec in items:
        node_id, dot, name = key.partition(".")
        if not dot or not node_id or not name:
            raise _fail(f"'{key}' must look like NODE.PARAM")
        if key in seen:
            raise _fail("this param is swept twice; give all its values in one SPEC",
                        node_id, name)
        seen.add(key)
        parsed.append(_axis(graph, node_id, name, spec, lim, file_root))
    sweep = Sweep(tuple(parsed), zip)
    if zip:
        lengths = {a.name: len(a.values) for a in parsed}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k} has {v}" for k, v in lengths.items())
            raise _fail(f"--zip pairs values, so every sweep needs as many values ({shown})")
    if len(sweep) > lim.max_sweep_variations:
        raise _fail(f"the sweep has {len(sweep)} variations; the limit is "
                    f"{lim.max_sweep_variations} (GRAPHKIT_LIMIT_MAX_SWEEP_VARIATIONS)")
    return sweep


def _axis(graph: Graph, node_id: str, name: str, spec: Any, lim: Limits,
          file_root: Path | None = None) -> Axis:
    entry = graph.doc.nodes.get(node_id)
    if entry is None:
        raise _fail("no such node in the graph", node_id, name)
    node_spec = graph.registry.get(entry.type)
    if node_spec is None:
        raise _fail(f"unknown node type '{entry.type}'", node_id, "type")
    param = node_spec.params.get(name)
    if param is None:
        known = ", ".join(node_spec.params) or "none"
        raise _fail(f"unknown param (known: {known})", node_id, name)
    if isinstance(spec, str):
        values = spec_values(spec, param.schema, lim, node_id, name, file_root)
    elif isinstance(spec, Iterable) and not isinstance(spec, (bytes, Mapping)):
        values = list(itertools.islice(spec, lim.max_sweep_variations + 1))
    else:
        raise _fail("give a SPEC string or a list of values", node_id, name)
    if not values:
        raise _fail("the sweep has no values (empty SPEC)", node_id, name)
    if len(values) > lim.max_sweep_variations:
        raise _fail(f"more than {lim.max_sweep_variations} values; the limit is "
                    f"{lim.max_sweep_variations} (GRAPHKIT_LIMIT_MAX_SWEEP_VARIATIONS)",
                    node_id, name)
    _check_values(graph, node_id, name, values, lim)
    return Axis(node_id, name, tuple(values))


def spec_values(raw: str, schema: dict[str, Any] | None, lim: Limits,
                node_id: str | None = None, name: str | None = None,
                file_root: Path | None = None) -> list[Any]:
    """The values a SPEC string stands for, each parsed as ``--set`` parses a value."""
    if not raw.strip():
        raise _fail("the sweep has no values (empty SPEC)", node_id, name)
    if raw.startswith("@"):
        lines = read_spec_file(raw[1:], lim, node_id, name, file_root)
        _check_count(lines, f"{raw} has", lim, node_id, name)
        return [parse_value(line, schema) for line in lines]
    match = _RANGE.match(raw)
    if match:
        start, stop = int(match.group(1)), int(match.group(2))
        if stop < start:
            raise _fail(f"range {start}..{stop} is empty; write it as {stop}..{start}",
                        node_id, name)
        if stop - start + 1 > lim.max_sweep_variations:
            raise _fail(f"range {start}..{stop} has {stop - start + 1} values; the limit is "
                        f"{lim.max_sweep_variations} (GRAPHKIT_LIMIT_MAX_SWEEP_VARIATIONS)",
                        node_id, name)
        return list(range(start, stop + 1))
    pieces = split_list(raw, node_id, name)
    _check_count(pieces, "the comma list has", lim, node_id, name)
    for position, piece in enumerate(pieces, 1):
        if not piece:
            raise _fail(f"value {position} of the comma list is empty (write \"\" for an "
                        "empty text)", node_id, name)
    return [parse_value(piece, schema) for piece in pieces]


def _check_count(values: list[str], what: str, lim: Limits, node_id: str | None,
                 name: str | None) -> None:
    """Refuse more values than a sweep may have before each is parsed and checked."""
    if len(values) > lim.max_sweep_variations:
        raise _fail(f"{what} {len(values)} values; the limit is {lim.max_sweep_variations} "
                    "(GRAPHKIT_LIMIT_MAX_SWEEP_VARIATIONS)", node_id, name)


def split_list(raw: str, node_id: str | None = None, name: str | None = None) -> list[str]:
    """Split at commas outside JSON brackets and double-quoted strings; strip each piece."""
    pieces, depth, start = [], 0, 0
    in_text = escaped = False
    for i, ch in enumerate(raw):
        if in_text:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_text = False
        elif ch == '"':
            in_text = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth < 0:
                break
        elif ch == "," and depth == 0:
            pieces.append(raw[start:i].strip())
            start = i + 1
    if in_text or depth != 0:
        raise _fail("unbalanced brackets or quotes in the comma list; give such values one "
                    "per line in @FILE", node_id, name)
    pieces.append(raw[start:].strip())
    return pieces


def read_spec_file(name: str, lim: Limits, node_id: str | None = None,
                   param: str | None = None, file_root: Path | None = None) -> list[str]:
    """The non-blank lines of a UTF-8 text file named on the command line (or, with
    ``file_root``, named relative to that folder and inside it)."""
    if not name:
        raise _fail("@ must be followed by a file name", node_id, param)
    path = Path(name).expanduser() if file_root is None else _inside(file_root, name,
                                                                       node_id, param)
    limit = lim.max_sweep_file_bytes
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    if file_root is not None:  # resolved already: a link put there since is not followed
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:  # O_NONBLOCK: a FIFO named here must not hang the run before it is refused
        fd = os.open(path, flags)
    except OSError as exc:
        raise _fail(f"cannot read @{name}: {exc.strerror or exc}", node_id, param) from None
    except (ValueError, UnicodeError):  # a NUL byte, a lone surrogate
        raise _unusable(name, node_id, param) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise _fail(f"@{name} is not a regular file", node_id, param)
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > limit:
            raise _fail(f"@{name} is {info.st_size} bytes; the limit is {limit} "
                        "(GRAPHKIT_LIMIT_MAX_SWEEP_FILE_BYTES)", node_id, param)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise _fail(f"@{name} is larger than {limit} bytes "
                    "(GRAPHKIT_LIMIT_MAX_SWEEP_FILE_BYTES)", node_id, param)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"@{name} is not UTF-8 text (bad byte at offset {exc.start})",
                    node_id, param) from None
    if "\x00" in text:
        raise _fail(f"@{name} contains a NUL character; it must be text", node_id, param)
    lines = [line.removesuffix("\r") for line in text.removeprefix("\ufeff").split("\n")]
    return [line for line in lines if line.strip()]


def _inside(root: Path, name: str, node_id: str | None, param: str | None) -> Path:
    """``name`` relative to ``root``, links resolved; refused unless it stays inside."""
    base = Path(root).resolve()
    try:
        path = (base / name).resolve()
    except (ValueError, UnicodeError):
        raise _unusable(name, node_id, param) from None
    if not path.is_relative_to(base):
        raise _fail(f"@{name} is not inside {base}; only files in that folder can be read",
                    node_id, param)
    return path


def _unusable(name: str, node_id: str | None, param: str | None) -> GraphError:
    return _fail(f"cannot read @{name}: not a usable file name", node_id, param)


def _check_values(graph: Graph, node_id: str, name: str, values: list[Any],
                  lim: Limits) -> None:
    """Each value against the param's type, bounds and limits, with the node's other params."""
    entry = graph.doc.nodes[node_id]
    spec = graph.registry.get(entry.type)
    assert spec is not None
    checked: set[str] = set()
    for value in values:
        try:
            fingerprint = json.dumps(value, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError):
            raise _fail(f"value {_short(value)} is not a plain JSON value", node_id,
                        name) from None
        if fingerprint in checked:
            continue
        checked.add(fingerprint)
        params = {**entry.params, name: value}
        try:
            valid = spec.params_model.model_validate(params).model_dump()
        except ValidationError as exc:
            errors = [e for e in exc.errors() if e.get("loc", ("",))[0] == name]
            if errors:
                msg = errors[0].get("msg", "invalid value").replace("\n", " ")
                raise _fail(f"sweep value {_short(value)}: {msg}", node_id, name) from None
            continue  # another param of the node is wrong: graph validation reports it
        for found in lim.check_params(node_id, {name: valid[name]}):
            raise _fail(f"sweep value {_short(value)}: {found.message}", node_id, name)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, float) or \
        math.isfinite(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
