"""Sweeps: one graph over many prompts, seeds or params, locally or on a Ray cluster.

See :mod:`graphkit.sweep.spec` (what a SPEC may be), :mod:`graphkit.sweep.manifest` (the
``sweep.jsonl`` rows), :mod:`graphkit.sweep.job` (a sweep in a background thread).
"""

from graphkit.sweep.events import SweepFinished, SweepStarted, VariationFinished
from graphkit.sweep.job import SweepJob, SweepProgress
from graphkit.sweep.run import SweepOutcome, execute, prepare, run_sweep
from graphkit.sweep.spec import Axis, Sweep, Variation, build_sweep

__all__ = [
    "Axis", "Sweep", "SweepFinished", "SweepJob", "SweepOutcome", "SweepProgress",
    "SweepStarted", "Variation", "VariationFinished", "build_sweep", "execute", "prepare",
    "run_sweep",
]
