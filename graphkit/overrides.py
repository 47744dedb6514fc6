"""``NODE.PARAM=VALUE`` overrides (``--set``): split them and turn VALUE into a param value."""

from __future__ import annotations

import json
from typing import Any

from graphkit.errors import GraphError, problem


def split_override(item: str) -> tuple[str, str, str]:
    """``"gen.seed=3"`` -> ``("gen", "seed", "3")``; GraphError when it is not that shape."""
    target, sep, raw = item.partition("=")
    node_id, dot, name = target.partition(".")
    if not sep or not dot or not node_id or not name:
        raise GraphError([problem("override", f"override '{item}' must look like "
                                  "NODE.PARAM=VALUE")])
    return node_id, name, raw


def _schema_types(schema: dict[str, Any] | None) -> set[str]:
    if not schema:
        return set()
    kinds = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for option in schema.get("anyOf", []):
        if isinstance(option, dict) and isinstance(option.get("type"), str):
            kinds.add(option["type"])
    return kinds


def parse_value(raw: str, schema: dict[str, Any] | None = None) -> Any:
    """VALUE as JSON, else as text; for a string param, anything but a JSON string is text.

    So ``prompt.text=123`` sets the text "123", ``prompt.text='"quoted"'`` the text "quoted",
    and ``gen.seed=123`` the number 123. ``null`` clears an optional string param.
    """
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    kinds = _schema_types(schema)
    if "string" in kinds and not isinstance(value, str):
        if value is None and "null" in kinds:
            return None
        return raw
    return value
