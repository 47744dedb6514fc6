"""One browser session's editor state: the graph being edited, selection, last run, autosave."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from graphkit.api import Graph
from graphkit.editor.files import (
    Opened,
    default_workspace,
    examples_dir,
    load_session,
    save_session,
)
from graphkit.editor.runner import RunRecord, start_run
from graphkit.errors import GraphError
from graphkit.graph import GraphDoc, dumps_doc
from graphkit.registry import Registry, registry
from graphkit.validate import Checked

WORKSPACE_ENV = "GRAPHKIT_EDITOR_WORKSPACE"
AUTOSAVE_NAME = "autosave.json"


def workspace_from_env() -> Path:
    raw = os.environ.get(WORKSPACE_ENV)
    return Path(raw).expanduser() if raw else default_workspace()


@dataclass
class Editor:
    """Everything the app shows; kept in ``st.session_state`` and autosaved after each edit."""

    workspace: Path
    opened: Opened
    reg: Registry = field(default_factory=registry)
    selected: str | None = None
    revision: int = 0  # bumped when widgets must re-read values from the document
    opened_count: int = 0  # bumped when another graph is opened
    run: RunRecord | None = None
    run_doc_text: str = ""
    notices: list[tuple[str, str]] = field(default_factory=list)
    canvas_click: str | None = None  # the canvas's last reported click
    canvas_epoch: int = 0
    field_errors: dict[tuple[str, str], str] = field(default_factory=dict)
    _saved_text: str = ""

    @classmethod
    def start(cls, workspace: Path | None = None) -> Editor:
        """Restore the autosaved session of ``workspace`` (or begin with an empty graph)."""
        workspace = workspace or workspace_from_env()
        opened = load_session(workspace / AUTOSAVE_NAME)
        if opened is None:
            opened = Opened(GraphDoc(name="untitled"), workspace, "")
        editor = cls(workspace, opened)
        editor._saved_text = dumps_doc(opened.doc)
        editor.selected = next(iter(opened.doc.nodes), None)
        return editor

    @property
    def doc(self) -> GraphDoc:
        return self.opened.doc

    @property
    def out_dir(self) -> Path:
        return self.workspace / "out"

    def graph(self) -> Graph:
        return Graph(self.doc, self.opened.base_dir, self.reg)

    def checked(self) -> Checked:
        return self.graph().checked()

    def replace(self, opened: Opened) -> None:
        """Edit another graph from now on (a run in flight keeps going)."""
        self.opened = opened
        self.selected = next(iter(opened.doc.nodes), None)
        self.revision += 1
        self.opened_count += 1
        self.autosave()

    def touched(self) -> None:
        """The document changed outside the widgets: widgets must show the new values."""
        self.revision += 1

    def notify(self, level: str, text: str) -> None:
        self.notices.append((level, text))

    def fail(self, exc: GraphError) -> None:
        for line in exc.lines():
            self.notify("error", line)

    def autosave(self) -> bool:
        """Write the session file when the document changed since the last write."""
        text = dumps_doc(self.doc)
        if text == self._saved_text:
            return False
        try:
            save_session(self.workspace / AUTOSAVE_NAME, self.opened)
        except OSError as exc:
            self.notify("warning", f"autosave failed: {exc}")
            return False
        self._saved_text = text
        return True

    def input_dirs(self) -> list[Path]:
        dirs = [self.workspace / "inputs", examples_dir()]
        return [d for d in dirs if d.is_dir()]

    def start_run(self, targets: list[str] | None = None, background: bool = True) -> RunRecord:
        from graphkit.api import default_scheduler

        self.run = start_run(self.graph(), self.out_dir, self.input_dirs(), default_scheduler(),
                             background=background, targets=targets)
        self.run_doc_text = dumps_doc(self.doc)
        return self.run

    @property
    def run_is_current(self) -> bool:
        """Whether the last run was of the document as it is now."""
        return self.run is not None and self.run_doc_text == dumps_doc(self.doc)
