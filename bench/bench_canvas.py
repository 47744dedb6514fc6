"""The editor canvas in headless Chromium, 8-node and 200-node graphs side by side in one run.

For each size, measured in the browser (interleaved: 8, 200, 8, 200, ...):
  - load: page.goto -> the canvas interactive (every node drawn, the view set)
  - drop: mouse released on an input port -> the new link in the tab's autosave on disk
    (Python applied the edit, validated and saved it)
  - drawn: the same release -> the canvas drawn again from Python's new state
and the ratio 200/8 of each median. The graphs are chains of image nodes without saved
positions (the layered layout places them); the drop links n0's output into n2's input,
replacing the link from n1.

Needs /usr/bin/chromium and the playwright package (as the browser tests).
Run: python bench/bench_canvas.py [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from editor_server import (  # noqa: E402 - after the path above
    READY,
    autosaved,
    centre,
    editor_server,
    launch_chromium,
    port,
)

SIZES = (8, 200)


def chain(n: int) -> dict[str, Any]:
    """image.load -> (n - 2) x image.resize -> image.save, no positions."""
    nodes: dict[str, Any] = {"n0": {"type": "image.load", "params": {"path": "in.png"}}}
    for i in range(1, n - 1):
        nodes[f"n{i}"] = {"type": "image.resize", "params": {"width": 64 + i, "height": 64},
                          "inputs": {"image": f"n{i - 1}.image"}}
    nodes[f"n{n - 1}"] = {"type": "image.save", "inputs": {"image": f"n{n - 2}.image"}}
    return {"format": "graphkit/1", "name": f"chain of {n}", "nodes": nodes}


def measure(browser: Any, url: str, workspace: Path, n: int) -> dict[str, float]:
    """One page load and one drop on a port, in a new tab."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    try:
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector(f"{READY}[data-nodes='{n}']", timeout=120_000)
        page.wait_for_function("n => document.querySelectorAll('.gk-node').length === n", arg=n)
        loaded = time.perf_counter() - start

        rev = page.locator("[data-canvas]").get_attribute("data-rev")
        src, dst = centre(port(page, "n0", "image", "out")), centre(port(page, "n2", "image",
                                                                          "in"))
        page.mouse.move(*src)
        page.mouse.down()
        page.mouse.move((src[0] + dst[0]) / 2, (src[1] + dst[1]) / 2 + 40, steps=6)
        page.mouse.move(*dst, steps=6)
        dropped = time.perf_counter()
        page.mouse.up()
        saved = drawn = None
        deadline = dropped + 60
        while saved is None or drawn is None:
            now = time.perf_counter()
            assert now < deadline, f"the link never arrived ({n} nodes)"
            if saved is None:
                graph = autosaved(workspace, page)
                if graph and graph["nodes"]["n2"].get("inputs") == {"image": "n0.image"}:
                    saved = now - dropped
            if drawn is None and page.locator("[data-canvas]").get_attribute("data-rev") != rev:
                drawn = time.perf_counter() - dropped
            time.sleep(0.002)
        return {"load": loaded, "drop": saved, "drawn": drawn}
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="measurements per size (5)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        servers, spaces = {}, {}
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                import contextlib

                with contextlib.ExitStack() as stack:
                    for n in SIZES:
                        ws = root / f"ws{n}"
                        ws.mkdir()
                        graph = ws / f"chain{n}.json"
                        graph.write_text(json.dumps(chain(n)))
                        servers[n] = stack.enter_context(
                            editor_server(ws, graph, log_path=root / f"server{n}.log"))
                        spaces[n] = ws
                    for n in SIZES:  # warm both servers (imports, first script run)
                        measure(browser, servers[n], spaces[n], n)
                    results: dict[int, list[dict[str, float]]] = {n: [] for n in SIZES}
                    for _ in range(args.reps):
                        for n in SIZES:
                            results[n].append(measure(browser, servers[n], spaces[n], n))
            finally:
                browser.close()
    print(f"editor canvas in headless Chromium, median of {args.reps} (min), interleaved")
    print(f"{'':28}{'8 nodes':>16}{'200 nodes':>18}{'ratio':>8}")
    labels = {"load": "page load -> interactive", "drop": "drop on port -> saved link",
              "drawn": "drop on port -> redrawn"}
    for key, label in labels.items():
        med = {n: statistics.median(r[key] for r in results[n]) for n in SIZES}
        low = {n: min(r[key] for r in results[n]) for n in SIZES}
        cells = [f"{med[n]:7.3f} s ({low[n]:.3f})" for n in SIZES]
        print(f"{label:28}{cells[0]:>16}{cells[1]:>18}{med[200] / med[8]:>7.1f}x")


if __name__ == "__main__":
    main()
