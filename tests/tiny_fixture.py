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


@pytest.fixture(scope="module")
def tiny_manager(tmp_path_factory: pytest.TempPathFactory):
    """The process model manager on the tiny profile, for one test module."""
    from graphkit import models as gm

    root = shared_tiny_root(tmp_path_factory)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRAPHKIT_MODELS", "tiny")
        mp.setenv("GRAPHKIT_TINY_DIR", str(root))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield gm.configure()
    gm.configure()
