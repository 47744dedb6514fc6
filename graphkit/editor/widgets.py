"""Which widget edits a param, read from its JSON schema (no Streamlit here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SLIDER_MAX_STEPS = 1024
PROMPT_NAMES = {"text", "prompt", "negative", "negative_prompt"}


@dataclass
class WidgetPlan:
    """The widget for one param: its kind and bounds or choices."""

    kind: str  # select | slider | number | seed | checkbox | textarea | text | model | json
    numeric: str = ""  # "int" or "float" for numbers
    minimum: float | None = None
    maximum: float | None = None
    options: list[Any] = field(default_factory=list)
    help: str = ""


def _main_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The non-null branch of an optional param's schema, and whether null is allowed."""
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            rest = [b for b in branches if b.get("type") != "null"]
            if len(rest) == 1:
                return {**schema, **rest[0]}, len(rest) < len(branches)
    return schema, False


def plan_widget(name: str, schema: dict[str, Any]) -> WidgetPlan:
    """Choose the widget for a param named ``name`` with JSON schema ``schema``."""
    main, _nullable = _main_schema(schema)
    help_text = schema.get("description", "")
    kind = main.get("type")
    if "enum" in main or "const" in main:
        return WidgetPlan("select", options=list(main.get("enum", [main.get("const")])),
                          help=help_text)
    if kind == "boolean":
        return WidgetPlan("checkbox", help=help_text)
    if kind in ("integer", "number"):
        numeric = "int" if kind == "integer" else "float"
        lo = main.get("minimum", _exclusive(main, "exclusiveMinimum", numeric, 1))
        hi = main.get("maximum", _exclusive(main, "exclusiveMaximum", numeric, -1))
        if name == "seed" or name.endswith("_seed"):
            return WidgetPlan("seed", "int", lo, hi, help=help_text)
        bounded = lo is not None and hi is not None
        if bounded and (numeric == "float" or hi - lo <= SLIDER_MAX_STEPS):
            return WidgetPlan("slider", numeric, lo, hi, help=help_text)
        return WidgetPlan("number", numeric, lo, hi, help=help_text)
    if kind == "string":
        if name == "model" or name.endswith("_model"):
            return WidgetPlan("model", help=help_text or "Hub id (org/name) or a local path.")
        if name in PROMPT_NAMES or main.get("maxLength", 0) > 1024:
            return WidgetPlan("textarea", help=help_text)
        return WidgetPlan("text", help=help_text)
    return WidgetPlan("json", help=help_text or "A JSON value.")


def _exclusive(main: dict[str, Any], key: str, numeric: str, sign: int) -> float | None:
    if key not in main:
        return None
    step = 1 if numeric == "int" else 1e-6
    return main[key] + sign * step


def coerce_number(value: Any, numeric: str) -> Any:
    """A widget's number as the param's type (ints stay ints: params are strict)."""
    if value is None:
        return None
    return int(value) if numeric == "int" else float(value)
