"""The Python API: build, edit, validate, run and save graphs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import Toy, chain
from PIL import Image as PILImage

import graphkit
from graphkit.api import Graph
from graphkit.errors import GraphError
from graphkit.scheduler import Scheduler


def test_build_run_and_save_from_scratch(tmp_path: Path, scheduler: Scheduler) -> None:
    """add_node + connect builds a runnable graph; its saved PNG matches the drawn mask."""
    graph = Graph(base_dir=tmp_path)
    graph.add_node("region", "mask.region",
                   {"width": 40, "height": 30, "shape": "rectangle", "box": [5, 6, 25, 20]})
    graph.add_node("view", "mask.to_image")
    graph.add_node("save", "image.save", {"name": "rect"})
    graph.connect("region.mask", "view.mask")
    graph.connect("view.image", "save.image")
    assert graph.validate() == []
    result = graph.run(tmp_path / "out", device="cpu", scheduler=scheduler)
    assert result.ok and result.executed == ["region", "view", "save"]
    mask = result.value("region").alpha
    with PILImage.open(tmp_path / "out" / "rect.png") as img:
        stored = np.asarray(img.convert("L"), dtype=np.float32) / 255
    assert np.allclose(stored, mask[0, 0].numpy())
    graph.save(tmp_path / "g.json")
    again = graphkit.load(tmp_path / "g.json")
    assert again.doc.model_dump() == graph.doc.model_dump()


def test_edit_errors(toy: Toy) -> None:
    graph = toy.graph(chain(1))
    with pytest.raises(GraphError) as err:
        graph.add_node("src", "toy.const")
    assert err.value.problems[0].code == "duplicate_id"
    with pytest.raises(GraphError) as err:
        graph.set_param("ghost", "value", 1)
    assert err.value.problems[0].node == "ghost"


def test_overrides_parse_json_or_text(toy: Toy) -> None:
    nodes = chain(1)
    graph = toy.graph(nodes)
    graph.apply_overrides(["src.value=2.5", "n1.offset=3", "src.label=hello world"])
    assert graph.doc.nodes["src"].params["value"] == 2.5
    assert graph.doc.nodes["n1"].params["offset"] == 3
    assert graph.doc.nodes["src"].params["label"] == "hello world"
    problems = graph.validate()
    assert [(p.code, p.node, p.field) for p in problems] == [("unknown_param", "src", "label")]
    for bad in ("src.value", "value=1", "ghost.value=1"):
        with pytest.raises(GraphError):
            graph.apply_overrides([bad])


def test_checked_is_reused_until_the_document_changes(toy: Toy) -> None:
    graph = toy.graph(chain(1))
    first = graph.checked()
    assert graph.checked() is first
    graph.set_param("n1", "offset", 7.0)
    second = graph.checked()
    assert second is not first and second.nodes["n1"].params["offset"] == 7.0


def test_run_refuses_an_invalid_graph_before_running(toy: Toy, scheduler: Scheduler) -> None:
    graph = toy.graph(chain(1))
    graph.set_param("src", "value", 1000.0)
    with pytest.raises(GraphError) as err:
        toy.run(graph, scheduler)
    assert err.value.problems[0].field == "value"
    assert toy.calls == []


def test_copy_is_independent(toy: Toy) -> None:
    graph = toy.graph(chain(1))
    clone = graph.copy()
    clone.set_param("src", "value", 5.0)
    assert graph.doc.nodes["src"].params["value"] == 1.0
    assert clone.registry is graph.registry and clone.base_dir == graph.base_dir


def test_from_json_and_values(toy: Toy, scheduler: Scheduler, graphs_dir: Path) -> None:
    """from_json reads the same text format; run values are reachable by node id."""
    text = (graphs_dir / "crop_resize.json").read_text()
    graph = Graph.from_json(text, graphs_dir)
    assert sorted(graph.doc.nodes) == sorted(json.loads(text)["nodes"])
    result = graph.run(toy.root / "out", device="cpu", scheduler=scheduler,
                       targets=["bigger"])
    bigger = result.value("bigger")
    crop = json.loads(text)["nodes"]["crop"]["params"]
    assert bigger.width == 240
    assert bigger.height == round(crop["height"] * 240 / crop["width"])
    with pytest.raises(KeyError):
        result.value("photo")  # two outputs: name one
    assert result.value("photo", "image").width == 256
    assert isinstance(result.value("photo", "mask").alpha, torch.Tensor)


def test_dumps_is_deterministic(graphs_dir: Path) -> None:
    graph = graphkit.load(graphs_dir / "mask_composite.json")
    assert graph.dumps() == graph.copy().dumps()
    assert json.loads(graph.dumps())["nodes"]["save"]["pack"] == "nodes"
