"""Engine overhead on a 1,000-node graph of trivial nodes, side by side in one run.

Prints, for each figure, the measured value, the target, and their ratio (below 1 meets it):
  - validate + plan of a 1,000-node graph (target 50 ms)
  - scheduler overhead per executed node: a full run minus a plain loop calling the same
    node functions in the same order (target 50 us)
  - fully cached re-run, per node (target 20 us)
and the ratio of a full run to the plain loop. Run: python bench/bench_engine.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from graphkit.context import Sandbox
from graphkit.graph import GraphDoc, NodeEntry
from graphkit.registry import Registry, node
from graphkit.scheduler import Scheduler, plan
from graphkit.types import Port
from graphkit.validate import check

REG = Registry()


@node("bench.source", into=REG)
def source(value: int = 1) -> Port(int):
    """A constant."""
    return value


@node("bench.add", into=REG)
def add(a: Port(int), b: Port(int) | None = None, k: int = 1) -> Port(int):
    """a + b + k."""
    return a + (b or 0) + k


@node("bench.sink", into=REG, output_node=True)
def sink(a: Port(int)) -> Port(int):
    """The output."""
    return a


def build(n: int) -> GraphDoc:
    """A chain with skip links: node i reads i-1 and i//2."""
    nodes = {"n0": NodeEntry(type="bench.source")}
    for i in range(1, n - 1):
        inputs = {"a": f"n{i - 1}.int"}
        if i > 2:
            inputs["b"] = f"n{i // 2}.int"
        nodes[f"n{i}"] = NodeEntry(type="bench.add", params={"k": i % 7}, inputs=inputs)
    nodes[f"n{n - 1}"] = NodeEntry(type="bench.sink", inputs={"a": f"n{n - 2}.int"})
    return GraphDoc(nodes=nodes)


def direct_loop(checked) -> float:  # noqa: ANN001
    """The same node functions called in the same order, values in a dict: no engine."""
    t0 = time.perf_counter()
    values: dict[str, int] = {}
    for nid in checked.order:
        rn = checked.nodes[nid]
        kwargs = dict(rn.params)
        for port, (src, _p) in rn.links.items():
            kwargs[port] = values[src]
        values[nid] = rn.spec.func(**kwargs)
    return time.perf_counter() - t0


def median_time(fn, repeat: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    n, repeat = args.nodes, args.repeat
    doc = build(n)
    sandbox = Sandbox([Path.cwd()], None)
    device = torch.device("cpu")

    validate_s = median_time(lambda: plan(check(doc, REG)), repeat)
    checked = check(doc, REG)
    assert checked.ok, checked.problems[:3]

    full, loop, cached = [], [], []
    for _ in range(repeat):  # interleaved, so machine noise hits each side alike
        sched = Scheduler()
        t0 = time.perf_counter()
        result = sched.run(checked, device=device, sandbox=sandbox)
        full.append(time.perf_counter() - t0)
        assert len(result.executed) == n, result.failed
        loop.append(direct_loop(checked))
        t0 = time.perf_counter()
        again = sched.run(checked, device=device, sandbox=sandbox)
        cached.append(time.perf_counter() - t0)
        assert len(again.cached) == n and not again.executed
    full_s, loop_s, cached_s = map(statistics.median, (full, loop, cached))
    overhead_us = (full_s - loop_s) / n * 1e6
    cached_us = cached_s / n * 1e6

    rows = [
        ("validate + plan, ms", validate_s * 1e3, 50.0),
        ("scheduler overhead per executed node, us", overhead_us, 50.0),
        ("fully cached re-run per node, us", cached_us, 20.0),
    ]
    print(f"graph: {n} nodes, medians of {repeat} interleaved runs")
    print(f"{'figure':<44}{'measured':>10}{'target':>10}{'ratio':>8}")
    for name, value, target in rows:
        print(f"{name:<44}{value:>10.2f}{target:>10.1f}{value / target:>8.2f}")
    print(f"full run / plain loop of the same functions: {full_s / loop_s:.1f}x "
          f"({full_s * 1e3:.2f} ms vs {loop_s * 1e3:.2f} ms)")


if __name__ == "__main__":
    main()
