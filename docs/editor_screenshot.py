"""Take docs/editor.png: the editor at 1280x800 on the mask example after a run.

Needs /usr/bin/chromium and the playwright package (as the browser tests).
Run: python docs/editor_screenshot.py
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from editor_server import editor_server, launch_chromium, node, open_page  # noqa: E402


def main() -> None:
    from playwright.sync_api import expect, sync_playwright

    ws = Path(tempfile.gettempdir()) / "my-graphs"  # a short path to show
    shutil.rmtree(ws, ignore_errors=True)
    ws.mkdir()
    try:
        shutil.copyfile(ROOT / "graphs" / "mask_composite.json", ws / "mask_composite.json")
        shutil.copytree(ROOT / "graphs" / "inputs", ws / "inputs")
        with editor_server(ws, ws / "mask_composite.json") as url, sync_playwright() as pw:
            browser = launch_chromium(pw)
            context, page = open_page(browser, url, width=1280, height=800)
            page.get_by_role("button", name="Run", exact=True).click()
            expect(page.get_by_text(re.compile(r"^done: "))).to_be_visible(timeout=60_000)
            node(page, "soft").locator(".gk-title").click()
            page.locator("h3", has_text=re.compile(r"^soft$")).wait_for()
            time.sleep(1.0)
            page.mouse.move(5, 790)
            page.screenshot(path=str(ROOT / "docs" / "editor.png"))
            context.close()
            browser.close()
    finally:
        shutil.rmtree(ws, ignore_errors=True)
    print(ROOT / "docs" / "editor.png")


if __name__ == "__main__":
    main()
