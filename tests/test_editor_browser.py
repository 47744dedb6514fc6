"""End to end in headless Chromium: open an example, edit on the canvas and inspector, run.

Needs Debian's chromium at /usr/bin/chromium (skipped without it) and the PyPI playwright.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_fixture import shared_tiny_root

from graphkit.editor.launch import free_port

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXAMPLE = "sdxl_turbo.json"
AGRAPH = "iframe[title='streamlit_agraph.agraph']"

# Where a node is drawn, in the canvas iframe: find vis-network through React's fiber tree.
NODE_POSITION_JS = """(id) => {
  const vis = document.querySelector('.vis-network');
  for (let el = vis; el; el = el.parentElement) {
    const k = Object.keys(el).find(k => k.startsWith('__reactFiber')
                                        || k.startsWith('__reactInternalInstance'));
    if (!k) continue;
    for (let f = el[k]; f; f = f.return) {
      for (let h = f.memoizedState; h && typeof h === 'object'; h = h.next) {
        const net = h.memoizedState;
        if (net && typeof net.getPosition === 'function') {
          const p = net.canvasToDOM(net.getPosition(id));
          return {x: p.x, y: p.y};
        }
      }
    }
  }
  return null;
}"""

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not "
                                "installed (apt-get install -y chromium)")


@pytest.fixture
def server(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``graphkit edit`` on a free local port, tiny models, a temp workspace."""
    port = free_port()
    env = dict(os.environ, GRAPHKIT_TINY_DIR=str(shared_tiny_root(tmp_path_factory)))
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphkit.editor.launch", "--port", str(port), "--workspace",
         str(tmp_path / "ws"), "--models", "tiny"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"editor did not start: {(tmp_path / 'server.log').read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()  # the launcher stops the Streamlit server it started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _pick(page, label: str, option: str) -> None:  # noqa: ANN001
    """Choose ``option`` in the Streamlit select labelled ``label``."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def _click_node(page, node_id: str) -> None:  # noqa: ANN001
    frame_el = page.locator(AGRAPH)
    page.frame_locator(AGRAPH).locator("canvas").wait_for()
    frame = frame_el.element_handle().content_frame()
    pos = None
    for _ in range(50):
        pos = frame.evaluate(NODE_POSITION_JS, node_id)
        if pos:
            break
        time.sleep(0.1)
    assert pos, "vis-network not found in the canvas iframe"
    box = frame_el.bounding_box()
    page.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])


def _inspecting(page, node_id: str) -> None:  # noqa: ANN001
    page.locator("h3", has_text=re.compile(rf"^{re.escape(node_id)}$")).wait_for(timeout=15000)


def test_open_select_add_connect_edit_run(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            started = time.perf_counter()
            page.goto(server)
            run = page.get_by_role("button", name="Run", exact=True)
            expect(run).to_be_enabled(timeout=30000)
            print(f"\neditor interactive {time.perf_counter() - started:.2f} s after goto")

            _pick(page, "Open an example", EXAMPLE)
            page.get_by_role("heading", name=re.compile("SDXL-Turbo")).wait_for()

            _click_node(page, "prompt")  # select on the canvas
            _inspecting(page, "prompt")
            text = page.get_by_role("textbox", name="text", exact=True)
            text.fill("a red fox in the snow")
            text.press("Control+Enter")

            page.get_by_role("textbox", name="Search nodes").fill("resize")
            page.get_by_role("textbox", name="Search nodes").press("Enter")
            page.get_by_role("button", name="Resize image").click()
            _inspecting(page, "resize")
            _pick(page, "image: Image", "gen.image  (Image)")
            expect(page.get_by_text("required input (Image) is not connected")).to_have_count(0)

            _pick(page, "Node", "save  (image.save)")
            _inspecting(page, "save")
            _pick(page, "image: Image", "resize.image  (Image)")

            run.click()
            status = page.get_by_text(re.compile(r"^done: \d+ ran"))
            expect(status).to_be_visible(timeout=180000)
            expect(status).to_have_text(re.compile(r"^done: 4 ran, 0 cached"))
            picture = page.locator("[data-testid=stImage]").filter(has_text="lighthouse.png")
            expect(picture.first.locator("img")).to_be_visible()

            _pick(page, "Node", "resize  (image.resize)")  # edit downstream of generation
            width = page.get_by_role("spinbutton", name="width")
            width.fill("256")
            width.press("Enter")
            expect(page.get_by_text(re.compile("edited since"))).to_be_visible()
            run.click()
            expect(page.get_by_text(re.compile(r"^done: 2 ran, 2 cached"))).to_be_visible(
                timeout=120000)
            cached = page.locator("[data-testid=stMarkdownContainer]").filter(
                has_text=re.compile(r"gen\s*cached$"))
            expect(cached).to_be_visible()
            shot = tmp_path / "editor.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot {shot}")
        finally:
            browser.close()
