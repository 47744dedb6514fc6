"""The canvas in headless Chromium, with the mouse and keyboard only: connect by dragging,
refused drops, disconnect, delete, undo and redo, moves kept across a reload, Ctrl+S, two
tabs on one file, adding a node where a link was dropped, copy and paste, run states on the
nodes, a 50-node chain, and text from files shown as text.

One editor server for the module (``graphkit edit masks.json`` in a temporary workspace);
each test opens its own tab on a fresh copy of the file.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from editor_server import (
    CHROMIUM,
    READY,
    autosaved,
    centre,
    drag,
    editor_server,
    fit_view,
    link,
    node,
    open_page,
    port,
    tab_id,
    wait_autosaved,
)
from tiny_fixture import shared_tiny_root

from graphkit.graph import load_doc

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not "
                                "installed (apt-get install -y chromium)")
GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


class Editor:
    """The running editor: its address, workspace and the file it opens."""

    def __init__(self, url: str, workspace: Path) -> None:
        self.url = url
        self.workspace = workspace
        self.file = workspace / "masks.json"

    def saved(self, page: Any) -> dict[str, Any] | None:
        return autosaved(self.workspace, page)

    def wait(self, page: Any, check: Any, what: str) -> dict[str, Any]:
        return wait_autosaved(self.workspace, page, check, what)


@pytest.fixture(scope="module")
def editor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Editor]:
    root = tmp_path_factory.mktemp("canvas")
    ws = root / "ws"
    ws.mkdir()
    shutil.copyfile(GRAPHS / "mask_composite.json", ws / "masks.json")
    shutil.copytree(GRAPHS / "inputs", ws / "inputs")
    with editor_server(ws, ws / "masks.json", shared_tiny_root(tmp_path_factory)) as url:
        yield Editor(url, ws)


@pytest.fixture
def new_tab(browser: Any, editor: Editor) -> Iterator[Any]:
    """Open tabs of the editor (each a new browser context); closed after the test."""
    contexts = []

    def open_tab() -> Any:
        context, page = open_page(browser, editor.url)
        contexts.append(context)
        fit_view(page)
        return page

    shutil.copyfile(GRAPHS / "mask_composite.json", editor.file)  # a fresh file per test
    yield open_tab
    for context in contexts:
        context.close()


def links(graph: dict[str, Any], node_id: str) -> dict[str, str]:
    return graph["nodes"][node_id].get("inputs", {})


def test_connect_refuse_and_disconnect_by_dragging(new_tab: Any, editor: Editor) -> None:
    from playwright.sync_api import expect

    page = new_tab()
    # region reads photo.image; drop texture.image on it instead: the link is replaced
    link(page, ("texture", "image"), ("region", "image"))
    editor.wait(page, lambda g: links(g, "region") == {"image": "texture.image"}, "the link")
    edge = page.locator('.react-flow__edge[data-id="region.image"]')
    expect(edge).to_have_count(1)

    # an Image output onto a Mask input: dimmed while dragging, refused when dropped
    dims: dict[str, bool] = {}

    def look() -> None:
        for key, loc in {"grow.mask": port(page, "grow", "mask", "in"),
                         "region.image": port(page, "region", "image", "in")}.items():
            dims[key] = "gk-dim" in (loc.get_attribute("class") or "")

    link(page, ("photo", "image"), ("grow", "mask"), before_drop=look)
    assert dims == {"grow.mask": True, "region.image": False}
    expect(page.locator("[data-toast]")).to_have_text(
        re.compile("cannot connect photo.image to grow.mask: it gives Image, the input "
                   "takes Mask"))
    time.sleep(0.5)
    assert links(editor.saved(page), "grow") == {"mask": "region.mask"}
    expect(page.locator('.react-flow__edge[data-id="grow.mask"]')).to_have_count(1)

    # drag the link off blend's mask input and drop it on empty canvas: disconnected
    x, y = centre(port(page, "blend", "mask", "in"))
    drag(page, (x, y), (x - 40, y + 260))
    graph = editor.wait(page, lambda g: "mask" not in links(g, "blend"), "the disconnect")
    assert links(graph, "blend") == {"background": "photo.image", "foreground": "fit.image"}
    expect(page.locator('.react-flow__edge[data-id="blend.mask"]')).to_have_count(0)
    expect(port(page, "blend", "mask", "in")).to_be_visible()
    expect(page.locator(".gk-search")).to_have_count(0)  # a link picked up: no search


def test_delete_undo_and_redo_with_keys(new_tab: Any, editor: Editor) -> None:
    from playwright.sync_api import expect

    page = new_tab()
    node(page, "soft").locator(".gk-title").click()
    page.keyboard.press("Delete")
    graph = editor.wait(page, lambda g: "soft" not in g["nodes"], "soft deleted")
    assert "mask" not in links(graph, "blend") and "mask" not in links(graph, "mask_view")
    expect(node(page, "soft")).to_have_count(0)

    page.keyboard.press("Control+z")
    graph = editor.wait(page, lambda g: "soft" in g["nodes"], "soft back")
    assert links(graph, "blend")["mask"] == "soft.mask"
    expect(node(page, "soft")).to_have_count(1)
    expect(page.locator('.react-flow__edge[data-id="blend.mask"]')).to_have_count(1)

    page.keyboard.press("Control+Shift+z")
    editor.wait(page, lambda g: "soft" not in g["nodes"], "soft deleted again")
    expect(node(page, "soft")).to_have_count(0)

    node(page, "grow").locator(".gk-title").click()  # Backspace deletes too
    page.keyboard.press("Backspace")
    editor.wait(page, lambda g: "grow" not in g["nodes"], "grow deleted")

    # Shift+drag a box around the two load nodes: both selected, both deleted
    photo, texture = node(page, "photo").bounding_box(), node(page, "texture").bounding_box()
    corner = (min(photo["x"], texture["x"]) - 12, photo["y"] - 12)
    far = (max(photo["x"] + photo["width"], texture["x"] + texture["width"]) + 12,
           texture["y"] + texture["height"] + 12)
    page.keyboard.down("Shift")
    drag(page, corner, far)
    page.keyboard.up("Shift")
    expect(page.locator(".react-flow__node.selected")).to_have_count(2)
    page.keyboard.press("Delete")
    graph = editor.wait(page, lambda g: "photo" not in g["nodes"], "the box deleted")
    assert "texture" not in graph["nodes"] and "region" in graph["nodes"]


def test_a_moved_node_stays_after_reload_and_ctrl_s_saves(new_tab: Any, editor: Editor) -> None:
    page = new_tab()
    head = node(page, "grow").locator(".gk-head")
    start = centre(head)
    before = editor.saved(page)
    old = before["ui"]["positions"]["grow"] if before else [580, 0]
    drag(page, start, (start[0] + 60, start[1] + 180))
    graph = editor.wait(page, lambda g: g["ui"]["positions"]["grow"] != old, "the move")
    moved = graph["ui"]["positions"]["grow"]
    assert moved[1] > old[1] + 100
    where = node(page, "grow").bounding_box()

    page.reload()
    page.wait_for_selector(READY, timeout=60_000)
    again = node(page, "grow").bounding_box()
    assert abs(again["x"] - where["x"]) < 2 and abs(again["y"] - where["y"]) < 2, (where, again)
    assert load_doc(editor.file).ui["positions"]["grow"] == [580, 0]  # not saved yet

    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 15
    while load_doc(editor.file).ui["positions"]["grow"] != moved:
        assert time.monotonic() < deadline, "Ctrl+S did not write the file"
        time.sleep(0.05)
    on_disk = load_doc(editor.file)
    assert on_disk.nodes["grow"].inputs == {"mask": "region.mask"}
    assert set(on_disk.nodes) == set(json.loads((GRAPHS / "mask_composite.json").read_text())
                                     ["nodes"])


def test_two_tabs_on_one_file_lose_neither_edit(new_tab: Any, editor: Editor) -> None:
    from playwright.sync_api import expect

    first, second = new_tab(), new_tab()
    # first tab: move grow and save
    head = node(first, "grow").locator(".gk-head")
    x, y = centre(head)
    drag(first, (x, y), (x, y + 200))
    moved = editor.wait(first, lambda g: g["ui"]["positions"]["grow"][1] > 100, "the move")
    first.keyboard.press("Control+s")
    deadline = time.monotonic() + 15
    while load_doc(editor.file).ui["positions"]["grow"] != moved["ui"]["positions"]["grow"]:
        assert time.monotonic() < deadline, "the first tab did not save"
        time.sleep(0.05)
    saved_by_first = editor.file.read_text()

    # second tab, opened before that save: delete soft, then save
    node(second, "soft").locator(".gk-title").click()
    second.keyboard.press("Delete")
    editor.wait(second, lambda g: "soft" not in g["nodes"], "soft deleted")
    second.keyboard.press("Control+s")
    expect(second.get_by_text(re.compile("changed on disk since this tab"))).to_be_visible()
    assert editor.file.read_text() == saved_by_first  # the first tab's edit is on disk
    assert "soft" not in editor.saved(second)["nodes"]  # the second tab's edit is kept

    second.locator(".stButton").filter(has_text="Reload from disk").last.click()
    graph = editor.wait(second, lambda g: "soft" in g["nodes"], "the file reloaded")
    assert graph["ui"]["positions"]["grow"] == moved["ui"]["positions"]["grow"]
    second.wait_for_selector(READY)
    second.keyboard.press("Control+z")  # the second tab's version is one undo away
    editor.wait(second, lambda g: "soft" not in g["nodes"], "the second tab's edit back")


def test_a_duplicated_page_gets_a_tab_of_its_own(new_tab: Any, editor: Editor) -> None:
    """The browser's "Duplicate tab" opens the same address (the same ?tab=) while the first
    page is open: the copy starts from the first page's work under a new tab id, and the
    two pages' edits autosave apart (the first page's work is not overwritten)."""
    from playwright.sync_api import expect

    first = new_tab()
    node(first, "soft").locator(".gk-title").click()
    first.keyboard.press("Delete")
    editor.wait(first, lambda g: "soft" not in g["nodes"], "soft deleted in the first page")
    first_tab = tab_id(first)

    copy = first.context.new_page()
    copy.goto(first.url)  # the same address, ?tab= included
    copy.wait_for_selector(READY, timeout=60_000)
    fit_view(copy)
    expect(copy.get_by_text("this page is a copy of another open page")).to_be_visible()
    deadline = time.monotonic() + 10
    while tab_id(copy) == first_tab:
        assert time.monotonic() < deadline, "the copy kept the first page's tab id"
        time.sleep(0.05)
    assert node(copy, "soft").count() == 0  # it starts from the first's work
    assert "soft" not in editor.wait(copy, lambda g: True, "the copy's own autosave")["nodes"]

    node(copy, "grow").locator(".gk-title").click()
    copy.keyboard.press("Delete")
    editor.wait(copy, lambda g: "grow" not in g["nodes"], "grow deleted in the copy")
    node(first, "fit").locator(".gk-title").click()
    first.keyboard.press("Delete")
    mine = editor.wait(first, lambda g: "fit" not in g["nodes"], "fit deleted in the first")
    assert "grow" in mine["nodes"]  # the copy's edit did not reach the first page's autosave
    assert "fit" in editor.saved(copy)["nodes"] and "grow" not in editor.saved(copy)["nodes"]

    first.reload()  # a reload is not a copy: the page keeps its tab and its work
    first.wait_for_selector(READY, timeout=60_000)
    assert tab_id(first) == first_tab
    expect(first.get_by_text("this page is a copy of another open page")).to_have_count(0)
    assert node(first, "fit").count() == 0 and node(first, "grow").count() == 1


def test_drop_a_link_on_empty_canvas_to_add_a_fitting_node(new_tab: Any, editor: Editor) -> None:
    from playwright.sync_api import expect

    page = new_tab()
    x, y = centre(port(page, "soft", "mask", "out"))
    drag(page, (x, y), (x + 30, y + 300))
    search = page.locator(".gk-search")
    expect(search).to_be_visible()
    offered = search.locator("li[data-type]")
    types = offered.evaluate_all("els => els.map(e => e.dataset.type)")
    assert "mask.invert" in types and "mask.grow" in types
    assert "image.resize" not in types and "text.prompt" not in types  # they take no Mask
    page.keyboard.type("invert")
    expect(offered).to_have_count(1)
    page.keyboard.press("Enter")
    graph = editor.wait(page, lambda g: "invert" in g["nodes"], "the new node")
    assert links(graph, "invert") == {"mask": "soft.mask"}
    expect(node(page, "invert")).to_be_visible()
    expect(page.locator('.react-flow__edge[data-id="invert.mask"]')).to_have_count(1)


def test_copy_paste_menu_and_run_states_on_nodes(new_tab: Any, editor: Editor) -> None:
    from playwright.sync_api import expect

    page = new_tab()
    node(page, "grow").locator(".gk-title").click()
    node(page, "soft").locator(".gk-title").click(modifiers=["Shift"])  # multi-select
    expect(page.locator(".react-flow__node.selected")).to_have_count(2)
    page.keyboard.press("Control+c")
    box = page.locator(READY).bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.85)
    page.keyboard.press("Control+v")
    graph = editor.wait(page, lambda g: "grow_2" in g["nodes"], "the pasted nodes")
    assert links(graph, "soft_2") == {"mask": "grow_2.mask"} and links(graph, "grow_2") == {}
    expect(node(page, "soft_2")).to_be_visible()

    node(page, "soft").locator(".gk-title").click(button="right")
    page.get_by_role("menuitem", name=re.compile("Run to here")).click()
    for done in ("photo", "region", "grow", "soft"):
        expect(node(page, done)).to_have_attribute("data-state", "done", timeout=60_000)
    expect(node(page, done).locator(".gk-badge")).to_have_text("ran")
    expect(node(page, "blend")).to_have_attribute("data-state", "none")  # not needed

    page.keyboard.press("Control+z")  # the paste goes (its nodes have no inputs)
    editor.wait(page, lambda g: "grow_2" not in g["nodes"], "the paste undone")
    node(page, "texture").locator(".gk-title").click()  # the inspector shows texture
    path = page.get_by_role("textbox", name="path *", exact=True)
    path.fill("inputs/none.png")
    path.press("Enter")
    editor.wait(page, lambda g: g["nodes"]["texture"]["params"]["path"] == "inputs/none.png",
                "the broken path")
    # a missing input file is a problem before any run, on the node itself
    expect(node(page, "texture")).to_have_class(re.compile("gk-invalid"))
    expect(node(page, "texture").locator(".gk-problem")).to_contain_text("not found")
    path.fill("masks.json")  # a file that is there, but no image: fails when it runs
    path.press("Enter")
    editor.wait(page, lambda g: g["nodes"]["texture"]["params"]["path"] == "masks.json",
                "a path to a file that is no image")
    expect(node(page, "texture")).not_to_have_class(re.compile("gk-invalid"))
    canvas_top = page.locator("[data-canvas]").bounding_box()["y"]
    page.get_by_role("button", name="Run", exact=True).click()
    expect(node(page, "texture")).to_have_attribute("data-state", "failed", timeout=60_000)
    expect(node(page, "texture").locator(".gk-status-text")).to_contain_text(
        "not a readable image")
    for skipped in ("fit", "blend", "save"):
        expect(node(page, skipped)).to_have_attribute("data-state", "skipped")
    for cached in ("photo", "region", "grow", "soft"):
        expect(node(page, cached)).to_have_attribute("data-state", "cached")
    expect(node(page, "photo").locator(".gk-badge")).to_have_text("cached")
    expect(node(page, "mask_view")).to_have_attribute("data-state", "done")
    # the per-node list did not push the canvas down
    assert abs(page.locator("[data-canvas]").bounding_box()["y"] - canvas_top) < 2


def test_a_50_node_chain_is_readable_and_file_text_is_text(new_tab: Any, editor: Editor,
                                                           tmp_path: Path) -> None:
    from playwright.sync_api import expect

    beacon = "http://127.0.0.1:9/beacon.png"
    nodes: dict[str, Any] = {"n0": {"type": "image.load", "params": {"path": "in_put.png"}}}
    for i in range(1, 49):
        nodes[f"n{i}"] = {"type": "image.resize", "params": {"width": 64, "height": 64},
                          "inputs": {"image": f"n{i - 1}.image"}}
    nodes["n49"] = {"type": "image.save", "inputs": {"image": "n48.image"}}
    chain = tmp_path / "chain.json"
    chain.write_text(json.dumps({"name": f"![]({beacon}) my_chain", "nodes": nodes}))
    page = new_tab()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.locator('[data-testid="stFileUploader"] input[type=file]').first.set_input_files(
        str(chain))
    expect(node(page, "n49")).to_have_count(1, timeout=30_000)
    page.reload()  # the default view of the chain as it opens
    page.wait_for_selector(READY, timeout=60_000)

    zoom = page.evaluate("""() => {
        const t = document.querySelector('.react-flow__viewport').style.transform;
        return parseFloat(t.match(/scale\\(([^)]+)\\)/)[1]); }""")
    title = node(page, "n0").locator(".gk-title")
    size = float(title.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) * zoom
    assert size >= 11, f"node titles are {size:.1f} px on screen"
    canvas = page.locator("[data-canvas]").bounding_box()
    first = node(page, "n0").bounding_box()
    assert canvas["x"] <= first["x"] and first["x"] + first["width"] <= canvas["x"] + canvas[
        "width"] and canvas["y"] <= first["y"] < canvas["y"] + canvas["height"]
    positions = editor.saved(page)["ui"]["positions"]
    assert len({x for x, _ in positions.values()}) == 4  # rows of four layers
    assert len({y for _, y in positions.values()}) == 13

    assert not any("beacon" in url for url in fetched), fetched
    expect(page.get_by_role("heading", name=f"![]({beacon}) my_chain")).to_be_visible()
    expect(node(page, "n0")).to_have_class(re.compile("gk-invalid"))  # its file is missing
    expect(node(page, "n0").locator(".gk-problem")).to_contain_text("in_put.png")
    page.get_by_role("button", name="Run", exact=True).click()  # refused, saying why
    expect(page.get_by_text(re.compile(r"cannot run yet.*in_put\.png")).first).to_be_visible()
    expect(node(page, "n0")).to_have_attribute("data-state", "none")
    assert not any("beacon" in url for url in fetched), fetched
