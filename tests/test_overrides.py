"""``--set NODE.PARAM=VALUE``: VALUE as JSON, text for string params."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_fixture import shared_tiny_root

import graphkit
from graphkit.errors import GraphError
from graphkit.overrides import parse_value, split_override

TEXT = {"type": "string", "maxLength": 4000}
OPTIONAL_TEXT = {"anyOf": [{"type": "string"}, {"type": "null"}]}
INTEGER = {"type": "integer", "minimum": 0}


@pytest.mark.parametrize(("raw", "schema", "expected"), [
    ("123", TEXT, "123"),
    ("1.5", TEXT, "1.5"),
    ("true", TEXT, "true"),
    ("[1, 2]", TEXT, "[1, 2]"),
    ('"quoted"', TEXT, "quoted"),
    ("a red fox", TEXT, "a red fox"),
    ("null", OPTIONAL_TEXT, None),
    ("123", OPTIONAL_TEXT, "123"),
    ("123", INTEGER, 123),
    ("[1, 2]", None, [1, 2]),
    ("not json", INTEGER, "not json"),
])
def test_parse_value(raw: str, schema: dict | None, expected: object) -> None:
    assert parse_value(raw, schema) == expected


def test_split_override() -> None:
    assert split_override("gen.seed=3=4") == ("gen", "seed", "3=4")
    for bad in ("gen.seed", "seed=3", ".seed=3", "gen.=3"):
        with pytest.raises(GraphError):
            split_override(bad)


def test_number_for_a_text_param_is_the_text(graphs_dir: Path) -> None:
    graph = graphkit.load(graphs_dir / "sdxl_turbo.json")
    graph.apply_overrides(["prompt.text=123", "gen.seed=7"])
    assert graph.doc.nodes["prompt"].params["text"] == "123"
    assert graph.doc.nodes["gen"].params["seed"] == 7
    assert graph.validate() == []


def test_cli_run_with_a_number_as_prompt_text(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`graphkit run ... --set prompt.text=123` runs, and the PNG's graph has the text "123"."""
    from graphkit.pngmeta import read_graph_text

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "GRAPHKIT_TINY_DIR": str(shared_tiny_root(tmp_path_factory)),
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "graphkit", "run", str(root / "graphs" / "sdxl_turbo.json"),
         "--models", "tiny", "--out", str(tmp_path), "--set", "prompt.text=123",
         "--set", "gen.width=64", "--set", "gen.height=64"],
        capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    graph = json.loads(read_graph_text(tmp_path / "lighthouse.png"))
    assert graph["nodes"]["prompt"]["params"]["text"] == "123"
