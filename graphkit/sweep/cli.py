"""``graphkit run GRAPH --sweep NODE.PARAM=SPEC ... --out DIR``: options, progress, exit code."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any, TextIO

from graphkit.sweep.events import SweepFinished, SweepStarted, VariationFinished
from graphkit.sweep.local import DEFAULT_BATCH

_SWEEP_ONLY = {"zip": "--zip", "batch": "--batch", "on": "--on", "ray_address": "--ray-address",
               "workers": "--workers"}


def add_sweep_options(run: argparse.ArgumentParser) -> None:
    """The sweep options of ``graphkit run``."""
    group = run.add_argument_group("sweeps", "run the graph once per variation into "
                                   "OUT/00000, OUT/00001, ... and record each in "
                                   "OUT/sweep.jsonl; a re-run skips finished variations")
    group.add_argument("--sweep", dest="sweeps", action="append", default=[],
                       metavar="NODE.PARAM=SPEC",
                       help="values for one param: a,b,c (each as --set parses it), A..B "
                       "(integers, inclusive) or @FILE (one value per line); several "
                       "--sweep make every combination")
    group.add_argument("--zip", action="store_true", default=None,
                       help="pair the --sweep values instead (equal lengths)")
    group.add_argument("--batch", type=int, default=None, metavar="N",
                       help="variations per diffusion call when only seed or prompt "
                       f"differ (default: {DEFAULT_BATCH['cuda']} on CUDA, "
                       f"{DEFAULT_BATCH['mps']} on MPS, {DEFAULT_BATCH['cpu']} on the CPU)")
    group.add_argument("--on", choices=["local", "ray"], default=None,
                       help="local (default): this process; ray: a Ray cluster "
                       "(pip install 'graphkit[ray]')")
    group.add_argument("--ray-address", default=None, metavar="ADDR",
                       help="Ray cluster to use (default RAY_ADDRESS, else a local cluster "
                       "started for the run)")
    group.add_argument("--workers", type=int, default=None, metavar="N",
                       help="Ray worker actors (default: one per GPU, else 1)")


def sweep_requested(args: argparse.Namespace) -> bool:
    """True with --sweep; a sweep-only option without --sweep is a CliError."""
    if args.sweeps:
        return True
    for attr, flag in _SWEEP_ONLY.items():
        if getattr(args, attr, None) is not None:
            from graphkit.cli import CliError

            raise CliError(f"{flag} needs --sweep NODE.PARAM=SPEC")
    return False


def cmd_sweep(args: argparse.Namespace, graph: Any) -> int:
    """Run the sweep: exit 0 when every variation is done, 1 if any failed, 130 on Ctrl-C."""
    from graphkit.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, CliError, _cancel_on_first
    from graphkit.context import RunControl
    from graphkit.sweep.run import execute, prepare

    if args.workers is not None and args.workers < 1:
        raise CliError("--workers must be 1 or more")
    if args.on != "ray" and (args.workers is not None or args.ray_address is not None):
        raise CliError("--workers and --ray-address need --on ray")
    plan = prepare(graph, args.sweeps, args.out, zip=bool(args.zip), on=args.on or "local",
                   batch=args.batch, device=args.device)
    control = RunControl()
    printer = SweepPrinter(sys.stderr)
    previous = signal.signal(signal.SIGINT, _cancel_on_first(control))
    try:
        outcome = execute(plan, inputs=args.inputs, control=control, listener=printer,
                          workers=args.workers, ray_address=args.ray_address)
    finally:
        signal.signal(signal.SIGINT, previous)
    if args.json:
        print(json.dumps({"ok": not outcome.cancelled and not outcome.count("failed"),
                          "cancelled": outcome.cancelled, "rows": outcome.rows}, indent=2))
    else:
        print(f"{outcome.total} variations: {outcome.count('done')} done, "
              f"{outcome.count('failed')} failed, {outcome.count('skipped')} skipped "
              f"(done earlier) in {outcome.seconds:.3f} s; rows in {plan.manifest.path}")
    if outcome.cancelled:
        print(f"cancelled: {len(outcome.rows)} finished variations are kept in "
              f"{plan.manifest.path}; run the same command again to do the rest",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if outcome.count("failed") else EXIT_OK


class SweepPrinter:
    """One line per variation as it finishes, on stderr."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, event: Any) -> None:
        if isinstance(event, SweepStarted):
            left = event.total - event.skipped
            self._line(f"sweep: {event.total} variations ({event.skipped} done earlier, "
                       f"{left} to run) on {event.on}, batch {event.batch}, into {event.out}")
        elif isinstance(event, VariationFinished):
            row = event.row
            what = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}"
                             for k, v in row["set"].items())
            if len(what) > 100:
                what = what[:97] + "..."
            status = row["status"]
            if status == "done":
                status = f"done in {row['seconds']:.3f} s"
            elif status == "failed":
                status = f"FAILED: {row.get('error', '')}"
            self._line(f"[{event.finished}/{event.total}] #{row['index']} {what}: {status}")
        elif isinstance(event, SweepFinished) and event.cancelled:
            self._line("sweep cancelled")

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
