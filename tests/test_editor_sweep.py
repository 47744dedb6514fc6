"""The editor's Sweep tab: what it offers, SPEC previews and errors (the CLI's parser and
checks), @FILE held inside the workspace, one run or sweep at a time, the results grid, and
the tab under streamlit's AppTest. The mouse-and-keyboard flow in Chromium is in
tests/test_editor_sweep_browser.py.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image as PILImage
from test_editor_app import bomb_png, editor_of, select_node, start, texts

import graphkit
from graphkit.api import default_scheduler
from graphkit.cli import main
from graphkit.editor import jobs, sweeps
from graphkit.editor.runner import _RUN_LOCK
from graphkit.editor.session import FILE_ENV, WORKSPACE_ENV
from graphkit.editor.sweeps import Target
from graphkit.editor.text import md_text
from graphkit.errors import GraphError
from graphkit.limits import Limits, set_limits
from graphkit.scheduler import Scheduler
from graphkit.sweep import SweepStarted

ROOT = Path(__file__).resolve().parent.parent
TURBO = ROOT / "graphs" / "sdxl_turbo.json"
SEED = Target("gen", "seed", "seed")
TEXT = Target("prompt", "text", "textarea")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graphs_dir: Path) -> Path:
    """A workspace holding the mask example (opened by the app) and a prompt list."""
    default_scheduler().cache.clear()
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copyfile(graphs_dir / "mask_composite.json", ws / "masks.json")
    shutil.copytree(graphs_dir / "inputs", ws / "inputs")
    (ws / "prompts.txt").write_text("a red fox\n\na blue bird\n")
    monkeypatch.setenv(WORKSPACE_ENV, str(ws))
    monkeypatch.setenv(FILE_ENV, str(ws / "masks.json"))
    return ws


@pytest.fixture
def held_sweep(workspace: Path) -> Iterator[tuple[sweeps.SweepEntry, threading.Event]]:
    """A real sweep of the mask graph, held at its start until the event is set."""
    go = threading.Event()

    def hold(event: object) -> None:
        if isinstance(event, SweepStarted):
            go.wait(60)

    graph = graphkit.load(workspace / "masks.json")
    entry = sweeps.start_sweep("holdertab01", graph, Target("grow", "pixels", "slider"),
                               "1,2", None, workspace / "out", workspace,
                               listener=hold, scheduler=Scheduler())
    try:
        yield entry, go
    finally:
        go.set()
        entry.job.wait(120)


def cli_error(spec: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    code = main(["run", str(TURBO), "--models", "tiny", "--out", str(tmp_path / "cli"),
                 "--sweep", spec])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: "), err
    return err.removeprefix("error: ")


# what is offered ------------------------------------------------------------------------------
def test_params_worth_sweeping_seeds_and_prompts_first() -> None:
    graph = graphkit.load(TURBO)
    doc, reg = graph.doc, graph.registry
    gen = sweeps.node_targets(doc, reg, "gen")
    assert gen[0] == SEED
    assert {t.param for t in gen} == {"seed", "steps", "guidance", "width", "height", "model",
                                      "revision"}
    masks = graphkit.load(ROOT / "graphs" / "mask_composite.json")
    region = sweeps.node_targets(masks.doc, masks.registry, "region")
    assert [t.param for t in region] == ["width", "height", "shape"]  # not the box (JSON)
    assert sweeps.node_targets(doc, reg, "prompt")[0] == TEXT
    assert sweeps.node_targets(doc, reg, "save") == []  # its file name is not a sweep
    assert sweeps.sweepable_nodes(doc, reg) == ["prompt", "gen"]
    assert sweeps.default_node(doc, reg, "prompt") == "prompt"  # the selected node
    assert sweeps.default_node(doc, reg, "save") == "gen"  # else the first with a seed
    assert sweeps.default_node(doc, reg, None) == "gen"
    spec = reg.get("sdxl.text2image")
    assert sweeps.placeholder(SEED, spec).startswith("0..7")
    assert sweeps.placeholder(TEXT, reg.get("text.prompt")).startswith("a red fox, a blue bird")
    assert sweeps.placeholder(Target("gen", "steps", "slider"), spec).startswith("1..4")
    assert sweeps.placeholder(Target("gen", "guidance", "slider"), spec) == "0.5, 1.0, 2.0"
    resize = reg.get("image.resize")
    assert sweeps.placeholder(Target("r", "method", "select"), resize) == \
        "bicubic, bilinear, nearest"


# previews and errors --------------------------------------------------------------------------
def test_preview_counts_the_variations(tmp_path: Path) -> None:
    graph = graphkit.load(TURBO)
    shown = sweeps.preview_spec(graph, SEED, "0..7", tmp_path)
    assert (shown.count, shown.error) == (8, "")
    assert shown.words == "8 variations: 0, 1, 2, 3, …"
    assert sweeps.preview_spec(graph, SEED, "42", tmp_path).words == "1 variation: 42"
    text = sweeps.preview_spec(graph, TEXT, "a red fox, a blue bird", tmp_path)
    assert text.words == "2 variations: a red fox, a blue bird"
    assert sweeps.preview_spec(graph, SEED, "  ", tmp_path) == sweeps.SpecPreview()


@pytest.mark.parametrize("target, spec", [
    (SEED, "1,-1"), (SEED, "9..0"), (SEED, "1,,2"), (SEED, "1,two"),
    (SEED, "0..1000000000000"), (TEXT, "[a,b"), (Target("gen", "steps", "slider"), "0..3"),
    (Target("gen", "width", "slider"), "64,100"), (SEED, "@"),
])
def test_preview_errors_are_the_cli_lines(target: Target, spec: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    shown = sweeps.preview_spec(graphkit.load(TURBO), target, spec, tmp_path)
    assert shown.sweep is None
    assert shown.error == cli_error(f"{target.key}={spec}", capsys, tmp_path)


def test_spec_files_only_from_the_workspace(tmp_path: Path) -> None:
    graph = graphkit.load(TURBO)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "prompts.txt").write_text("a red fox\n\na blue bird\n")
    (tmp_path / "private.txt").write_text("a secret\n")
    (ws / "elsewhere.txt").symlink_to(tmp_path / "private.txt")
    shown = sweeps.preview_spec(graph, TEXT, "@prompts.txt", ws)
    assert shown.sweep is not None and shown.sweep.axes[0].values == ("a red fox",
                                                                       "a blue bird")
    for spec in ("@../private.txt", f"@{tmp_path / 'private.txt'}", "@elsewhere.txt"):
        error = sweeps.preview_spec(graph, TEXT, spec, ws).error
        assert error == (f"node 'prompt' 'text': {spec} is not inside {ws.resolve()}; only "
                         "files in that folder can be read")
        assert "secret" not in error
    missing = sweeps.preview_spec(graph, TEXT, "@nothing.txt", ws).error
    assert missing == "node 'prompt' 'text': cannot read @nothing.txt: No such file or directory"


def test_sizes_are_bounded_by_the_limits(tmp_path: Path) -> None:
    graph = graphkit.load(TURBO)
    (tmp_path / "many.txt").write_text("x\n" * 100)
    set_limits(Limits(max_sweep_file_bytes=50, max_sweep_variations=10))
    try:
        typed = sweeps.preview_spec(graph, TEXT, "a," * 30, tmp_path).error
        assert typed == ("node 'prompt' 'text': the SPEC is 60 bytes; the limit is 50 "
                         "(GRAPHKIT_LIMIT_MAX_SWEEP_FILE_BYTES)")
        assert "@many.txt is 200 bytes; the limit is 50" in \
            sweeps.preview_spec(graph, TEXT, "@many.txt", tmp_path).error
        assert "range 0..10 has 11 values; the limit is 10" in \
            sweeps.preview_spec(graph, SEED, "0..10", tmp_path).error
    finally:
        set_limits(None)


def test_preview_key_follows_the_node_the_spec_and_the_file(tmp_path: Path) -> None:
    graph = graphkit.load(TURBO)
    (tmp_path / "p.txt").write_text("a\n")
    key = sweeps.preview_key(graph.doc, TEXT, "@p.txt", tmp_path)
    assert key == sweeps.preview_key(graph.doc, TEXT, "@p.txt", tmp_path)
    graph.set_param("gen", "steps", 2)  # another node: the same preview
    assert key == sweeps.preview_key(graph.doc, TEXT, "@p.txt", tmp_path)
    (tmp_path / "p.txt").write_text("a\nb\n")
    changed = sweeps.preview_key(graph.doc, TEXT, "@p.txt", tmp_path)
    assert changed != key
    graph.set_param("prompt", "text", "other")
    assert sweeps.preview_key(graph.doc, TEXT, "@p.txt", tmp_path) != changed


# folders, grid, thumbnails --------------------------------------------------------------------
def test_each_sweep_gets_a_new_numbered_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = sweeps.new_sweep_folder(out, "SDXL-Turbo: text to image")
    assert first == out / "sweeps" / "SDXL-Turbo__text_to_image-001" and first.is_dir()
    (out / "sweeps" / "SDXL-Turbo__text_to_image-007").mkdir()
    assert sweeps.new_sweep_folder(out, "SDXL-Turbo: text to image").name.endswith("-008")
    assert sweeps.new_sweep_folder(out, "../../evil").parent == out / "sweeps"
    (tmp_path / "file").write_text("")
    with pytest.raises(GraphError, match="cannot make a sweep folder in"):
        sweeps.new_sweep_folder(tmp_path / "file", "x")


def test_rows_to_grid_cells(tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    for name in ("00000/a.png", "00000/b.png", "00002/a.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        PILImage.new("RGB", (8, 8)).save(folder / name)
    (tmp_path / "outside.png").write_bytes((folder / "00002" / "a.png").read_bytes())
    rows = [
        {"index": 2, "set": {"prompt.text": "a blue bird"}, "status": "skipped",
         "files": ["00002/a.png"]},
        {"index": 0, "set": {"prompt.text": "a red fox"}, "status": "done",
         "files": ["00000/a.png", "00000/b.png", "00000/notes.txt"]},
        {"index": 1, "set": {"prompt.text": ""}, "status": "failed", "files": [],
         "error": "node 'gen' (sdxl.text2image) 'prompt':\nout of memory"},
        {"index": 3, "set": {"prompt.text": "x"}, "status": "done",
         "files": ["../outside.png", "/etc/passwd", 7]},
    ]
    cells = sweeps.grid_cells(rows, folder, "prompt.text")
    assert [c.index for c in cells] == [0, 1, 2, 3]
    assert cells[0] == sweeps.Cell(0, "a red fox", "done", (folder / "00000/a.png").resolve(),
                                   1, "")
    assert cells[1] == sweeps.Cell(1, '""', "failed", None, 0,
                                   "node 'gen' (sdxl.text2image) 'prompt': out of memory")
    assert cells[2].image == (folder / "00002/a.png").resolve() and cells[2].status == "skipped"
    assert cells[3].image is None  # never a file outside the sweep folder
    seeds = sweeps.grid_cells([{"index": 0, "set": {"gen.seed": 7}, "status": "done",
                                "files": []}], folder, "gen.seed")
    assert seeds[0].label == "7"


def test_thumbnails_are_small_and_refuse_what_is_not_a_png(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    PILImage.new("RGB", (600, 300), (200, 10, 10)).save(big)
    data = sweeps.thumbnail(big)
    assert data is not None
    with PILImage.open(io.BytesIO(data)) as img:
        assert img.size == (256, 128) and img.format == "JPEG"
    (tmp_path / "bomb.png").write_bytes(bomb_png())
    (tmp_path / "text.png").write_text("not an image")
    assert sweeps.thumbnail(tmp_path / "bomb.png") is None
    assert sweeps.thumbnail(tmp_path / "text.png") is None
    assert sweeps.thumbnail(tmp_path / "gone.png") is None


# one run or sweep at a time -------------------------------------------------------------------
def test_no_run_while_a_sweep_runs_and_no_sweep_while_a_run_runs(
        workspace: Path, held_sweep: tuple[sweeps.SweepEntry, threading.Event]) -> None:
    entry, go = held_sweep
    assert entry.running and jobs.sweep_running()
    at = start()
    ed = editor_of(at)
    assert at.button(key="run").disabled
    assert at.button(key="sweep-start").disabled
    assert any(md_text("a sweep is running in another tab") in t for t in texts(at))
    assert not ed.run_graph()  # Ctrl+Enter, the canvas menu: refused in one line
    assert ed.notices[-1] == ("info", "a sweep is running in another tab: wait for it or "
                              "cancel it (Sweep tab below the canvas)")
    with pytest.raises(GraphError, match="a sweep is running in another tab"):
        sweeps.start_sweep(ed.tab, ed.graph(), SEED, "1", None, workspace / "out", workspace)
    go.set()
    entry.job.wait(120)
    assert not at.run().button(key="run").disabled

    with _RUN_LOCK:  # a run that waits: it stays in progress while the lock is held
        assert ed.run_graph()
        assert ed.run.running
        at.run()
        assert at.button(key="sweep-start").disabled
        with pytest.raises(GraphError, match="^a run is in progress: wait for it"):
            sweeps.start_sweep(ed.tab, ed.graph(), Target("grow", "pixels", "slider"), "1",
                               None, workspace / "out", workspace)
        assert not editor_of(start()).run_graph()  # nor a run from another tab
    ed.run.thread.join(120)
    assert ed.run.ok


def test_a_sweep_needing_a_missing_input_image_is_refused_before_it_starts(
        workspace: Path) -> None:
    (workspace / "inputs" / "texture.png").unlink()
    graph = graphkit.load(workspace / "masks.json")
    with pytest.raises(GraphError, match="the graph cannot run yet: .*texture.*path"):
        sweeps.start_sweep("missingtab01", graph, Target("grow", "pixels", "slider"), "1,2",
                           None, workspace / "out", workspace, [workspace])
    assert jobs.sweep_of("missingtab01") is None
    assert not (workspace / "out" / sweeps.SWEEPS_DIR).exists() or not any(
        (workspace / "out" / sweeps.SWEEPS_DIR).iterdir())


# the tab in the app ---------------------------------------------------------------------------
def sweep_widgets(at):  # noqa: ANN001, ANN201 - AppTest
    node = next(s for s in at.selectbox if s.key and s.key.startswith("sweep-node:"))
    return node


def spec_box(at):  # noqa: ANN001, ANN201 - AppTest
    return next(t for t in at.text_input if t.key and t.key.startswith("sweep-spec:"))


def sweep_captions(at):  # noqa: ANN001, ANN201 - AppTest
    """Captions of the results grid's thumbnails."""
    return [img.caption for e in at.get("image") for img in e.proto.imgs
            if img.caption.startswith("pixels")]


