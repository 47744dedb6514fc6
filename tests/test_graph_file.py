"""The graph file: deterministic save, round trips, migrations, versions, atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from graphkit.api import Graph
from graphkit.cli import main
from graphkit.errors import GraphError
from graphkit.graph import (
    FORMAT,
    GraphDoc,
    doc_from_raw,
    dumps_doc,
    load_doc,
    migrate,
    parse_json,
    save_doc,
)
from graphkit.registry import Registry, node
from graphkit.types import Image, SavedFiles
from graphkit.validate import validate

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "graphs").glob("*.json"))


def reverse_keys(value: Any) -> Any:
    """The same JSON value with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {k: reverse_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reverse_keys(v) for v in value]
    return value


def key_paths(text: str) -> list[list[str]]:
    """The key order of every object in a JSON text, depth first."""
    orders: list[list[str]] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        orders.append([k for k, _ in pairs])
        return dict(pairs)

    json.loads(text, object_pairs_hook=hook)
    return orders


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_round_trip(path: Path, tmp_path: Path) -> None:
    """load -> save -> load gives the same document; saving twice gives the same bytes."""
    doc = load_doc(path)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    save_doc(doc, first)
    again = load_doc(first)
    assert again.model_dump() == doc.model_dump()
    save_doc(again, second)
    assert first.read_bytes() == second.read_bytes()
    assert json.loads(first.read_text()) == json.loads(dumps_doc(doc))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_saved_key_order_is_canonical(path: Path) -> None:
    """Top-level and node fields in a fixed order; node ids, params and inputs sorted."""
    raw = json.loads(path.read_text())
    text = dumps_doc(load_doc(path))
    top = key_paths(text)[-1]
    assert top == [k for k in ("format", "name", "nodes", "ui") if k in raw or k == "format"]
    saved = json.loads(text)
    assert list(saved["nodes"]) == sorted(raw["nodes"])
    field_order = ["type", "version", "pack", "params", "inputs"]
    for entry in saved["nodes"].values():
        keys = list(entry)
        assert keys == [k for k in field_order if k in keys]
        for sub in ("params", "inputs"):
            if sub in entry:
                assert list(entry[sub]) == sorted(entry[sub])
    assert text.endswith("\n") and "\n  \"nodes\": {\n" in text


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_saved_text_ignores_input_key_order(path: Path) -> None:
    """A file with its keys in another order saves to the same text."""
    raw = json.loads(path.read_text())
    shuffled = json.dumps(reverse_keys(raw))
    assert shuffled != json.dumps(raw)
    assert dumps_doc(doc_from_raw(parse_json(shuffled))) == dumps_doc(load_doc(path))


def test_graph_save_fills_versions_and_packs(graphs_dir: Path, tmp_path: Path) -> None:
    """Graph.save records each node's type version and pack, and stays stable."""
    graph = Graph.load(graphs_dir / "mask_composite.json")
    graph.save(tmp_path / "g.json")
    saved = json.loads((tmp_path / "g.json").read_text())
    for node_id, entry in saved["nodes"].items():
        spec = graph.registry.specs[entry["type"]]
        assert (entry["version"], entry["pack"]) == (spec.version, spec.pack), node_id
    reloaded = Graph.load(tmp_path / "g.json")
    reloaded.save(tmp_path / "h.json")
    assert (tmp_path / "g.json").read_bytes() == (tmp_path / "h.json").read_bytes()
    assert [p.code for p in reloaded.validate()] == ["input_file", "input_file"]
    assert reloaded.validate(inputs=[graphs_dir]) == []  # its images are found there


def test_migration_from_format_0() -> None:
    """Format 0 (a node list with ids, [node, port] links) becomes format 1."""
    old = {
        "format": "graphkit/0",
        "name": "old one",
        "nodes": [
            {"id": "p", "type": "text.prompt", "params": {"text": "cat"}},
            {"id": "img", "type": "image.load", "params": {"path": "a.png"}},
            {"id": "s", "type": "image.save", "inputs": {"image": ["img", "image"]}},
        ],
        "ui": {"note": "kept"},
    }
    doc = doc_from_raw(json.loads(json.dumps(old)))
    assert doc.format == FORMAT and doc.name == "old one"
    assert list(doc.nodes) == ["p", "img", "s"]
    assert doc.nodes["s"].inputs == {"image": "img.image"}
    assert doc.nodes["p"].params == {"text": "cat"}
    assert doc.ui == {"note": "kept"}
    assert migrate({"format": FORMAT, "nodes": {}}) == {"format": FORMAT, "nodes": {}}
    assert json.loads(dumps_doc(doc))["format"] == FORMAT


def test_format_0_file_loads_from_disk(tmp_path: Path) -> None:
    """load_doc migrates too."""
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": "graphkit/0", "nodes": [
        {"id": "a", "type": "image.load", "params": {"path": "x.png"}}]}))
    assert load_doc(path).nodes["a"].type == "image.load"


