"""Sweeps from the editor, without Streamlit: which params to offer, what a SPEC makes,
the sweep's folder, starting it (one run or sweep at a time) and its results as a grid.

A SPEC typed in the page is parsed and checked by the same code as ``--sweep`` (see
:mod:`graphkit.sweep.spec`); ``@FILE`` reads a file inside the workspace only (the page
is another program's input, so it gets no wider view of the disk than the workspace).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from graphkit.api import Graph
from graphkit.editor import jobs
from graphkit.editor.files import slug
from graphkit.editor.guard import one_line
from graphkit.editor.runner import blocking_problems
from graphkit.editor.widgets import plan_widget
from graphkit.errors import GraphError, problem
from graphkit.fileio import open_regular
from graphkit.graph import GraphDoc
from graphkit.limits import limits
from graphkit.registry import NodeSpec, Registry
from graphkit.sweep import (
    Sweep,
    SweepFinished,
    SweepJob,
    SweepProgress,
    build_sweep,
    prepare,
)

SWEEPS_DIR = "sweeps"  # under the workspace's out/
THUMB_SIDE = 256
SHOWN_VALUES = 4  # values a preview names before "…"
# Widget kinds worth sweeping, in the order offered: seeds first, then prompts and text,
# then numbers and choices. JSON-valued params (points, boxes, revisions) are left out.
KIND_ORDER = ("seed", "textarea", "slider", "number", "select", "checkbox", "text", "model")
PLACEHOLDERS = {
    "seed": "0..7   or   1, 42, 1234",
    "textarea": "a red fox, a blue bird   or   @prompts.txt (one per line)",
    "text": "first, second   or   @values.txt (one per line)",
    "model": "org/model-a, org/model-b",
    "checkbox": "false, true",
}
_FOLDER = re.compile(r"-(\d+)$")


# what to sweep ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """One param of one node, and the widget kind that edits it."""

    node: str
    param: str
    kind: str

    @property
    def key(self) -> str:
        return f"{self.node}.{self.param}"


def node_targets(doc: GraphDoc, reg: Registry, node_id: str) -> list[Target]:
    """The params of ``node_id`` worth sweeping, seeds and prompts first."""
    entry = doc.nodes.get(node_id)
    spec = reg.get(entry.type) if entry is not None else None
    if spec is None:
        return []
    found = []
    for name, param in spec.params.items():
        kind = plan_widget(name, param.schema).kind
        if kind in KIND_ORDER and name not in spec.output_params:
            found.append(Target(node_id, name, kind))
    return sorted(found, key=lambda t: KIND_ORDER.index(t.kind))


def sweepable_nodes(doc: GraphDoc, reg: Registry) -> list[str]:
    """Nodes with at least one param worth sweeping, in the graph's order."""
    return [n for n in doc.nodes if node_targets(doc, reg, n)]


def default_node(doc: GraphDoc, reg: Registry, selected: str | None) -> str | None:
    """The selected node when it has params to sweep; else the first node with a seed;
    else the first with any."""
    nodes = sweepable_nodes(doc, reg)
    if selected in nodes:
        return selected
    seeded = [n for n in nodes if node_targets(doc, reg, n)[0].kind == "seed"]
    return (seeded or nodes or [None])[0]


def placeholder(target: Target, spec: NodeSpec | None) -> str:
    """An example SPEC for the param's kind."""
    if target.kind in PLACEHOLDERS:
        return PLACEHOLDERS[target.kind]
    param = spec.params.get(target.param) if spec is not None else None
    plan = plan_widget(target.param, param.schema if param else {})
    if target.kind == "select":
        return ", ".join(json.dumps(o) if not isinstance(o, str) else o
                         for o in plan.options[:3])
    if plan.numeric == "int":
        return "1..4   or   2, 4, 8"
    return "0.5, 1.0, 2.0"


# a SPEC's preview ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SpecPreview:
    """What a SPEC makes: the checked sweep, or one line saying what is wrong."""

    sweep: Sweep | None = None
    error: str = ""

    @property
    def count(self) -> int:
        return len(self.sweep) if self.sweep is not None else 0

    @property
    def words(self) -> str:
        """``4 variations: 0, 1, 2, 3`` (a few values, then …)."""
        if self.sweep is None:
            return ""
        values = self.sweep.axes[0].values
        shown = ", ".join(value_label(v, 40) for v in values[:SHOWN_VALUES])
        more = ", …" if len(values) > SHOWN_VALUES else ""
        noun = "variation" if self.count == 1 else "variations"
        return f"{self.count} {noun}: {shown}{more}"


