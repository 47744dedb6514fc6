"""Widget callbacks that never break the page: any failure becomes one line, the graph stays."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from graphkit.errors import GraphError

F = TypeVar("F", bound=Callable[..., Any])


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def callback(action: F) -> F:
    """Wrap a callback whose first argument is the tab's Editor: a GraphError becomes its
    one-line problems, anything else one line naming the error; the document is kept."""

    @functools.wraps(action)
    def guarded(ed: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return action(ed, *args, **kwargs)
        except GraphError as exc:
            ed.fail(exc)
        except Exception as exc:  # noqa: BLE001 - shown on the page, never a traceback page
            what = action.__name__.strip("_").replace("_", " ")
            ed.notify("error", one_line(f"{what} failed: {type(exc).__name__}: {exc}"))
        return None

    return guarded  # type: ignore[return-value]
