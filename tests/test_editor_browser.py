"""End to end in headless Chromium: open an example, edit on the canvas and in the inspector,
run, pick SAM points, cancel, download.

Needs Debian's chromium at /usr/bin/chromium (skipped without it) and the PyPI playwright.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from editor_server import (
    CHROMIUM,
    autosaved,
    editor_server,
    fit_view,
    link,
    node,
    open_page,
    wait_autosaved,
)
from PIL import Image as PILImage
from tiny_fixture import shared_tiny_root

from graphkit.api import Graph
from graphkit.graph import doc_from_raw

EXAMPLE = "sdxl_turbo.json"
PICKER = "iframe[title='streamlit_image_coordinates.streamlit_image_coordinates']"
WIDE = (640, 480)  # an input larger than the point picker shows it

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not "
                                "installed (apt-get install -y chromium)")


class Editor:
    def __init__(self, url: str, workspace: Path) -> None:
        self.url = url
        self.workspace = workspace


@pytest.fixture(scope="module")
def editor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Editor]:
    """``graphkit edit`` on a free local port, tiny models, a temp workspace (one per module)."""
    root = tmp_path_factory.mktemp("editor")
    ws = root / "ws"
    (ws / "inputs").mkdir(parents=True)
    wide = PILImage.linear_gradient("L").resize(WIDE).convert("RGB")
    wide.save(ws / "inputs" / "wide.png")
    with editor_server(ws, None, shared_tiny_root(tmp_path_factory)) as url:
        yield Editor(url, ws)


@pytest.fixture
def page(browser: Any, editor: Editor, tmp_path: Path) -> Iterator[Any]:
    """A new tab of the editor; a screenshot is kept at the end."""
    started = time.perf_counter()
    context, page = open_page(browser, editor.url)
    print(f"\ncanvas ready {time.perf_counter() - started:.2f} s after goto")
    try:
        yield page
        shot = tmp_path / "editor.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot {shot}")
    finally:
        context.close()


def _pick(page: Any, label: str, option: str) -> None:
    """Choose ``option`` in the Streamlit select labelled ``label`` (again when a page run
    redraws the select and closes its list meanwhile)."""
    for attempt in range(3):
        page.get_by_role("combobox", name=label, exact=True).click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5000)
            return
        except Exception:  # noqa: BLE001 - the list closed under the mouse: open it again
            if attempt == 2:
                raise


def _open_example(page: Any, name: str, heading: str) -> None:
    _pick(page, "Open an example", name)
    page.get_by_role("heading", name=re.compile(heading)).wait_for()
    node(page, next(iter(json.loads((Path(__file__).parent.parent / "graphs" / name)
                                    .read_text())["nodes"]))).wait_for()
    fit_view(page)


def _inspecting(page: Any, node_id: str) -> None:
    page.locator("h3", has_text=re.compile(rf"^{re.escape(node_id)}$")).wait_for(timeout=15000)


def _select(page: Any, node_id: str) -> None:
    """Click a node on the canvas: the inspector shows it."""
    node(page, node_id).locator(".gk-title").click()
    _inspecting(page, node_id)


def test_open_select_add_connect_edit_run(page: Any, editor: Editor) -> None:
    from playwright.sync_api import expect

    run = page.get_by_role("button", name="Run", exact=True)
    _open_example(page, EXAMPLE, "SDXL-Turbo")

    _select(page, "prompt")
    text = page.get_by_role("textbox", name="text", exact=True)
    text.fill("a red fox in the snow")
    text.press("Control+Enter")

    page.get_by_role("textbox", name="Search nodes").fill("resize")
    page.get_by_role("textbox", name="Search nodes").press("Enter")
    page.get_by_role("button", name="Resize image").click()
    _inspecting(page, "resize")
    node(page, "resize").wait_for()
    fit_view(page)
    link(page, ("gen", "image"), ("resize", "image"))
    link(page, ("resize", "image"), ("save", "image"))  # replaces gen -> save
    wait_autosaved(editor.workspace, page, lambda g: g["nodes"]["save"]["inputs"] == {
        "image": "resize.image"}, "the links")
    expect(page.get_by_text("required input (Image) is not connected")).to_have_count(0)

    run.click()
    status = page.get_by_text(re.compile(r"^done: \d+ ran"))
    expect(status).to_be_visible(timeout=180000)
    expect(status).to_have_text(re.compile(r"^done: 4 ran, 0 cached"))
    for done in ("prompt", "gen", "resize", "save"):
        expect(node(page, done)).to_have_attribute("data-state", "done")
    page.get_by_role("tab", name="Files written").click()
    picture = page.locator("[data-testid=stImage]").filter(has_text="lighthouse.png")
    expect(picture.first.locator("img")).to_be_visible()
    assert (editor.workspace / "out" / "lighthouse.png").is_file()

    _select(page, "resize")  # edit downstream of generation
    width = page.get_by_role("spinbutton", name="width")
    width.fill("256")
    width.press("Enter")
    expect(page.get_by_text(re.compile("edited since"))).to_be_visible()
    run.click()
    expect(page.get_by_text(re.compile(r"^done: 2 ran, 2 cached"))).to_be_visible(
        timeout=120000)
    expect(node(page, "gen")).to_have_attribute("data-state", "cached")
    page.get_by_role("tab", name="Run").click()
    cached = page.locator("[data-testid=stMarkdownContainer]").filter(
        has_text=re.compile(r"gen\s*cached$"))
    expect(cached).to_be_visible()


def test_sam_points_picked_on_a_scaled_image_then_run(page: Any, editor: Editor) -> None:
    from playwright.sync_api import expect

    _open_example(page, "sam_inpaint.json", "SAM mask")
    _select(page, "photo")
    page.get_by_text("Workspace images").click()
    _pick(page, "Use a workspace image", "inputs/wide.png")  # 640x480, in the workspace
    wait_autosaved(editor.workspace, page,
                   lambda d: d["nodes"]["photo"]["params"]["path"] == "inputs/wide.png",
                   "wide.png")

    _select(page, "mask")
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
    wait_autosaved(editor.workspace, page, lambda d: len(d["nodes"]["mask"]["params"]["points"])
                   == 3, "a point")
    expect(page.get_by_text("3 points (green")).to_be_visible()
    page.get_by_text("Background points", exact=True).click()
    expect(page.get_by_role("switch", name="Background points")).to_be_checked()
    picture = page.frame_locator(PICKER).locator("img#image")  # a new picker per point
    expect(picture).to_be_visible()
    picture.click(position={"x": shown_w / 8, "y": shown_h / 8})  # (80, 60) in the image
    doc = wait_autosaved(editor.workspace, page,
                         lambda d: len(d["nodes"]["mask"]["params"]["points"]) == 4, "a point")
    points = doc["nodes"]["mask"]["params"]["points"]
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


def test_cancel_a_long_run_shown_on_the_node(page: Any, editor: Editor) -> None:
    from playwright.sync_api import expect

    _open_example(page, EXAMPLE, "SDXL-Turbo")
    _select(page, "gen")
    page.get_by_role("slider", name="steps").press("End")  # the most: 50
    for side in ("width", "height"):
        field = page.get_by_role("spinbutton", name=side, exact=True)
        field.fill("1024")
        field.press("Enter")
    doc = wait_autosaved(editor.workspace, page,
                         lambda d: d["nodes"]["gen"]["params"].get("height") == 1024, "1024")
    assert doc["nodes"]["gen"]["params"]["steps"] == 50
    assert doc["nodes"]["gen"]["params"]["width"] == 1024

    out = editor.workspace / "out"
    before = set(out.rglob("*")) if out.exists() else set()
    page.get_by_role("button", name="Run", exact=True).click()
    badge = node(page, "gen").locator(".gk-badge")
    expect(badge).to_have_text(re.compile(r"^running \d+/50$"), timeout=30000)  # on the node
    expect(node(page, "gen").locator(".gk-progress")).to_be_visible()
    expect(node(page, "prompt")).to_have_attribute("data-state", "done")
    expect(page.get_by_text(re.compile(r"running step \d+/50"))).to_be_visible()
    cancel = page.get_by_role("button", name="Cancel", exact=True)
    cancel.click()
    clicked = time.perf_counter()
    status = page.get_by_text(re.compile(r"^cancelled: "))
    expect(status).to_be_visible(timeout=30000)
    print(f"\ncancelled {time.perf_counter() - clicked:.2f} s after the click")
    stopped = page.locator("[data-testid=stMarkdownContainer]").filter(
        has_text=re.compile(r"gen\s*cancelled at step \d+/50$"))
    expect(stopped).to_be_visible()  # not left "running"
    expect(node(page, "gen")).to_have_attribute("data-state", "cancelled")
    expect(page.locator("[data-testid=stProgress]")).to_have_count(0)
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_enabled()
    expect(cancel).to_be_disabled()
    after = set(out.rglob("*")) if out.exists() else set()
    assert after == before, sorted(map(str, after - before))


def test_download_is_the_edited_graph(page: Any, editor: Editor) -> None:
    _open_example(page, EXAMPLE, "SDXL-Turbo")
    name = page.get_by_role("textbox", name="Name", exact=True)
    name.fill("my lighthouse")
    name.press("Enter")
    page.get_by_role("heading", name="my lighthouse").wait_for()
    _select(page, "prompt")
    text = page.get_by_role("textbox", name="text", exact=True)
    text.fill("a blue boat")
    text.press("Control+Enter")
    doc = wait_autosaved(editor.workspace, page,
                         lambda d: d["nodes"]["prompt"]["params"]["text"] == "a blue boat",
                         "the prompt")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download graph JSON").click()
    download = info.value
    assert download.suggested_filename == "my_lighthouse.json"
    body = Path(download.path()).read_text(encoding="utf-8")
    # The edited graph's deterministic JSON, with each node's type version and pack filled in.
    graph = doc_from_raw(doc)
    assert body == Graph(graph, editor.workspace).dumps()
    assert graph.name == "my lighthouse" and '"text": "a blue boat"' in body
    assert autosaved(editor.workspace, page)["name"] == "my lighthouse"
