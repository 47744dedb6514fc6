"""End to end in headless Chromium: open an example, edit on the canvas and inspector, run.

Needs Debian's chromium at /usr/bin/chromium (skipped without it) and the PyPI playwright.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from tiny_fixture import shared_tiny_root

from graphkit.api import Graph
from graphkit.editor.files import load_session
from graphkit.editor.launch import free_port
from graphkit.editor.session import AUTOSAVE_NAME
from graphkit.graph import GraphDoc, doc_from_raw, dumps_doc

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXAMPLE = "sdxl_turbo.json"
AGRAPH = "iframe[title='streamlit_agraph.agraph']"
PICKER = "iframe[title='streamlit_image_coordinates.streamlit_image_coordinates']"

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


@dataclass
class Editor:
    """A running editor: its address and workspace folder."""

    url: str
    workspace: Path


WIDE = (640, 480)  # an input larger than the point picker shows it


@pytest.fixture(scope="module")
def editor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Editor]:
    """``graphkit edit`` on a free local port, tiny models, a temp workspace (one per module)."""
    root = tmp_path_factory.mktemp("editor")
    ws = root / "ws"
    (ws / "inputs").mkdir(parents=True)
    wide = PILImage.linear_gradient("L").resize(WIDE).convert("RGB")
    wide.save(ws / "inputs" / "wide.png")
    port = free_port()
    env = dict(os.environ, GRAPHKIT_TINY_DIR=str(shared_tiny_root(tmp_path_factory)))
    log_path = root / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphkit.editor.launch", "--port", str(port), "--workspace",
         str(ws), "--models", "tiny"], env=env, stdout=log, stderr=subprocess.STDOUT)
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
                pytest.fail(f"editor did not start: {log_path.read_text()}")
            time.sleep(0.2)
        yield Editor(url, ws)
    finally:
        proc.terminate()  # the launcher stops the Streamlit server it started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module; each test gets its own page (a new session)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, editor: Editor, tmp_path: Path) -> Iterator[Any]:
    """A fresh browser session on the editor, ready to use; a screenshot is kept at the end."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1500, "height": 1100},
                                  accept_downloads=True)
    page = context.new_page()
    try:
        started = time.perf_counter()
        page.goto(editor.url)
        expect(page.get_by_role("button", name="Run", exact=True)).to_be_enabled(timeout=30000)
        print(f"\neditor interactive {time.perf_counter() - started:.2f} s after goto")
        yield page
        shot = tmp_path / "editor.png"
        page.set_viewport_size({"width": 1500, "height": 2200})  # the app scrolls inside
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot {shot}")
    finally:
        context.close()


