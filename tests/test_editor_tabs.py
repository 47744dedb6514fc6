"""Which page holds a tab id: a second live page asking for it is a copy (see also the
Chromium test of a duplicated page in tests/test_editor_canvas_browser.py)."""

from __future__ import annotations

from pathlib import Path

from graphkit.editor import tabs
from graphkit.editor.session import Editor, tab_file


def test_a_held_tab_is_refused_to_a_second_live_session_only() -> None:
    live = {"s1", "s2"}
    assert tabs.claim("aaaaaaaaaaaa01", "s1", live.__contains__)
    assert tabs.claim("aaaaaaaaaaaa01", "s1", live.__contains__)  # the same page again
    assert not tabs.claim("aaaaaaaaaaaa01", "s2", live.__contains__)  # a duplicated page
    live.discard("s1")  # the first page went away (a reload): its tab is free again
    assert tabs.claim("aaaaaaaaaaaa01", "s2", live.__contains__)
    assert tabs.claim(None, "s3", live.__contains__) and tabs.claim("", "s3", live.__contains__)
    junk = "x" * 100_000  # an edited address: not a tab id, so nothing is kept for it
    assert tabs.claim(junk, "s1", live.__contains__) and tabs.claim(junk, "s2", live.__contains__)
    assert junk not in tabs._holders


def test_a_copy_starts_from_the_tabs_autosave_under_a_new_id(tmp_path: Path,
                                                             graphs_dir: Path) -> None:
    first = Editor.start(tmp_path, launch_file=graphs_dir / "mask_composite.json")
    first.doc.name = "edited in the first page"
    first.commit()
    first.autosave()
    copy = Editor.start(tmp_path, copy_of=first.tab)
    assert copy.tab != first.tab and copy.doc.name == "edited in the first page"
    assert copy.notices and "a copy of another open page" in copy.notices[-1][1]
    copy.doc.name = "edited in the copy"
    copy.commit()
    copy.autosave()
    assert "edited in the first page" in tab_file(tmp_path, first.tab).read_text()
    assert "edited in the copy" in tab_file(tmp_path, copy.tab).read_text()
    again = Editor.start(tmp_path, tab=first.tab)  # a reload of the first page
    assert again.tab == first.tab and again.doc.name == "edited in the first page"
