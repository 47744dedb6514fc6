"""Planning and execution: demand-driven, failures isolated, resume, cancel, output files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from conftest import Toy, chain

from graphkit.api import Graph
from graphkit.context import RunControl
from graphkit.events import Event, NodeFailed, NodeFinished, NodeSkipped
from graphkit.registry import node
from graphkit.scheduler import Scheduler, plan
from graphkit.types import Image


def test_only_what_outputs_need_runs(toy: Toy, scheduler: Scheduler) -> None:
    """A node no output node depends on is neither planned nor run."""
    nodes = chain(2)
    nodes["orphan"] = {"type": "toy.const", "params": {"value": 3.0}}
    nodes["orphan_child"] = {"type": "toy.add", "inputs": {"a": "orphan.image"}}
    graph = toy.graph(nodes)
    assert "orphan" not in plan(graph.checked()).order
    result = toy.run(graph, scheduler)
    assert result.ok
    assert "orphan" not in toy.calls and "orphan_child" not in toy.calls
    assert sorted(result.executed) == sorted(chain(2))


def test_targets_limit_the_plan(toy: Toy, scheduler: Scheduler) -> None:
    """Asking for one node runs it and its ancestors only, in topological order."""
    graph = toy.graph(chain(3))
    result = toy.run(graph, scheduler, targets=["n2"])
    assert result.executed == ["src", "n1", "n2"] == toy.calls
    assert result.value("n2") is result.value("n2", "image")
    assert torch.equal(result.value("n2").pixels, torch.full((1, 3, 4, 4), 1.0 + 1 + 2))


def test_plan_counts_consumers(toy: Toy) -> None:
    nodes = chain(1)
    nodes["twice"] = {"type": "toy.add", "inputs": {"a": "src.image", "b": "src.image"}}
    nodes["out2"] = {"type": "toy.sink", "inputs": {"image": "twice.image"}}
    the_plan = plan(toy.graph(nodes).checked())
    assert the_plan.consumers["src"] == 3
    assert the_plan.consumers["out"] == 0 and the_plan.consumers["n1"] == 1


def failing_graph() -> dict[str, Any]:
    nodes = chain(1)
    nodes["bad"] = {"type": "toy.fail", "inputs": {"image": "src.image"}}
    nodes["after"] = {"type": "toy.add", "inputs": {"a": "bad.image", "b": "n1.image"}}
    nodes["out_bad"] = {"type": "toy.sink", "inputs": {"image": "after.image"}}
    return nodes


def test_failure_isolated_to_its_dependents(toy: Toy, scheduler: Scheduler) -> None:
    """The failing node is reported with id, type and cause; independent branches finish."""
    events: list[Event] = []
    graph = toy.graph(failing_graph())
    result = toy.run(graph, scheduler, listeners=[events.append])
    assert not result.ok
    assert result.failed == {"bad": "RuntimeError: boom"}
    assert "bad" not in result.user_errors
    assert sorted(result.skipped) == ["after", "out_bad"]
    assert sorted(result.executed) == ["n1", "out", "src"]
    (failed,) = [e for e in events if isinstance(e, NodeFailed)]
    assert (failed.node, failed.type, failed.user_error) == ("bad", "toy.fail", False)
    assert "boom" in failed.error
    skipped = {e.node: e.because for e in events if isinstance(e, NodeSkipped)}
    assert skipped == {"after": "'bad' failed", "out_bad": "'after' failed"}
    for nid in ("src", "n1", "out"):
        assert result.keys[nid] in scheduler.cache
    assert result.keys["bad"] not in scheduler.cache


def test_rerun_after_fix_resumes_from_cache(toy: Toy, scheduler: Scheduler) -> None:
    """Fixing the failed node runs it and its dependents; everything else is cached."""
    graph = toy.graph(failing_graph())
    toy.run(graph, scheduler)
    graph.doc.nodes["bad"].type = "toy.add"
    graph.doc.nodes["bad"].inputs = {"a": "src.image"}
    result = toy.run(graph, scheduler)
    assert result.ok
    assert sorted(result.executed) == ["after", "bad", "out_bad"] == sorted(toy.calls)
    assert sorted(result.cached) == ["n1", "out", "src"]
    expected = torch.full((1, 3, 4, 4), 1.0) + torch.full((1, 3, 4, 4), 2.0)
    assert torch.equal(result.value("after").pixels, expected)


def test_user_error_carries_field(toy: Toy, scheduler: Scheduler) -> None:
    """A NodeInputError is a user error naming the field."""
    nodes = chain(0)
    nodes["out"]["inputs"]["image"] = "ref.image"
    nodes["ref"] = {"type": "toy.refuse", "inputs": {"image": "src.image"}}
    result = toy.run(toy.graph(nodes), scheduler)
    assert result.user_errors == {"ref": ("limit", "too big for this node")}
    assert result.failed == {"ref": "too big for this node"}


def test_failing_builtin_branch_still_writes_other_outputs(
    graphs_dir: Path, tmp_path: Path, scheduler: Scheduler
) -> None:
    """An unreadable input image fails one branch; the other branch's file is written;
    fixing it resumes from the cache."""
    graph = Graph.load(graphs_dir / "mask_composite.json")
    (tmp_path / "broken.png").write_text("not an image")
    graph.set_param("texture", "path", "broken.png")
    out = tmp_path / "out"
    result = graph.run(out, device="cpu", scheduler=scheduler, inputs=[tmp_path])
    assert set(result.failed) == {"texture"} and result.user_errors["texture"][0] == "path"
    assert sorted(result.skipped) == ["blend", "fit", "save"]
    assert (out / "mask.png").is_file() and not (out / "composite.png").exists()
    graph.set_param("texture", "path", "inputs/texture.png")
    fixed = graph.run(out, device="cpu", scheduler=scheduler)
    assert fixed.ok
    assert sorted(fixed.executed) == ["blend", "fit", "save", "texture"]
    assert (out / "composite.png").is_file()


def test_cancel_stops_before_next_node(toy: Toy, scheduler: Scheduler) -> None:
    """Cancelling after the first node finishes: nothing else starts; a re-run resumes."""
    control = RunControl()

    def cancel_after_first(event: Event) -> None:
        if isinstance(event, NodeFinished):
            control.cancel()

    graph = toy.graph(chain(3))
    result = toy.run(graph, scheduler, control=control, listeners=[cancel_after_first])
    assert result.cancelled and not result.ok
    assert result.executed == ["src"] == toy.calls
    control.reset()
    again = toy.run(graph, scheduler, control=control)
    assert again.ok and again.cached == ["src"]
    assert again.executed == ["n1", "n2", "n3", "out"]


def test_cancel_inside_a_node_discards_its_output(toy: Toy, scheduler: Scheduler) -> None:
    """A node reporting progress after cancel stops; its output is not cached."""
    control = RunControl()
    nodes = chain(0)
    nodes["slow"] = {"type": "toy.steps", "params": {"n": 5}, "inputs": {"image": "src.image"}}
    nodes["out"]["inputs"]["image"] = "slow.image"
    graph = toy.graph(nodes)

    def cancel_on_progress(event: Event) -> None:
        if event.kind == "node_progress":
            control.cancel()

    seen: list[Event] = []
    result = toy.run(graph, scheduler, control=control,
                     listeners=[cancel_on_progress, seen.append])
    assert result.cancelled and result.executed == ["src"]
    assert result.keys["slow"] not in scheduler.cache and "slow" not in result.failed
    kinds = [(e.kind, getattr(e, "node", None)) for e in seen]
    assert kinds[-3:] == [("node_progress", "slow"), ("node_cancelled", "slow"),
                          ("run_finished", None)]


def test_deleted_output_files_are_written_again(
    graphs_dir: Path, tmp_path: Path, scheduler: Scheduler
) -> None:
    """An output node whose file was deleted runs again; nothing upstream does."""
    graph = Graph.load(graphs_dir / "crop_resize.json")
    first = graph.run(tmp_path, device="cpu", scheduler=scheduler)
    assert first.ok and sorted(p.name for p in first.files) == ["house.png", "house_mask.png"]
    (tmp_path / "house.png").unlink()
    again = graph.run(tmp_path, device="cpu", scheduler=scheduler)
    assert again.executed == ["save"]
    assert (tmp_path / "house.png").is_file()
    assert sorted(p.name for p in again.files) == ["house.png", "house_mask.png"]


def test_other_output_folder_writes_again(
    graphs_dir: Path, tmp_path: Path, scheduler: Scheduler
) -> None:
    """Output nodes are keyed by the output folder; intermediate nodes are shared."""
    graph = Graph.load(graphs_dir / "crop_resize.json")
    graph.run(tmp_path / "a", device="cpu", scheduler=scheduler)
    second = graph.run(tmp_path / "b", device="cpu", scheduler=scheduler)
    assert sorted(second.executed) == ["save", "save_mask"]
    assert (tmp_path / "b" / "house.png").is_file()


def test_report_dict(toy: Toy, scheduler: Scheduler) -> None:
    result = toy.run(toy.graph(chain(1)), scheduler)
    report = result.to_dict()
    assert report["ok"] and report["executed"] == result.executed
    assert set(report["node_seconds"]) == set(result.executed)
    assert all(v >= 0 for v in report["node_seconds"].values())


def test_evicted_intermediate_behind_cached_outputs_is_not_rerun(
    toy: Toy, scheduler: Scheduler
) -> None:
    """When an output is cached, what only it needed is not run again, even if evicted."""
    graph = toy.graph(chain(3))
    first = toy.run(graph, scheduler)
    assert first.ok
    scheduler.cache.discard(first.keys["n1"])  # as a budget eviction would
    toy.calls.clear()
    again = toy.run(graph, scheduler)
    assert again.ok and again.executed == [] and toy.calls == []
    assert "n1" not in again.cached and "out" in again.cached


def test_change_below_an_evicted_node_runs_it_again(toy: Toy, scheduler: Scheduler) -> None:
    """An evicted node whose descendant must run is computed again, and only then."""
    graph = toy.graph(chain(3))
    first = toy.run(graph, scheduler)
    scheduler.cache.discard(first.keys["n1"])
    graph.set_param("n2", "offset", 9.0)
    toy.calls.clear()
    again = toy.run(graph, scheduler)
    assert again.ok and again.executed == ["n1", "n2", "n3", "out"] == toy.calls
    assert again.cached == ["src"]


def test_out_of_memory_frees_cached_tensors_and_retries_once(
    toy: Toy, scheduler: Scheduler
) -> None:
    """A first OOM moves cached outputs to host and retries; a second OOM is reported."""
    failures = {"left": 1}

    @node("toy.hungry", into=toy.reg)
    def hungry(image: Image) -> Image:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return Image(image.pixels * 2)

    nodes = chain(1)
    nodes["eat"] = {"type": "toy.hungry", "inputs": {"image": "n1.image"}}
    nodes["out"]["inputs"] = {"image": "eat.image"}
    graph = toy.graph(nodes)
    result = toy.run(graph, scheduler)
    assert result.ok and "eat" in result.executed
    assert scheduler.cache.stats.spills >= 2  # src and n1 moved to host
    assert torch.equal(result.value("eat").pixels, result.value("n1").pixels * 2)

    failures["left"] = 2
    graph.set_param("n1", "offset", 5.0)
    failed = toy.run(graph, scheduler)
    assert "eat" in failed.failed and "out of memory" in failed.failed["eat"]
    assert "n1" in failed.executed  # completed outputs stay cached
    failures["left"] = 0
    resumed = toy.run(graph, scheduler)
    assert resumed.ok and resumed.executed == ["eat", "out"]
