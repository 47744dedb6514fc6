"""``NODE.PARAM=VALUE`` overrides (``--set``): split them and turn VALUE into a param value."""

from __future__ import annotations

import json
from typing import Any

from graphkit.errors import GraphError, problem
from graphkit.graph import MAX_DEPTH


def split_override(item: str) -> tuple[str, str, str]:
    """``"gen.seed=3"`` -> ``("gen", "seed", "3")``; GraphError when it is not that shape."""
    target, sep, raw = item.partition("=")
    node_id, dot, name = target.partition(".")
    if not sep or not dot or not node_id or not name:
        raise GraphError([problem("override", f"override '{item}' must look like "
                                  "NODE.PARAM=VALUE")])
    return node_id, name, raw


# A param value sits four levels deep in a graph file (nodes, id, params, name): deeper
# values would make a graph that cannot be read back.
MAX_VALUE_DEPTH = MAX_DEPTH - 4
_TOO_DEEP = object()


def _depth(value: Any) -> int:
    """How many levels of lists and objects nest in ``value`` (without recursing)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level + 1)
            stack += [(v, level + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return deepest


def _schema_types(schema: dict[str, Any] | None) -> set[str]:
    if not schema:
        return set()
    kinds = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for option in schema.get("anyOf", []):
        if isinstance(option, dict) and isinstance(option.get("type"), str):
            kinds.add(option["type"])
    return kinds


def parse_value(raw: str, schema: dict[str, Any] | None = None, node: str | None = None,
                name: str | None = None) -> Any:
    """VALUE as JSON, else as text; for a string param, anything but a JSON string is text.

    So ``prompt.text=123`` sets the text "123", ``prompt.text='"quoted"'`` the text "quoted",
    and ``gen.seed=123`` the number 123. ``null`` clears an optional string param. JSON
    nesting deeper than a graph file allows is a GraphError naming ``node`` and ``name``.
    """
    kinds = _schema_types(schema)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    except RecursionError:
        value = _TOO_DEEP
    if "string" in kinds and not isinstance(value, str):
        if value is _TOO_DEEP:
            return raw
        if value is None and "null" in kinds:
            return None
        return raw
    if value is _TOO_DEEP or _depth(value) > MAX_VALUE_DEPTH:
        raise GraphError([problem("override", f"the value nests deeper than {MAX_VALUE_DEPTH} "
                                  "levels of lists or objects", node, name)])
    return value
