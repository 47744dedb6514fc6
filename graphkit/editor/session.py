"""One browser tab's editor: the graph, its file, undo history, selection, last run, autosave.

Each tab has an id (kept in the page address as ``?tab=...``) and its own autosave in
``<workspace>/.graphkit-editor/tabs/<id>.json``: reloading the page brings that tab's work
back, and two tabs never overwrite each other's autosave. A graph file opened with
``graphkit edit FILE`` is saved in place; saving notices when the file changed on disk since
it was read (another tab, another program) and asks before overwriting.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphkit.api import Graph
from graphkit.context import Sandbox
from graphkit.editor import jobs, layout, ops
from graphkit.editor.files import (
    Opened,
    examples_dir,
    load_session,
    open_path,
    read_digest,
    save_session,
    workspace_file,
    write_graph,
)
from graphkit.editor.history import History
from graphkit.editor.runner import RunRecord, blocking_problems, start_run
from graphkit.errors import GraphError, Problem, problem
from graphkit.graph import GraphDoc, copy_doc, doc_from_raw, dumps_doc
from graphkit.inputs import input_problems
from graphkit.registry import Registry, registry
from graphkit.validate import Checked

WORKSPACE_ENV = "GRAPHKIT_EDITOR_WORKSPACE"
FILE_ENV = "GRAPHKIT_EDITOR_FILE"
STATE_DIR = ".graphkit-editor"
TAB_ID = re.compile(r"[a-z0-9]{6,32}")
KEEP_TABS = 50


def workspace_from_env() -> Path:
    """The workspace the launcher chose, else the current folder."""
    raw = os.environ.get(WORKSPACE_ENV)
    return (Path(raw).expanduser() if raw else Path.cwd()).resolve()


def launch_file_from_env() -> Path | None:
    raw = os.environ.get(FILE_ENV)
    return Path(raw) if raw else None


def new_tab_id() -> str:
    return secrets.token_hex(8)


def tabs_dir(workspace: Path) -> Path:
    return workspace / STATE_DIR / "tabs"


def tab_file(workspace: Path, tab: str) -> Path:
    return tabs_dir(workspace) / f"{tab}.json"


@dataclass
class Editor:
    """Everything one tab shows; kept in ``st.session_state`` and autosaved after each edit."""

    workspace: Path
    opened: Opened
    tab: str
    reg: Registry = field(default_factory=registry)
    selected: str | None = None  # the node the inspector shows
    canvas_selection: list[str] = field(default_factory=list)
    revision: int = 0  # bumped when widgets must re-read values from the document
    doc_rev: int = 0  # bumped on every change of the document (the canvas follows it)
    opened_count: int = 0  # bumped when another graph is opened
    run: RunRecord | None = None
    run_doc_text: str = ""
    notices: list[tuple[str, str]] = field(default_factory=list)
    field_errors: dict[tuple[str, str], str] = field(default_factory=dict)
    history: History = field(default_factory=lambda: History(""))
    acked: dict[str, int] = field(default_factory=dict)  # canvas client -> last edit applied
    clipboard: list[dict[str, Any]] = field(default_factory=list)
    focus: str | None = None  # a node just added (the canvas brings it into view)
    conflict: bool = False  # the last save found the file changed on disk
    asking_name: bool = False  # a save needs a name first
    saved_text: str = ""  # the document as last read from or written to its file
    _autosaved: str = ""
    _checked: tuple[tuple[str, str], Checked] | None = None

    # starting -----------------------------------------------------------------------------
    @classmethod
    def start(cls, workspace: Path | None = None, tab: str | None = None,
              launch_file: Path | None = None, copy_of: str | None = None) -> Editor:
        """The editor of tab ``tab``: its autosave when there is one; else the launch file,
        else the graph of the most recent tab (a restarted editor goes on where it was).
        With ``copy_of`` (a page duplicating another tab's page), a new tab starting from
        that tab's autosave, which it then leaves alone."""
        workspace = (workspace or workspace_from_env()).resolve()
        copied = copy_of if copy_of and TAB_ID.fullmatch(copy_of) else None
        tab = tab if tab and TAB_ID.fullmatch(tab) and copied is None else new_tab_id()
        launch_file = launch_file if launch_file is not None else launch_file_from_env()
        opened = load_session(tab_file(workspace, copied or tab))
        recovered = opened is not None
        notice = None
        if opened is None and launch_file is not None:
            try:
                opened = open_path(launch_file)
            except GraphError as exc:
                notice = exc.lines()[0]
        if opened is None:
            opened = _latest_session(workspace)
        if opened is None:
            opened = Opened(GraphDoc(name="untitled"), workspace, "")
        editor = cls(workspace, opened, tab)
        layout.place_missing(opened.doc, editor.reg)
        editor.saved_text = _saved_text(opened, recovered, editor.reg)
        editor.history.reset(dumps_doc(opened.doc))
        editor._autosaved = "" if not recovered or copied else editor._session_text()
        editor.selected = next(iter(opened.doc.nodes), None)
        if notice:
            editor.notify("error", notice)
        if copied:
            editor.notify("info", "this page is a copy of another open page of the editor: "
                          "it got a tab of its own, so their edits autosave apart")
        _prune_tabs(workspace)
        return editor

    # the document -------------------------------------------------------------------------
    @property
    def doc(self) -> GraphDoc:
        return self.opened.doc

    @property
    def out_dir(self) -> Path:
        """Where runs write their files: ``out/`` in the workspace."""
        return self.workspace / "out"

    @property
    def view_key(self) -> str:
        """Names the graph being edited in this tab (the canvas keeps its view under it)."""
        o = self.opened
        where = str(o.file) if o.file is not None else f"{o.source}#{self.opened_count}"
        return hashlib.sha1(f"{self.tab}\0{where}".encode()).hexdigest()[:16]

    @property
    def text(self) -> str:
        """The document's JSON text as of the last commit (each page run starts with one)."""
        return self.history.committed

    @property
    def modified(self) -> bool:
        """Whether the document differs from its file (always, for a graph with no file)."""
        return self.opened.file is None or self.text != self.saved_text

    def graph(self) -> Graph:
        return Graph(self.doc, self.opened.base_dir, self.reg)

    def checked(self) -> Checked:
        """Every problem of the document, computed again only when it changed."""
        key = (self.doc.model_dump_json(), str(self.opened.base_dir))
        if self._checked is None or self._checked[0] != key:
            self._checked = (key, self.graph().checked())
        return self._checked[1]

    def problems(self) -> list[Problem]:
        """Every problem a run would refuse: the document's, and input files that cannot be
        read from the folders runs read from (looked up again each time: files come and go)."""
        checked = self.checked()
        return [*checked.problems, *input_problems(checked, Sandbox(self.input_dirs(), None))]

    def commit(self) -> bool:
        """Record the document's current state as one undo step when it changed."""
        if self.history.commit(dumps_doc(self.doc)):
            self.doc_rev += 1
            return True
        return False

    def _set_doc_text(self, text: str) -> None:
        self.opened.doc = doc_from_raw(json.loads(text))
        self.doc_rev += 1
        self.canvas_selection = [n for n in self.canvas_selection if n in self.doc.nodes]
        if self.selected not in self.doc.nodes:
            self.selected = self.canvas_selection[-1] if self.canvas_selection else None
        self.touched()

    def undo(self) -> None:
        self.commit()
        text = self.history.undo()
        if text is None:
            self.notify("info", "nothing to undo")
        else:
            self._set_doc_text(text)

    def redo(self) -> None:
        self.commit()
        text = self.history.redo()
        if text is None:
            self.notify("info", "nothing to redo")
        else:
            self._set_doc_text(text)

    def replace(self, opened: Opened) -> None:
        """Edit another graph from now on. The last run's results go (a run in flight is
        cancelled), and so does the undo history."""
        if self.run is not None and self.run.running:
            self.run.control.cancel()
            self.notify("info", "the run of the previous graph was cancelled")
        self.run = None
        self.run_doc_text = ""
        self.opened = opened
        layout.place_missing(opened.doc, self.reg)
        self.saved_text = dumps_doc(opened.doc) if opened.file is not None else ""
        self.history.reset(dumps_doc(opened.doc))
        self.selected = next(iter(opened.doc.nodes), None)
        self.canvas_selection = []
        self.field_errors.clear()
        self.conflict = False
        self.asking_name = False
        self.focus = None
        self.revision += 1
        self.opened_count += 1
        self.doc_rev += 1
        self.autosave()

    def touched(self) -> None:
        """The document changed outside the widgets: widgets must show the new values."""
        self.revision += 1

    def notify(self, level: str, text: str) -> None:
        self.notices.append((level, text))

    def fail(self, exc: GraphError) -> None:
        for line in exc.lines():
            self.notify("error", line)

    # saving -------------------------------------------------------------------------------
    def save(self) -> bool:
        """Ctrl+S: write the graph file in place, or ask for a name when it has none."""
        if self.opened.file is None:
            self.asking_name = True
            self.notify("info", "name this graph to save it in the workspace")
            return False
        return self.save_in_place()

    def save_in_place(self, overwrite: bool = False) -> bool:
        """Write the graph file atomically; refuse (and flag a conflict) when the file on
        disk is no longer the one read or written last, unless ``overwrite``."""
        path = self.opened.file
        assert path is not None
        on_disk = read_digest(path)
        if not overwrite and on_disk is not None and on_disk != self.opened.digest:
            self.conflict = True  # the page asks: reload or overwrite
            return False
        return self._write(path)

    def save_as(self, name: str) -> bool:
        """Save under a new name in the workspace and edit that file from now on."""
        try:
            path = workspace_file(self.workspace, name)
            if path.exists() and path.resolve() != (self.opened.file or Path()).resolve():
                raise GraphError([problem("name", f"'{path.name}' exists in the workspace; "
                                          "choose another name")])
        except GraphError as exc:
            self.fail(exc)
            return False
        if not self._write(path):
            return False
        self.opened.file = path.resolve()
        self.opened.base_dir = path.resolve().parent
        self.opened.source = path.name
        self.asking_name = False
        return True

    def _write(self, path: Path) -> bool:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = self.graph().dumps()
            self.opened.digest = write_graph(path, text)
        except (OSError, ValueError) as exc:
            self.notify("error", f"could not save {path}: {getattr(exc, 'strerror', None) or exc}")
            return False
        self.saved_text = dumps_doc(self.doc)
        self.conflict = False
        self.notify("success", f"saved {path}")
        return True

    def reload_from_disk(self) -> None:
        """Replace the document with the file's current content (undo brings back yours)."""
        path = self.opened.file
        if path is None:
            return
        try:
            fresh = open_path(path)
        except GraphError as exc:
            self.fail(exc)
            return
        self.commit()
        self.opened.doc = fresh.doc
        layout.place_missing(fresh.doc, self.reg)
        self.opened.digest = fresh.digest
        self.saved_text = dumps_doc(fresh.doc)
        self.conflict = False
        self.commit()
        self.canvas_selection = [n for n in self.canvas_selection if n in self.doc.nodes]
        if self.selected not in self.doc.nodes:
            self.selected = next(iter(self.doc.nodes), None)
        self.touched()
        self.notify("info", f"reloaded {path.name} from disk (Ctrl+Z brings your version back)")

    # autosave -----------------------------------------------------------------------------
    def _session_text(self) -> str:
        o = self.opened
        return f"{o.base_dir}\n{o.source}\n{o.file}\n{o.digest}\n{self.text}"

    @property
    def autosave_path(self) -> Path:
        return tab_file(self.workspace, self.tab)

    def autosave(self) -> bool:
        """Write this tab's autosave when anything in it changed since the last write."""
        self.commit()
        text = self._session_text()
        if text == self._autosaved:
            return False
        try:
            save_session(self.autosave_path, self.opened, self.text)
        except OSError as exc:
            self.notify("warning", f"autosave failed: {exc.strerror or exc}")
            return False
        self._autosaved = text
        return True

    # running ------------------------------------------------------------------------------
    def input_dirs(self) -> list[Path]:
        """Folders runs read input files from: the graph's, the workspace, the examples'."""
        dirs = [self.opened.base_dir, self.workspace, examples_dir()]
        return [d for d in dict.fromkeys(dirs) if d.is_dir()]

    def part_for(self, targets: list[str]) -> Graph:
        """The graph cut down to ``targets`` and everything they read from."""
        keep = set(targets)
        for node_id in targets:
            keep |= ops.upstream(self.doc, node_id)
        nodes = {k: v for k, v in self.doc.nodes.items() if k in keep}
        part = copy_doc(GraphDoc(name=self.doc.name, nodes=nodes))
        return Graph(part, self.opened.base_dir, self.reg)

    def start_run(self, targets: list[str] | None = None, background: bool = True) -> RunRecord:
        """Run the graph (or, for ``targets``, only what they need) in the background;
        a GraphError when a run or a sweep is going on in this process."""
        from graphkit.api import default_scheduler

        graph = self.part_for(targets) if targets else self.graph()
        self.run = jobs.start("run", self.tab, lambda: start_run(
            graph, self.out_dir, self.input_dirs(), default_scheduler(),
            background=background, targets=targets))
        self.commit()
        self.run_doc_text = self.text
        return self.run

    def run_graph(self, targets: list[str] | None = None) -> bool:
        """Start a run when nothing else runs (no run, no sweep, in any tab) and the part
        to run has no problems."""
        reason = jobs.busy(self.tab)
        if reason:
            self.notify("info", reason)
            return False
        graph = self.part_for(targets) if targets else self.graph()
        problems = blocking_problems(graph, targets, self.input_dirs())
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            self.notify("error", "the graph cannot run yet: "
                        + "; ".join(map(str, problems[:5])) + more)
            return False
        try:
            record = self.start_run(targets)
        except GraphError as exc:  # another tab started something meanwhile
            self.fail(exc)
            return False
        if record.thread is not None:
            record.thread.join(timeout=0.25)  # small graphs finish before the page redraws
        return True

    @property
    def run_is_current(self) -> bool:
        """Whether the last run was of the document as it is now."""
        return self.run is not None and self.run_doc_text == self.text


def _saved_text(opened: Opened, recovered: bool, reg: Registry) -> str:
    """The document as its file holds it ("" when it has none or the file changed since)."""
    if opened.file is None:
        return ""
    if not recovered:
        return dumps_doc(opened.doc)
    if read_digest(opened.file) != opened.digest:
        return ""
    try:
        on_disk = open_path(opened.file).doc
    except GraphError:
        return ""
    layout.place_missing(on_disk, reg)
    return dumps_doc(on_disk)


def _latest_session(workspace: Path) -> Opened | None:
    folder = tabs_dir(workspace)
    if not folder.is_dir():
        return None
    found = sorted(folder.glob("*.json"), key=_mtime, reverse=True)
    for path in found[:5]:
        opened = load_session(path)
        if opened is not None:
            return opened
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _prune_tabs(workspace: Path) -> None:
    """Keep the autosaves of the ``KEEP_TABS`` most recent tabs."""
    folder = tabs_dir(workspace)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json"), key=_mtime, reverse=True)[KEEP_TABS:]:
        try:
            path.unlink()
        except OSError:
            pass
