"""A running editor and headless Chromium, shared by the browser tests and bench/bench_canvas.py.

Needs Debian's chromium at /usr/bin/chromium and the PyPI playwright package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
READY = "[data-canvas][data-ready='1']"


@contextmanager
def editor_server(workspace: Path, graph: Path | None = None, tiny_dir: Path | None = None,
                  log_path: Path | None = None, start_timeout: float = 90) -> Iterator[str]:
    """``graphkit edit [GRAPH]`` on a free local port with the tiny models; yields its URL."""
    from graphkit.editor.launch import free_port

    port = free_port()
    env = dict(os.environ)
    if tiny_dir is not None:
        env["GRAPHKIT_TINY_DIR"] = str(tiny_dir)
    command = [sys.executable, "-m", "graphkit.editor.launch", "--port", str(port),
               "--workspace", str(workspace), "--models", "tiny"]
    if graph is not None:
        command.insert(3, str(graph))
    log_path = log_path or workspace.parent / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"editor did not start: {log_path.read_text()}")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()  # the launcher stops the Streamlit server it started
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)


def open_page(browser: Any, url: str, width: int = 1500, height: int = 1000,
              timeout_ms: int = 60_000) -> tuple[Any, Any]:
    """A new browser context (a new tab of the editor) with the canvas ready."""
    context = browser.new_context(viewport={"width": width, "height": height},
                                  accept_downloads=True)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(READY, timeout=timeout_ms)
    return context, page


def tab_id(page: Any) -> str:
    """The editor tab id in the page's address."""
    deadline = time.monotonic() + 10
    while True:
        found = parse_qs(urlparse(page.url).query).get("tab")
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no tab id in {page.url}"
        time.sleep(0.05)


def autosave_path(workspace: Path, page: Any) -> Path:
    return workspace / ".graphkit-editor" / "tabs" / f"{tab_id(page)}.json"


def autosaved(workspace: Path, page: Any) -> dict[str, Any] | None:
    """The graph the tab autosaved (None before its first autosave)."""
    try:
        return json.loads(autosave_path(workspace, page).read_text())["graph"]
    except (OSError, ValueError, KeyError):
        return None


def wait_autosaved(workspace: Path, page: Any, check: Callable[[dict[str, Any]], bool],
                   what: str, timeout: float = 15) -> dict[str, Any]:
    """The tab's autosaved graph once ``check`` holds for it."""
    deadline = time.monotonic() + timeout
    while True:
        graph = autosaved(workspace, page)
        if graph is not None and check(graph):
            return graph
        assert time.monotonic() < deadline, f"the autosave never showed {what}: {graph}"
        time.sleep(0.02)


def port(page: Any, node: str, name: str, direction: str) -> Any:
    """The port element of ``node.name`` (``direction`` "in" or "out")."""
    return page.locator(f'[data-node="{node}"][data-port="{name}"][data-dir="{direction}"]')


def node(page: Any, node_id: str) -> Any:
    return page.locator(f'.gk-node[data-node="{node_id}"]')


def centre(locator: Any) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not on the page"
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(page: Any, start: tuple[float, float], end: tuple[float, float],
         steps: int = 12, before_drop: Callable[[], None] | None = None) -> None:
    """Press the left button at ``start``, move to ``end`` in steps, release."""
    page.mouse.move(*start)
    page.mouse.down()
    mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    page.mouse.move(*mid, steps=steps)
    page.mouse.move(*end, steps=steps)
    if before_drop is not None:
        before_drop()
    page.mouse.up()


def link(page: Any, src: tuple[str, str], dst: tuple[str, str], **kw: Any) -> None:
    """Drag from the output port ``src`` (node, port) onto the input port ``dst``."""
    drag(page, centre(port(page, *src, "out")), centre(port(page, *dst, "in")), **kw)


def fit_view(page: Any) -> None:
    page.locator(".react-flow__controls-fitview").click()
    time.sleep(0.4)  # the fit is animated