def _pick(page, label: str, option: str) -> None:  # noqa: ANN001
    """Choose ``option`` in the Streamlit select labelled ``label``."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def _click_node(page, node_id: str) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    frame_el = page.locator(AGRAPH)
    expect(frame_el).to_have_count(1)  # a canvas being replaced is gone
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


def test_open_select_add_connect_edit_run(page: Any) -> None:
    from playwright.sync_api import expect

    run = page.get_by_role("button", name="Run", exact=True)
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


def _autosaved(editor: Editor) -> GraphDoc:
    opened = load_session(editor.workspace / AUTOSAVE_NAME)
    assert opened is not None
    return opened.doc


def _wait_saved(editor: Editor, check: Callable[[GraphDoc], bool], what: str) -> GraphDoc:
    """The autosaved graph once ``check`` holds for it (the app writes it after each run)."""
    deadline = time.monotonic() + 15
    while True:
        doc = _autosaved(editor)
        if check(doc):
            return doc
        assert time.monotonic() < deadline, f"autosave never showed {what}: {dumps_doc(doc)}"
        time.sleep(0.1)


def test_sam_points_picked_on_a_scaled_image_then_run(page: Any, editor: Editor) -> None:
    from playwright.sync_api import expect

    _pick(page, "Open an example", "sam_inpaint.json")
    page.get_by_role("heading", name=re.compile("SAM mask")).wait_for()
    _pick(page, "Node", "photo  (image.load)")
    _inspecting(page, "photo")
    path = page.get_by_role("textbox", name="path *", exact=True)
    path.fill("wide.png")  # 640x480, from the workspace's inputs folder
    path.press("Enter")
    _wait_saved(editor, lambda d: d.nodes["photo"].params["path"] == "wide.png", "wide.png")

    _click_node(page, "mask")
    _inspecting(page, "mask")
    page.get_by_role("button", name="Load input image").click()
    before = [[128, 150, 1], [20, 20, 0]]
    expect(page.get_by_text(f"{len(before)} points (green")).to_be_visible(timeout=30000)
    picture = page.frame_locator(PICKER).locator("img#image")
    expect(picture).to_be_visible()
    box = picture.bounding_box()
    shown_w, shown_h = box["width"], box["height"]
    assert shown_w < WIDE[0] - 100 and abs(shown_h / shown_w - 0.75) < 0.01, box  # scaled
    ratio = WIDE[0] / shown_w  # image pixels per display pixel

    picture.click(position={"x": shown_w / 2, "y": shown_h / 2})  # (320, 240) in the image
    doc = _wait_saved(editor, lambda d: len(d.nodes["mask"].params["points"]) == 3, "a point")
    expect(page.get_by_text("3 points (green")).to_be_visible()
    page.get_by_text("Background points", exact=True).click()
    expect(page.get_by_role("switch", name="Background points")).to_be_checked()
    picture = page.frame_locator(PICKER).locator("img#image")  # a new picker per point
    expect(picture).to_be_visible()
    picture.click(position={"x": shown_w / 8, "y": shown_h / 8})  # (80, 60) in the image
    doc = _wait_saved(editor, lambda d: len(d.nodes["mask"].params["points"]) == 4, "a point")
    points = doc.nodes["mask"].params["points"]
    assert points[:2] == before
    for (x, y, label), want in zip(points[2:], [(320, 240, 1), (80, 60, 0)], strict=True):
        assert label == want[2]
        assert abs(x - want[0]) <= ratio + 1 and abs(y - want[1]) <= ratio + 1, points
    shown = page.get_by_role("textbox", name="points", exact=True)  # the inspector's field
    expect(shown).to_have_value(json.dumps(points))
    expect(page.get_by_text("4 points (green")).to_be_visible()

    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text(re.compile(r"^done: 7 ran, 1 cached"))).to_be_visible(
        timeout=120000)  # the photo was loaded for the picker
    expect(page.get_by_role("switch", name="Background points")).to_be_checked()  # kept
    mask = page.locator("[data-testid=stImage]").filter(
        has_text=re.compile(r"^mask: mask 640x480, [\d.]+% covered$"))
    expect(mask.locator("img")).to_be_visible()


def test_cancel_a_long_run(page: Any, editor: Editor) -> None:
    from playwright.sync_api import expect

    _pick(page, "Open an example", EXAMPLE)
    page.get_by_role("heading", name=re.compile("SDXL-Turbo")).wait_for()
    _pick(page, "Node", "gen  (sdxl.text2image)")
    _inspecting(page, "gen")
    page.get_by_role("slider", name="steps").press("End")  # the most: 50
    for side in ("width", "height"):
        field = page.get_by_role("spinbutton", name=side, exact=True)
        field.fill("1024")
        field.press("Enter")
    doc = _wait_saved(editor, lambda d: d.nodes["gen"].params.get("height") == 1024, "1024")
    assert doc.nodes["gen"].params["steps"] == 50 and doc.nodes["gen"].params["width"] == 1024

    out = editor.workspace / "out"
    before = set(out.rglob("*")) if out.exists() else set()
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text(re.compile(r"running step \d+/50"))).to_be_visible(timeout=30000)
    cancel = page.get_by_role("button", name="Cancel", exact=True)
    cancel.click()
    clicked = time.perf_counter()
    status = page.get_by_text(re.compile(r"^cancelled: "))
    expect(status).to_be_visible(timeout=30000)
    print(f"\ncancelled {time.perf_counter() - clicked:.2f} s after the click")
    stopped = page.locator("[data-testid=stMarkdownContainer]").filter(
        has_text=re.compile(r"gen\s*cancelled at step \d+/50$"))
    expect(stopped).to_be_visible()  # not left "running"
    expect(page.locator("[data-testid=stProgress]")).to_have_count(0)
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_enabled()
    expect(cancel).to_be_disabled()
    after = set(out.rglob("*")) if out.exists() else set()
    assert after == before, sorted(map(str, after - before))


def test_download_is_the_edited_graph(page: Any, editor: Editor) -> None:
    _pick(page, "Open an example", EXAMPLE)
    page.get_by_role("heading", name=re.compile("SDXL-Turbo")).wait_for()
    name = page.get_by_role("textbox", name="Name", exact=True)
    name.fill("my lighthouse")
    name.press("Enter")
    page.get_by_role("heading", name="my lighthouse").wait_for()
    _pick(page, "Node", "prompt  (text.prompt)")
    text = page.get_by_role("textbox", name="text", exact=True)
    text.fill("a blue boat")
    text.press("Control+Enter")
    doc = _wait_saved(editor, lambda d: d.nodes["prompt"].params["text"] == "a blue boat",
                      "the prompt")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download graph JSON").click()
    download = info.value
    assert download.suggested_filename == "my_lighthouse.json"
    body = Path(download.path()).read_text(encoding="utf-8")
    # The edited graph's deterministic JSON, with each node's type version and pack filled in.
    assert body == Graph(doc, editor.workspace).dumps()
    assert doc.name == "my lighthouse" and '"text": "a blue boat"' in body
    loaded = doc_from_raw(json.loads(body))
    assert {k: v.params for k, v in loaded.nodes.items()} == {
        k: v.params for k, v in doc.nodes.items()}
