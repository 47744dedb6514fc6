"""`graphkit --version`, and "did you mean" for mistyped node types, params, ports and ids."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from graphkit.errors import GraphError
from graphkit.graph import GraphDoc
from graphkit.registry import registry
from graphkit.suggest import did_you_mean
from graphkit.validate import check

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "graphkit", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_version_prints_the_installed_version() -> None:
    proc = cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"graphkit {version('graphkit')}"


def test_did_you_mean_picks_the_closest_name_or_nothing() -> None:
    assert did_you_mean("mask.gorw", ["mask.grow", "mask.invert", "image.load"]) == \
        "did you mean mask.grow?"
    assert did_you_mean("zzz", ["mask.grow", "image.load"]) == ""
    assert did_you_mean("x", []) == ""


MASK_GRAPH: dict[str, Any] = {
    "photo": {"type": "image.load", "params": {"path": "inputs/photo.png"}},
    "region": {"type": "mask.region", "params": {"shape": "ellipse", "box": [1, 1, 9, 9]},
               "inputs": {"image": "photo.image"}},
    "grow": {"type": "mask.grow", "params": {"pixels": 3}, "inputs": {"mask": "region.mask"}},
    "view": {"type": "mask.to_image", "inputs": {"mask": "grow.mask"}},
    "save": {"type": "image.save", "inputs": {"image": "view.image"}},
}


def _problems(nodes: dict[str, Any]) -> dict[str, str]:
    checked = check(GraphDoc.model_validate({"nodes": nodes}), registry())
    return {f"{p.node}.{p.field}": p.message for p in checked.problems}


@pytest.mark.parametrize(("node_id", "change", "where", "hint"), [
    ("grow", {"type": "mask.gorw"}, "grow.type", "did you mean mask.grow?"),
    ("grow", {"params": {"pixles": 3}}, "grow.pixles", "did you mean pixels?"),
    ("grow", {"inputs": {"maks": "region.mask"}}, "grow.maks", "did you mean mask?"),
    ("grow", {"inputs": {"mask": "regoin.mask"}}, "grow.mask", "did you mean region?"),
    ("grow", {"inputs": {"mask": "region.msak"}}, "grow.mask", "did you mean mask?"),
])
def test_validation_problems_suggest_the_near_name(
    node_id: str, change: dict[str, Any], where: str, hint: str
) -> None:
    nodes = json.loads(json.dumps(MASK_GRAPH))
    nodes[node_id].update(change)
    problems = _problems(nodes)
    assert where in problems, problems
    assert problems[where].endswith(hint), problems[where]


def test_validate_cli_prints_the_suggestion(tmp_path: Path) -> None:
    nodes = json.loads(json.dumps(MASK_GRAPH))
    nodes["grow"]["type"] = "mask.gorw"
    graph = tmp_path / "typo.json"
    graph.write_text(json.dumps({"nodes": nodes}))
    (tmp_path / "inputs").mkdir()
    shutil.copy(ROOT / "graphs" / "inputs" / "photo.png", tmp_path / "inputs" / "photo.png")
    proc = cli("validate", graph)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: {graph}: node 'grow' 'type': unknown node type 'mask.gorw'; no installed "
        "node pack declares it; did you mean mask.grow?"]


@pytest.mark.parametrize(("override", "hint"), [
    ("gorw.pixels=3", "node 'gorw' 'pixels': no such node in the graph; did you mean grow?"),
    ("grow.pixles=3", "node 'grow' 'pixles': unknown param (known: pixels); "
                      "did you mean pixels?"),
])
def test_set_errors_suggest_the_near_name(override: str, hint: str) -> None:
    graph = ROOT / "graphs" / "mask_composite.json"
    proc = cli("run", graph, "--set", override, "--out", "unused")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"error: {graph}: {hint}"], proc.stderr


def test_unknown_node_in_an_override_from_python_names_the_near_node() -> None:
    import graphkit

    g = graphkit.load(ROOT / "graphs" / "mask_composite.json")
    with pytest.raises(GraphError, match="did you mean grow"):
        g.apply_overrides(["gorw.pixels=3"])
