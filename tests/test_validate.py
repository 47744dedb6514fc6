"""Every check on a graph, all problems reported at once, each naming node and field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Toy

from graphkit.errors import GraphError, Problem
from graphkit.graph import GraphDoc, doc_from_raw, parse_json
from graphkit.limits import Limits
from graphkit.registry import registry
from graphkit.validate import check, validate


def problems_of(toy: Toy, nodes: dict[str, Any]) -> list[Problem]:
    return validate(GraphDoc.model_validate({"nodes": nodes}), toy.reg)


def by_node(problems: list[Problem]) -> dict[str, list[Problem]]:
    out: dict[str, list[Problem]] = {}
    for p in problems:
        out.setdefault(p.node or "", []).append(p)
    return out


OUT = {"type": "toy.sink", "inputs": {"image": "good.image"}}
GOOD = {"type": "toy.const", "params": {"value": 1.0}}

EVERYTHING_WRONG: dict[str, Any] = {
    "good": GOOD,
    "out": OUT,
    "unknown": {"type": "toy.nope"},
    "bounds": {"type": "toy.const", "params": {"value": 99.0}},
    "wrongtype": {"type": "toy.const", "params": {"size": "big"}},
    "extra": {"type": "toy.const", "params": {"colour": "red"}},
    "noinput": {"type": "toy.add"},
    "badport": {"type": "toy.add", "inputs": {"a": "good.image", "z": "good.image"}},
    "ghost": {"type": "toy.add", "inputs": {"a": "nobody.image"}},
    "noport": {"type": "toy.add", "inputs": {"a": "good.pixels"}},
    "badref": {"type": "toy.add", "inputs": {"a": "good"}},
    "lat": {"type": "toy.sdxl_latent"},
    "kdec": {"type": "toy.kandinsky_decode", "inputs": {"latent": "lat.latent"}},
    "anydec": {"type": "toy.any_decode", "inputs": {"latent": "lat.latent"}},
    "classes": {"type": "toy.add", "inputs": {"a": "lat.latent"}},
    "x": {"type": "toy.add", "inputs": {"a": "y.image"}},
    "y": {"type": "toy.add", "inputs": {"a": "x.image"}},
    "me": {"type": "toy.add", "inputs": {"a": "good.image", "b": "me.image"}},
    "bad id": {"type": "toy.const"},
}

EXPECTED = {
    # node: (code, field)
    "unknown": ("unknown_type", "type"),
    "bounds": ("bad_param", "value"),
    "wrongtype": ("bad_param", "size"),
    "extra": ("unknown_param", "colour"),
    "noinput": ("missing_input", "a"),
    "badport": ("unknown_input", "z"),
    "ghost": ("missing_node", "a"),
    "noport": ("missing_port", "a"),
    "badref": ("bad_link", "a"),
    "kdec": ("type_mismatch", "latent"),
    "classes": ("type_mismatch", "a"),
    "me": ("cycle", "b"),
    "bad id": ("node_id", None),
}


def test_every_problem_reported_at_once(toy: Toy) -> None:
    """One call reports each problem exactly once, naming its node and field."""
    problems = problems_of(toy, EVERYTHING_WRONG)
    found = by_node(problems)
    for node_id, (code, field) in EXPECTED.items():
        assert [(p.code, p.field) for p in found[node_id]] == [(code, field)], node_id
    cycles = [p for p in problems if p.code == "cycle"]
    assert len(cycles) == 2
    (xy,) = [p for p in cycles if p.node in ("x", "y")]
    assert xy.field == "a" and "x" in xy.message and "y" in xy.message
    assert {"good", "out", "lat", "anydec"}.isdisjoint(found)
    assert len(problems) == len(EXPECTED) + 1
    for p in problems:
        assert str(p).startswith(f"node '{p.node}'")


def test_problem_messages_are_specific(toy: Toy) -> None:
    """Messages say what is wrong: known names, types on both sides, the bad value."""
    found = {p.node: p for p in problems_of(toy, EVERYTHING_WRONG)}
    assert "known: value, size" in found["extra"].message
    assert "known: a, b" in found["badport"].message
    assert "99.0" in found["bounds"].message and "10" in found["bounds"].message
    assert "'big'" in found["wrongtype"].message
    assert "'nobody'" in found["ghost"].message
    assert "'pixels'" in found["noport"].message and "image" in found["noport"].message
    kdec = found["kdec"].message
    assert "Latent[space=sdxl]" in kdec and "Latent[space=kandinsky2.2]" in kdec
    assert "Latent" in found["classes"].message and "Image" in found["classes"].message
    assert "Image" in found["noinput"].message


@pytest.mark.parametrize(("value", "ok"), [(-10.0, True), (10.0, True), (10.5, False),
                                           (-11.0, False), (3, True), (True, False),
                                           ("1", False), (None, False)])
def test_param_bounds_and_types(toy: Toy, value: Any, ok: bool) -> None:
    """Bounds are inclusive; ints widen to float; strings, bools and null are refused."""
    nodes = {"good": {"type": "toy.const", "params": {"value": value}}, "out": OUT}
    problems = problems_of(toy, nodes)
    assert (problems == []) is ok
    if not ok:
        (p,) = problems
        assert (p.code, p.node, p.field) == ("bad_param", "good", "value")


def test_missing_required_param() -> None:
    """A param with no default must be set."""
    doc = GraphDoc.model_validate({"nodes": {"l": {"type": "image.load"}}})
    problems = validate(doc, registry())
    assert ("missing_param", "l", "path") in [(p.code, p.node, p.field) for p in problems]


def test_choice_param_refuses_other_values() -> None:
    doc = GraphDoc.model_validate({"nodes": {
        "l": {"type": "image.load", "params": {"path": "a.png"}},
        "r": {"type": "image.resize", "params": {"method": "lanczos"},
              "inputs": {"image": "l.image"}},
        "s": {"type": "image.save", "inputs": {"image": "r.image"}}}})
    (p,) = validate(doc, registry())
    assert (p.code, p.node, p.field) == ("bad_param", "r", "method")
    assert "bicubic" in p.message


def test_self_link_is_a_cycle(toy: Toy) -> None:
    """A node reading its own output is a cycle on that input."""
    nodes = {"good": GOOD, "me": {"type": "toy.add", "inputs": {"a": "me.image"}},
             "out": {"type": "toy.sink", "inputs": {"image": "me.image"}}}
    (p,) = problems_of(toy, nodes)
    assert (p.code, p.node, p.field) == ("cycle", "me", "a")
    assert "me -> me" in p.message


def test_no_output_node(toy: Toy) -> None:
    """A graph without an output node would do nothing: refused; so is an empty one."""
    (p,) = problems_of(toy, {"good": GOOD})
    assert p.code == "no_output" and "output node" in p.message
    (p,) = problems_of(toy, {})
    assert p.code == "no_output"


def test_valid_graph_has_order_and_resolved_params(toy: Toy) -> None:
    """A valid graph resolves params with defaults and orders sources first."""
    doc = GraphDoc.model_validate({"nodes": {
        "out": OUT, "good": GOOD,
        "sum": {"type": "toy.add", "inputs": {"a": "good.image", "b": "good.image"}}}})
    checked = check(doc, toy.reg)
    assert checked.ok
    assert checked.nodes["good"].params == {"value": 1.0, "size": 4}
    assert checked.nodes["sum"].links == {"a": ("good", "image"), "b": ("good", "image")}
    order = checked.order
    assert order.index("good") < order.index("out") and order.index("good") < order.index("sum")


def test_node_limit(toy: Toy) -> None:
    doc = GraphDoc.model_validate({"nodes": {f"c{i}": GOOD for i in range(5)}})
    (p,) = check(doc, toy.reg, Limits(max_nodes=4)).problems
    assert p.code == "limit" and "5" in p.message and p.field == "nodes"


def test_param_limits_are_checked_before_running(toy: Toy) -> None:
    """Sizes, steps and text lengths over the configured limits are refused, by field."""
    limits = Limits(max_side=64, max_steps=2, max_text_chars=5, max_pixels=1000)
    params = {"width": 65, "height": 10, "steps": 3, "text": "x" * 6}
    problems = limits.check_params("gen", params)
    fields = sorted(p.field for p in problems)
    assert fields == ["steps", "text", "width"]
    assert all(p.node == "gen" and p.code == "limit" for p in problems)
    assert not limits.check_params("gen", {"width": 64, "height": 10, "steps": 2, "text": "x"})
    (too_many,) = limits.check_params("gen", {"width": 50, "height": 50})
    assert too_many.field == "width" and "2500 pixels" in too_many.message


def test_limits_come_from_the_environment() -> None:
    limits = Limits.from_env({"GRAPHKIT_LIMIT_MAX_STEPS": "7"})
    assert limits.max_steps == 7 and limits.max_side == Limits().max_side
    with pytest.raises(ValueError, match="GRAPHKIT_LIMIT_MAX_SIDE"):
        Limits.from_env({"GRAPHKIT_LIMIT_MAX_SIDE": "big"})


def test_malformed_json_reports_line_and_column() -> None:
    """A syntax error names the line and column where it is."""
    text = '{\n  "nodes": {\n    "a": {"type": "x",}\n  }\n}\n'
    with pytest.raises(GraphError) as err:
        parse_json(text)
    (p,) = err.value.problems
    col = text.splitlines()[2].index("}") + 1
    assert p.code == "json" and f"line 3, column {col}" in p.message


def test_two_links_into_one_input_and_duplicate_node_ids() -> None:
    """Duplicate JSON keys are each reported, naming node and field."""
    text = """{
      "nodes": {
        "a": {"type": "image.load", "params": {"path": "x.png", "path": "y.png"}},
        "b": {"type": "image.composite",
              "inputs": {"background": "a.image", "background": "a.image"}},
        "c": {"type": "image.save", "inputs": {"image": "b.image"}},
        "c": {"type": "image.save", "inputs": {"image": "a.image"}}
      }
    }"""
    with pytest.raises(GraphError) as err:
        parse_json(text)
    found = {(p.code, p.node, p.field) for p in err.value.problems}
    assert found == {("duplicate_key", "a", "params.path"),
                     ("duplicate_key", "b", "inputs.background"),
                     ("duplicate_key", "c", None)}
    messages = {p.node: p.message for p in err.value.problems}
    assert "two links into one input" in messages["b"]
    assert "two nodes with one id" in messages["c"]


def test_examples_validate(graphs_dir: Any) -> None:
    """The shipped example graphs are valid."""
    for path in sorted(graphs_dir.glob("*.json")):
        doc = doc_from_raw(parse_json(path.read_text()))
        assert validate(doc, registry()) == [], path.name
        assert json.loads(path.read_text())["format"] == "graphkit/1"


@pytest.mark.parametrize("node_id", ["a\n", "gen\n", "x\r", "gen\u0663", "\u0661a"])
def test_node_ids_are_ascii_and_whole(toy: Toy, node_id: str) -> None:
    """A trailing newline or a non-ASCII digit does not slip through an anchored pattern."""
    problems = problems_of(toy, {node_id: GOOD, "out": {"type": "toy.sink",
                                                       "inputs": {"image": f"{node_id}.image"}}})
    assert ("node_id", node_id) in {(p.code, p.node) for p in problems}


@pytest.mark.parametrize("ref", ["good.image\n", "good.image\r\n", "good\n.image",
                                 "good.imag\u0665"])
def test_links_are_whole_ascii_matches(toy: Toy, ref: str) -> None:
    problems = problems_of(toy, {"good": GOOD, "out": {"type": "toy.sink",
                                                       "inputs": {"image": ref}}})
    assert [(p.code, p.node, p.field) for p in problems] == [("bad_link", "out", "image")]


@pytest.mark.parametrize("version", ["1.0.0\n", "\u0661.0.0", "1.0.\u0660", "\uff11.0.0",
                                     "1.0.0 "])
def test_saved_versions_are_plain_ascii_semver(toy: Toy, version: str) -> None:
    problems = problems_of(toy, {"good": {**GOOD, "version": version}, "out": OUT})
    assert [(p.code, p.node, p.field) for p in problems] == [("version", "good", "version")]
    assert "1.2.3" in problems[0].message


@pytest.mark.parametrize("name", ["image\n", "image\r\n", "imag\u00e9", "out\u0663"])
def test_save_names_are_whole_ascii_matches(name: str) -> None:
    doc = GraphDoc.model_validate({"nodes": {
        "m": {"type": "mask.region", "params": {"width": 8, "height": 8}},
        "i": {"type": "mask.to_image", "inputs": {"mask": "m.mask"}},
        "s": {"type": "image.save", "params": {"name": name}, "inputs": {"image": "i.image"}}}})
    (p,) = validate(doc, registry())
    assert (p.code, p.node, p.field) == ("bad_param", "s", "name")


def test_two_saves_with_one_name_are_a_problem_naming_both() -> None:
    nodes: dict[str, Any] = {
        "m": {"type": "mask.region", "params": {"width": 8, "height": 8}},
        "i": {"type": "mask.to_image", "inputs": {"mask": "m.mask"}},
        "first": {"type": "image.save", "params": {"name": "out"}, "inputs": {"image": "i.image"}},
        "second": {"type": "image.save", "params": {"name": "out"},
                   "inputs": {"image": "i.image"}},
        "third": {"type": "image.save", "inputs": {"image": "i.image"}},
        "fourth": {"type": "image.save", "params": {"name": "Image"},
                   "inputs": {"image": "i.image"}},
    }
    problems = validate(GraphDoc.model_validate({"nodes": nodes}), registry())
    found = {(p.code, p.node, p.field) for p in problems}
    assert found == {("duplicate_output", n, "name") for n in ("first", "second", "third",
                                                                "fourth")}
    by = {p.node: p.message for p in problems}
    assert "'second'" in by["first"] and "'first'" in by["second"]
    assert "'fourth'" in by["third"] and "'third'" in by["fourth"]  # 'image' = the default


def test_distinct_save_names_are_fine() -> None:
    nodes: dict[str, Any] = {
        "m": {"type": "mask.region", "params": {"width": 8, "height": 8}},
        "i": {"type": "mask.to_image", "inputs": {"mask": "m.mask"}},
        "a": {"type": "image.save", "params": {"name": "a"}, "inputs": {"image": "i.image"}},
        "b": {"type": "image.save", "params": {"name": "b"}, "inputs": {"image": "i.image"}},
    }
    assert validate(GraphDoc.model_validate({"nodes": nodes}), registry()) == []
