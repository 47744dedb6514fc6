"""Input files a graph names (params declared as ``file_params``), checked before a run.

Like a missing model, a missing or forbidden input image is found before anything runs:
``validate``, ``check`` and ``run`` all report it as a problem of the node's param. Only
where the file is and whether it may be read is decided here; its contents are the
node's business when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from graphkit.context import InputFileMissing, NodeInputError, Sandbox
from graphkit.errors import Problem, problem
from graphkit.validate import Checked, dependency_graph


@dataclass(frozen=True)
class InputFile:
    """One file param of one node: where it was found, or why it cannot be read."""

    node: str
    param: str
    path: Path | None
    error: str | None = None
    missing: bool = False

    @property
    def status(self) -> str:
        """``found: PATH``, ``missing: why`` or ``refused: why``."""
        if self.path is not None:
            return f"found: {self.path}"
        return f"{'missing' if self.missing else 'refused'}: {self.error}"


def input_files(checked: Checked, sandbox: Sandbox,
                targets: list[str] | None = None) -> list[InputFile]:
    """Every file param of the nodes a run of ``targets`` (default: all) would need."""
    needed = set(checked.nodes)
    if targets is not None:
        graph = dependency_graph(checked.nodes)
        needed = {t for t in targets if t in checked.nodes}
        needed |= {a for t in needed for a in nx.ancestors(graph, t)}
    found = []
    for node_id in sorted(needed):
        node = checked.nodes[node_id]
        for name in node.spec.file_params:
            value = node.params.get(name)
            if not isinstance(value, str):
                continue  # a missing or mistyped param is a problem of its own already
            try:
                found.append(InputFile(node_id, name, sandbox.resolve_input(value, name)))
            except NodeInputError as exc:
                missing = isinstance(exc, InputFileMissing)
                found.append(InputFile(node_id, name, None, exc.message, missing))
    return found


def input_problems(checked: Checked, sandbox: Sandbox,
                   targets: list[str] | None = None) -> list[Problem]:
    """A problem for each input file a run could not read."""
    return [problem("input_file", f.error or "", f.node, f.param)
            for f in input_files(checked, sandbox, targets) if f.path is None]