def status_line(at) -> str:  # noqa: ANN001 - AppTest
    """The sweep's one-line state under its progress bar."""
    found = [m.value for m in at.markdown if re.match(r"(running|finished|cancelled|the sweep "
                                                      r"stopped)\\?:", m.value)]
    assert len(found) == 1, found
    return found[0]


def bar(at) -> tuple[int, str]:  # noqa: ANN001 - AppTest
    """The sweep's progress bar: percent and text."""
    (progress,) = at.get("progress")
    return progress.proto.value, progress.proto.text


def wait_sweep(at):  # noqa: ANN001, ANN201 - AppTest
    entry = jobs.sweep_of(editor_of(at).tab)
    assert entry is not None
    entry.job.wait(120)
    return at.run()


def test_sweep_tab_start_progress_grid_and_reload(workspace: Path) -> None:
    at = select_node(start(), "grow")  # the canvas selection is the default node
    assert sweep_widgets(at).value == "grow"
    params = next(s for s in at.selectbox if s.key and s.key.startswith("sweep-param:"))
    assert params.value == "pixels" and params.options == ["pixels"]
    assert spec_box(at).placeholder.startswith("1..4")
    spec_box(at).input("0..3").run()
    assert md_text("grow.pixels: 4 variations: 0, 1, 2, 3") in texts(at)
    at.button(key="sweep-start").click().run()
    at = wait_sweep(at)
    assert not at.exception
    shown = texts(at)
    assert status_line(at).startswith(md_text("finished: 4 done, 0 failed in "))
    assert bar(at) == (100, "4 / 4 variations")
    folder = workspace / "out" / "sweeps" / "masks-001"
    assert any(md_text(f"into {folder}") in t for t in shown)
    rows = [json.loads(line) for line in (folder / "sweep.jsonl").read_text().splitlines()]
    assert sorted(r["set"]["grow.pixels"] for r in rows) == [0, 1, 2, 3]
    captions = sweep_captions(at)
    assert captions == [md_text(f"pixels = {n} (+1 more)") for n in range(4)]

    tab = editor_of(at).tab
    again = start(tab)  # a reload of the page: the sweep is still there
    assert status_line(again) == status_line(at) and bar(again) == bar(at)
    assert sweep_captions(again) == captions
    assert jobs.sweep_of(start().session_state["editor"].tab) is None  # not in another tab


