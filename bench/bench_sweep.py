"""A 16-seed sweep: graphkit vs hand-written diffusers, and local vs Ray workers.

    .venv/bin/python bench/bench_sweep.py                # tiny models, 5 interleaved rounds
    .venv/bin/python bench/bench_sweep.py --runs 9 --size 256
    .venv/bin/python bench/bench_sweep.py --no-ray

Every side makes the same 16 SDXL-Turbo images (sdxl_turbo.json, seeds 0..15) and writes
them as PNG files:

- loop: diffusers by hand, one pipeline call per seed;
- hand-batched: diffusers by hand, one call with a list of 16 generators;
- graphkit local, batch 16 (and at the device's default batch);
- graphkit on a local Ray cluster with 1 and 2 worker actors (each Ray run starts its
  actors and loads the models in them: that start-up is part of its time).

Rounds are interleaved (every side once per round, in turn) and medians compared; the
ratios are to the hand-batched side. graphkit sweeps go into a fresh folder each time, so
nothing is skipped, and use a fresh output cache.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
GRAPH = ROOT / "graphs" / "sdxl_turbo.json"
SEEDS = 16


def _save_png(pixels: torch.Tensor, path: Path) -> None:
    from graphkit.imaging import pixels_to_pil

    pixels_to_pil(pixels.clamp(0, 1))[0].save(path)


def build_sides(size: int, tmp: Path, ray_workers: list[int]) -> dict[str, Callable[[], None]]:
    import graphkit
    from graphkit.models import get_manager
    from graphkit.scheduler import Scheduler
    from graphkit.sweep.local import default_batch

    graph = graphkit.load(GRAPH)
    graph.apply_overrides([f"gen.width={size}", f"gen.height={size}"])
    p = graph.doc.nodes["gen"].params
    text = graph.doc.nodes["prompt"].params["text"]
    pipe = get_manager().sdxl(p["model"], "text2image")
    call = {"num_inference_steps": p["steps"], "guidance_scale": p["guidance"],
            "width": size, "height": size, "output_type": "pt"}
    counter = iter(range(10**9))

    def fresh() -> Path:
        folder = tmp / f"run{next(counter)}"
        folder.mkdir()
        return folder

    def loop() -> None:
        out = fresh()
        for seed in range(SEEDS):
            image = pipe(text, generator=torch.Generator().manual_seed(seed), **call).images
            _save_png(image, out / f"{seed}.png")

    def hand_batched() -> None:
        out = fresh()
        images = pipe([text] * SEEDS, generator=[torch.Generator().manual_seed(s)
                                                  for s in range(SEEDS)], **call).images
        for seed in range(SEEDS):
            _save_png(images[seed:seed + 1], out / f"{seed}.png")

    def graphkit_sweep(batch: int, on: str = "local", workers: int | None = None
                       ) -> Callable[[], None]:
        def run() -> None:
            options = {"workers": workers} if on == "ray" else {"scheduler": Scheduler()}
            rows = graph.sweep({"gen.seed": f"0..{SEEDS - 1}"}, out=fresh(), batch=batch,
                               on=on, **options)
            assert [r["status"] for r in rows] == ["done"] * SEEDS, rows

        return run

    device_batch = default_batch(get_manager().device)
    sides = {
        "diffusers loop (1 call per seed)": loop,
        "diffusers hand-batched (1 call)": hand_batched,
        "graphkit local, batch 16": graphkit_sweep(16),
    }
    if device_batch != 16:
        sides[f"graphkit local, default batch {device_batch}"] = graphkit_sweep(device_batch)
    for n in ray_workers:
        sides[f"graphkit Ray, {n} worker{'s' * (n > 1)}, batch {SEEDS // n}"] = \
            graphkit_sweep(SEEDS // n, "ray", n)
    return sides


class PipelineClock:
    """Adds up the seconds spent inside diffusers pipeline calls of this process."""

    def __init__(self) -> None:
        from graphkit.models import get_manager

        self.cls = type(get_manager().sdxl("stabilityai/sdxl-turbo", "text2image"))
        self.original = self.cls.__call__
        self.seconds = 0.0
        clock = self

        def timed(pipe: object, *args: object, **kwargs: object) -> object:
            t0 = time.perf_counter()
            try:
                return clock.original(pipe, *args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - t0

        self.cls.__call__ = timed


def measure(sides: dict[str, Callable[[], None]], runs: int
            ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds of each side, and of each side outside pipeline calls (local sides only),
    one warm-up each, then ``runs`` interleaved rounds."""
    for fn in sides.values():
        fn()
    clock = PipelineClock()
    times: dict[str, list[float]] = {name: [] for name in sides}
    outside: dict[str, list[float]] = {name: [] for name in sides}
    for round_no in range(1, runs + 1):
        print(f"round {round_no}/{runs}", file=sys.stderr, flush=True)
        for name, fn in sides.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            clock.seconds = 0.0
            t0 = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
            outside[name].append(times[name][-1] - clock.seconds)
    return times, outside


def report(times: dict[str, list[float]], outside: dict[str, list[float]]) -> None:
    base = statistics.median(times["diffusers hand-batched (1 call)"])
    print(f"{'side':<44} {'median s':>9} {'images/s':>9} {'vs hand-batched':>16} "
          f"{'outside the pipeline, ms/image':>31}")
    for name, values in times.items():
        median = statistics.median(values)
        extra = "(other processes)" if "Ray" in name else \
            f"{statistics.median(outside[name]) / SEEDS * 1000:.1f}"
        print(f"{name:<44} {median:9.3f} {SEEDS / median:9.2f} {base / median:15.3f}x "
              f"{extra:>31}")
    local = statistics.median(times["graphkit local, batch 16"])
    verdict = "ok" if base / local >= 0.95 else "BELOW TARGET"
    paired = statistics.median(h / g for h, g in zip(times["diffusers hand-batched (1 call)"],
                                                     times["graphkit local, batch 16"],
                                                     strict=True))
    print(f"graphkit local batch 16 / hand-batched throughput: {base / local:.3f} "
          f"(target >= 0.95: {verdict}); median of the per-round ratios {paired:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray sides")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(ROOT))
    from graphkit.models import configure
    from graphkit.tinymodels import write_tiny_models

    tiny = Path(os.environ.get("GRAPHKIT_TINY_DIR") or Path(tempfile.gettempdir())
                / "graphkit-bench-tiny")
    os.environ.update(GRAPHKIT_MODELS="tiny", GRAPHKIT_TINY_DIR=str(tiny), HF_HUB_OFFLINE="1")
    write_tiny_models(tiny)
    manager = configure()
    ray_workers: list[int] = []
    if not args.no_ray:
        try:
            import ray

            ray.init(num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False,
                     logging_level="warning")
            ray_workers = [1, 2]
        except ImportError:
            print("Ray is not installed (pip install 'graphkit[ray]'): no Ray sides")
    print(f"{SEEDS} seeds of sdxl_turbo.json at {args.size}x{args.size} on tiny models; "
          f"device {manager.device}, torch threads {torch.get_num_threads()}, "
          f"{args.runs} interleaved rounds after one warm-up")
    with tempfile.TemporaryDirectory() as tmp:
        times, outside = measure(build_sides(args.size, Path(tmp), ray_workers), args.runs)
    report(times, outside)
    return 0


if __name__ == "__main__":
    sys.exit(main())
