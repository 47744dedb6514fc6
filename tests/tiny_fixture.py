"""One set of tiny models per test session, shared by the test modules that need it."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphkit.tinymodels import write_tiny_models

_ROOT: Path | None = None


def shared_tiny_root(factory: pytest.TempPathFactory) -> Path:
    """Write the tiny models once per session and return their root folder."""
    global _ROOT
    if _ROOT is None:
        root = factory.mktemp("tiny-models")
        write_tiny_models(root)
        _ROOT = root
    return _ROOT