def preview_spec(graph: Graph, target: Target, text: str, workspace: Path) -> SpecPreview:
    """Parse and check ``text`` as the CLI's ``--sweep NODE.PARAM=SPEC`` would; an empty
    SPEC is no sweep and no error yet."""
    if not text.strip():
        return SpecPreview()
    lim = limits()
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > lim.max_sweep_file_bytes:
        return SpecPreview(error=one_line(
            f"node '{target.node}' '{target.param}': the SPEC is {size} bytes; the limit is "
            f"{lim.max_sweep_file_bytes} (GRAPHKIT_LIMIT_MAX_SWEEP_FILE_BYTES)"))
    try:
        sweep = build_sweep(graph, {target.key: text}, lim=lim, file_root=workspace)
    except GraphError as exc:
        return SpecPreview(error=one_line(exc.lines()[0]))
    except Exception as exc:  # noqa: BLE001 - any surprise is one line, the page stays
        return SpecPreview(error=one_line(f"the SPEC cannot be read: {type(exc).__name__}: "
                                          f"{exc}"))
    return SpecPreview(sweep)


def value_label(value: Any, limit: int = 60) -> str:
    """A variation's value as a short label: text as it is, anything else as JSON."""
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return one_line(shown, limit) if shown.strip() else json.dumps(value)


# starting -----------------------------------------------------------------------------------
@dataclass
class SweepEntry:
    """A sweep started from the editor: the job, and what it was started with."""

    tab: str
    job: SweepJob
    target: Target
    spec: str
    graph: Graph  # the copy it runs (a later edit of the page's graph does not reach it)
    sweep: Sweep
    batch: int | None
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None  # how long it ran, once it ended

    @property
    def elapsed(self) -> float:
        return self.seconds if self.seconds is not None else time.monotonic() - self.started

    @property
    def running(self) -> bool:
        return self.job.running

    @property
    def folder(self) -> Path:
        return self.job.out

    def progress(self) -> SweepProgress:
        return self.job.progress()


def new_sweep_folder(out_dir: Path, name: str) -> Path:
    """A new, empty ``out/sweeps/<graph name>-NNN`` folder (the next free number)."""
    parent = Path(out_dir) / SWEEPS_DIR
    stem = slug(name)[:40]
    try:
        parent.mkdir(parents=True, exist_ok=True)
        numbers = [int(m.group(1)) for p in parent.iterdir()
                   if p.name.startswith(f"{stem}-") and (m := _FOLDER.search(p.name))]
        number = max(numbers, default=0) + 1
        while True:
            folder = parent / f"{stem}-{number:03d}"
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                number += 1
    except OSError as exc:
        raise GraphError([problem("sweep", f"cannot make a sweep folder in {parent}: "
                                  f"{exc.strerror or exc}")]) from None


def start_sweep(tab: str, graph: Graph, target: Target, text: str, batch: int | None,
                out_dir: Path, workspace: Path, inputs: Iterable[Path] = (),
                name: str | None = None, **options: Any) -> SweepEntry:
    """Check the graph and the SPEC, then run the sweep in the background into a new folder
    ``out_dir/sweeps/<name>-NNN`` (``name``: default the graph's name). A GraphError (its
    first line is shown) when anything is wrong or a run or sweep is already going on in
    this process. ``options`` go to :meth:`Graph.start_sweep` (listener, scheduler)."""
    reason = jobs.busy(tab)  # checked again when it starts; this spares the checks below
    if reason:
        raise GraphError([problem("busy", reason)])
    graph = graph.copy()
    inputs = list(inputs)
    problems = blocking_problems(graph, None, inputs)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise GraphError([problem("sweep", f"the graph cannot run yet: {problems[0]}{more}")])
    preview = preview_spec(graph, target, text, workspace)
    if preview.sweep is None:
        raise GraphError([problem("sweep", preview.error or f"type the values for "
                                  f"{target.key} first")])
    return _start(tab, graph, target, text, preview.sweep, batch,
                  lambda: new_sweep_folder(out_dir, name or graph.doc.name or "graph"),
                  inputs, options)


def resume_sweep(entry: SweepEntry, inputs: Iterable[Path] = (), **options: Any
                 ) -> SweepEntry:
    """Run what a cancelled or failed sweep left undone, into its folder (finished
    variations are skipped)."""
    return _start(entry.tab, entry.graph, entry.target, entry.spec, entry.sweep, entry.batch,
                  lambda: entry.folder, inputs, options)


