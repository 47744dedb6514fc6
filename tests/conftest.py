"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphkit.scheduler import Scheduler

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"


@pytest.fixture
def scheduler() -> Scheduler:
    """A scheduler with its own empty cache, so tests do not share cached outputs."""
    return Scheduler()


@pytest.fixture
def graphs_dir() -> Path:
    return GRAPHS