@pytest.mark.parametrize("fmt", ["graphkit/2", "other/1", "1"])
def test_unsupported_format(fmt: str) -> None:
    """An unknown format is one problem on the 'format' field naming it."""
    with pytest.raises(GraphError) as err:
        doc_from_raw({"format": fmt, "nodes": {}})
    (p,) = err.value.problems
    assert p.code == "format" and p.field == "format" and repr(fmt) in p.message


def test_structure_problems_name_node_and_field(tmp_path: Path) -> None:
    """Unknown keys and wrong shapes are reported with node and field, naming the file."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"nodes": {
        "a": {"type": "image.load", "colour": "red"},
        "b": {"type": "image.save", "inputs": {"image": 3}},
    }, "extra": 1}))
    with pytest.raises(GraphError) as err:
        load_doc(path)
    where = {(p.node, p.field) for p in err.value.problems}
    assert {("a", "colour"), ("b", "inputs.image"), (None, "extra")} <= where
    assert all(line.startswith(str(path)) for line in err.value.lines())
    with pytest.raises(GraphError, match="JSON object"):
        doc_from_raw([1, 2])


def test_unreadable_and_oversized_files(tmp_path: Path) -> None:
    """A missing file and a file over the size limit are reported, not raised raw."""
    with pytest.raises(GraphError, match="cannot read"):
        load_doc(tmp_path / "nope.json")
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"nodes": {}, "name": "x" * 200}))
    with pytest.raises(GraphError, match="limit"):
        load_doc(big, max_bytes=100)


def versioned_registry(version: str) -> Registry:
    reg = Registry()

    @node("demo.save", version=version, output_node=True, into=reg)
    def save(image: Image | None = None) -> SavedFiles:
        """Writes nothing."""
        return SavedFiles(())

    return reg


@pytest.mark.parametrize("saved", ["1.0.0", "1.2.0", "1.5.9"])
def test_same_major_version_loads(saved: str) -> None:
    """A graph saved with another minor or patch version of a node type loads."""
    reg = versioned_registry("1.2.0")
    doc = GraphDoc.model_validate({"nodes": {"s": {"type": "demo.save", "version": saved}}})
    assert validate(doc, reg) == []
    graph = Graph(doc, None, reg)
    assert json.loads(graph.dumps())["nodes"]["s"]["version"] == "1.2.0"


@pytest.mark.parametrize("saved", ["2.0.0", "0.9.0"])
def test_other_major_version_is_an_error(saved: str) -> None:
    """A different major version is refused, saying which versions are involved."""
    reg = versioned_registry("1.2.0")
    doc = GraphDoc.model_validate({"nodes": {"s": {"type": "demo.save", "version": saved}}})
    (p,) = validate(doc, reg)
    assert (p.code, p.node, p.field) == ("version", "s", "version")
    assert saved in p.message and "1.2.0" in p.message and "major" in p.message
    graph = Graph(doc, None, reg)
    assert json.loads(graph.dumps())["nodes"]["s"]["version"] == saved  # not silently upgraded


def test_malformed_version_string() -> None:
    reg = versioned_registry("1.0.0")
    doc = GraphDoc.model_validate({"nodes": {"s": {"type": "demo.save", "version": "one"}}})
    (p,) = validate(doc, reg)
    assert p.code == "version" and p.field == "version"


def test_schema_command_prints_valid_json_schema(
    capsys: pytest.CaptureFixture[str], graphs_dir: Path
) -> None:
    """``graphkit schema`` is a valid JSON Schema that accepts the examples, refuses junk."""
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in EXAMPLES:
        validator.validate(json.loads(path.read_text()))
    assert list(validator.iter_errors({"nodes": {"a": {"type": "x", "bogus": 1}}}))
    assert list(validator.iter_errors({"nodes": {"a": {}}}))


def test_atomic_save_keeps_old_file_when_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graphs_dir: Path
) -> None:
    """A write that fails before the rename leaves the old file and no temporary files."""
    target = tmp_path / "g.json"
    target.write_text("old contents\n")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        save_doc(load_doc(graphs_dir / "mask_composite.json"), target)
    assert target.read_text() == "old contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


WRITER = """
import os, sys, time
from pathlib import Path
from graphkit.fileio import atomic_write_text

def stall(src, dst):
    print("written", flush=True)
    time.sleep(60)

os.replace = stall
atomic_write_text(Path(sys.argv[1]), "new " * 1_000_000)
"""


def test_killed_writer_leaves_old_file(tmp_path: Path) -> None:
    """A writer killed after writing its data but before the rename leaves the old file."""
    target = tmp_path / "g.json"
    target.write_text("old contents\n")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "written"
        leftovers = [p for p in tmp_path.iterdir() if p.name != "g.json"]
        assert leftovers and leftovers[0].stat().st_size == len("new ") * 1_000_000
    finally:
        proc.kill()
        proc.wait()
    assert target.read_text() == "old contents\n"