def _start(tab: str, graph: Graph, target: Target, text: str, sweep: Sweep,
           batch: int | None, folder_of: Callable[[], Path], inputs: Iterable[Path],
           options: dict[str, Any]) -> SweepEntry:
    made: list[SweepEntry] = []
    theirs = options.pop("listener", None)

    def listen(event: Any) -> None:  # on the sweep's thread
        if isinstance(event, SweepFinished) and made:
            made[0].seconds = event.seconds
        if theirs is not None:
            theirs(event)

    def begin() -> SweepEntry:
        folder = folder_of()
        try:
            job = SweepJob(prepare(graph, sweep, folder, batch=batch), listen,
                           inputs=list(inputs), **options)
        except BaseException:
            _remove_if_empty(folder)
            raise
        made.append(SweepEntry(tab, job, target, text, graph, sweep, batch))
        job.start()
        return made[0]

    return jobs.start("sweep", tab, begin)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


# the grid -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One variation in the results grid."""

    index: int
    label: str  # the swept value
    status: str  # done | failed | skipped (done by an earlier run into the folder)
    image: Path | None = None  # the first PNG it wrote
    more: int = 0  # other PNGs it wrote
    error: str = ""


def grid_cells(rows: Iterable[dict[str, Any]], folder: Path, key: str) -> list[Cell]:
    """Manifest rows as grid cells, in sweep order. Only PNGs inside ``folder`` are shown
    (a row read back from disk could name any path)."""
    base = Path(folder).resolve()
    cells = []
    for row in sorted(rows, key=lambda r: r["index"]):
        pngs = [p for p in (_inside(base, f) for f in row.get("files", []))
                if p is not None and p.suffix.lower() == ".png"]
        value = row.get("set", {}).get(key)
        cells.append(Cell(row["index"], value_label(value), str(row.get("status", "")),
                          pngs[0] if pngs else None, max(len(pngs) - 1, 0),
                          one_line(row.get("error", ""))))
    return cells


def _inside(base: Path, name: object) -> Path | None:
    if not isinstance(name, str):
        return None
    path = (base / name).resolve()
    return path if path.is_relative_to(base) and path.is_file() else None


def thumbnail(path: Path) -> bytes | None:
    """A small JPEG of a PNG file (None when it is not a readable PNG within the limits);
    kept while the file is unchanged, so polling the grid does not decode images again."""
    try:
        info = path.stat()
    except OSError:
        return None
    return _thumbnail(str(path), info.st_mtime_ns, info.st_size)


@lru_cache(maxsize=256)
def _thumbnail(path: str, _mtime_ns: int, size: int) -> bytes | None:
    lim = limits()
    if size > lim.max_image_file_bytes:
        return None
    try:
        with open_regular(Path(path)) as handle, PILImage.open(handle, formats=["PNG"]) as img:
            if img.width * img.height > lim.max_pixels or max(img.size) > lim.max_side:
                return None
            img.thumbnail((THUMB_SIDE, THUMB_SIDE))
            out = io.BytesIO()
            img.convert("RGB").save(out, format="JPEG", quality=88)
            return out.getvalue()
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError):
        return None


def progress_words(progress: SweepProgress, seconds: float | None = None) -> str:
    """One line: how the sweep goes or how it ended (the bar shows done / total)."""
    rows = progress.rows
    done = sum(r["status"] == "done" for r in rows)
    failed = sum(r["status"] == "failed" for r in rows)
    skipped = sum(r["status"] == "skipped" for r in rows)
    counts = f"{done} done, {failed} failed" + (f", {skipped} done earlier" if skipped else "")
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    if progress.running:
        return f"running: {counts}" + (f", {seconds:.0f} s so far" if seconds is not None
                                       else "")
    if progress.error is not None:
        lines = getattr(progress.error, "lines", None)
        what = lines()[0] if callable(lines) and lines() else \
            f"{type(progress.error).__name__}: {progress.error}"
        return one_line(f"the sweep stopped: {what}")
    if progress.finished < progress.total:
        left = progress.total - progress.finished
        return f"cancelled: {counts}, {left} not run{took}; Resume runs the rest"
    return f"finished: {counts}{took}"


def preview_key(doc: GraphDoc, target: Target, text: str, workspace: Path) -> str:
    """What a preview depends on: the node's type and params, the SPEC, and the @FILE's
    size and time (a preview is computed again only when one of them changed)."""
    entry = doc.nodes.get(target.node)
    stamp = ""
    if text.startswith("@"):
        try:
            info = (Path(workspace) / text[1:]).resolve().stat()
            stamp = f"{info.st_mtime_ns}:{info.st_size}"
        except (OSError, ValueError):
            stamp = "unreadable"
    what = [target.key, entry.type if entry else None, entry.params if entry else None,
            text, stamp]
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode(
        "utf-8", "surrogatepass")).hexdigest()
