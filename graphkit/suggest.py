"""'Did you mean ...?' for a mistyped name: the closest of the names that exist."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, options: Iterable[str]) -> str | None:
    """The option most like ``word`` (difflib ratio of at least 0.6), or None."""
    matches = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """``"did you mean mask.grow?"`` for ``"mask.gorw"``, or "" when nothing is close."""
    match = closest(word, options)
    return f"did you mean {match}?" if match is not None and match != word else ""


def with_hint(message: str, word: str, options: Iterable[str]) -> str:
    """``message`` followed by ``"; did you mean X?"`` when a close name exists."""
    hint = did_you_mean(word, options)
    return f"{message}; {hint}" if hint else message
