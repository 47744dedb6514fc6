"""The Sweep tab in headless Chromium, with the mouse and keyboard: a seed sweep of the
SDXL-Turbo example on the tiny models, its progress to the end, one thumbnail per
variation, the Run button off meanwhile, and the sweep still shown after a reload.

Needs Debian's chromium at /usr/bin/chromium (skipped without it) and the PyPI playwright.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from editor_server import CHROMIUM, READY, editor_server, fit_view, node, open_page
from tiny_fixture import shared_tiny_root

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not "
                                "installed (apt-get install -y chromium)")
GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``graphkit edit turbo.json`` with the tiny models; (address, workspace)."""
    ws = tmp_path_factory.mktemp("sweep") / "ws"
    ws.mkdir()
    shutil.copyfile(GRAPHS / "sdxl_turbo.json", ws / "turbo.json")
    with editor_server(ws, ws / "turbo.json", shared_tiny_root(tmp_path_factory)) as url:
        yield url, ws


@pytest.fixture
def page(browser: Any, served: tuple[str, Path], tmp_path: Path) -> Iterator[Any]:
    context, page = open_page(browser, served[0])
    try:
        yield page
        page.screenshot(path=str(tmp_path / "sweep.png"), full_page=True)
        print(f"screenshot {tmp_path / 'sweep.png'}")
    finally:
        context.close()


def test_a_seed_sweep_from_the_sweep_tab(page: Any, served: tuple[str, Path]) -> None:
    from playwright.sync_api import expect

    _url, ws = served
    run = page.get_by_role("button", name="Run", exact=True)
    fit_view(page)
    node(page, "gen").locator(".gk-title").click()  # the sweep's node follows the selection
    page.locator("h3", has_text=re.compile(r"^gen$")).wait_for()
    page.get_by_role("tab", name="Sweep").click()
    panel = page.get_by_role("tabpanel", name="Sweep")
    expect(panel.get_by_role("combobox", name="Node to sweep")).to_have_value(
        re.compile(r"^gen +\(sdxl\.text2image\)$"))
    expect(panel.get_by_role("combobox", name="Param")).to_have_value("seed")

    spec = panel.get_by_role("textbox", name="Values (SPEC)")
    spec.click()
    page.keyboard.type("0..3")
    page.keyboard.press("Enter")
    expect(panel.get_by_text("gen.seed: 4 variations: 0, 1, 2, 3")).to_be_visible()
    batch = panel.get_by_role("spinbutton", name="Batch")
    batch.click()
    page.keyboard.type("2")
    page.keyboard.press("Enter")
    expect(batch).to_have_value("2")

    panel.get_by_role("button", name="Start sweep").click()
    expect(run).to_be_disabled()  # one run or sweep at a time
    expect(panel.get_by_text(re.compile(r"^finished: 4 done, 0 failed in"))).to_be_visible(
        timeout=180_000)
    expect(panel.get_by_text("4 / 4 variations", exact=True)).to_be_visible()  # the bar
    pictures = panel.locator("[data-testid=stImage]")
    expect(pictures).to_have_count(4)
    for seed in range(4):
        picture = pictures.filter(has_text=f"seed = {seed}")
        expect(picture).to_have_count(1)
        width = picture.locator("img").evaluate("img => img.complete && img.naturalWidth")
        assert width and width > 0
    expect(run).to_be_enabled()  # the page is drawn again when the sweep ends

    folder = ws / "out" / "sweeps" / "turbo-001"
    expect(panel.get_by_text(re.compile(re.escape(f"into {folder}")))).to_be_visible()
    rows = [json.loads(line) for line in (folder / "sweep.jsonl").read_text().splitlines()]
    assert sorted(r["set"]["gen.seed"] for r in rows) == [0, 1, 2, 3]
    assert all(r["status"] == "done" and r["files"] for r in rows)

    page.reload()  # the same tab: the page opens on its sweep
    page.wait_for_selector(READY, timeout=60_000)
    panel = page.get_by_role("tabpanel", name="Sweep")
    expect(panel.get_by_text(re.compile(r"^finished: 4 done, 0 failed in"))).to_be_visible()
    expect(panel.locator("[data-testid=stImage]")).to_have_count(4)