def test_bad_specs_are_one_line_in_the_tab_and_the_graph_is_kept(workspace: Path) -> None:
    at = select_node(start(), "grow")
    before = editor_of(at).text
    spec_box(at).input("1,600").run()
    errors = [t for t in texts(at) if "sweep value" in t]
    assert errors == [":red[:material/error: " + md_text(
        "node 'grow' 'pixels': sweep value 600: Input should be less than or equal to "
        "512") + "]"]
    at.button(key="sweep-start").click().run()  # refused: the same line, nothing made
    assert any(md_text("the sweep did not start: node 'grow' 'pixels': sweep value 600") in t
               for t in texts(at))
    assert not (workspace / "out").exists() and jobs.sweep_of(editor_of(at).tab) is None
    spec_box(at).input("@../../etc/passwd").run()
    assert any(md_text("@../../etc/passwd is not inside") in t for t in texts(at))
    assert editor_of(at).text == before and not at.exception


def test_cancel_keeps_finished_variations_and_resume_does_the_rest(
        workspace: Path) -> None:
    at = select_node(start(), "grow")
    ed = editor_of(at)
    seen = threading.Event()

    def cancel_after_first(event: object) -> None:
        if type(event).__name__ == "VariationFinished" and not seen.is_set():
            seen.set()
            jobs.sweep_of(ed.tab).job.cancel()

    graph = ed.graph()
    entry = sweeps.start_sweep(ed.tab, graph, Target("grow", "pixels", "slider"), "0..3", 1,
                               ed.out_dir, workspace, name="masks",
                               listener=cancel_after_first)
    entry.job.wait(120)
    at.run()
    pattern = (re.escape(md_text("cancelled: 1 done, 0 failed, 3 not run in ")) + r"[\d\\.]+ s"
               + re.escape(md_text("; Resume runs the rest")))
    assert re.fullmatch(pattern, status_line(at)), status_line(at)
    assert bar(at) == (25, "1 / 4 variations")
    assert not at.button(key="sweep-resume").disabled
    at.button(key="sweep-resume").click().run()
    at = wait_sweep(at)
    assert status_line(at).startswith(md_text("finished: 3 done, 0 failed, 1 done earlier in"))
    assert jobs.sweep_of(ed.tab).folder == entry.folder  # the same folder
    assert at.button(key="sweep-resume").disabled
