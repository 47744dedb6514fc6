"""Run events: their exact order, progress, caching, failures, and several listeners."""

from __future__ import annotations

import json
from typing import Any

from conftest import Toy, chain

from graphkit.events import Event, NodeFailed, RunFinished, RunStarted
from graphkit.scheduler import Scheduler


def summary(event: Event) -> tuple[Any, ...]:
    """The event kind and its fields, without run id and timings."""
    data = event.to_dict()
    data.pop("run_id")
    data.pop("seconds", None)
    kind = data.pop("event")
    return (kind, *data.values())


def stepping_graph(toy: Toy, steps: int = 2) -> Any:
    nodes = chain(0)
    nodes["slow"] = {"type": "toy.steps", "params": {"n": steps}, "inputs": {"image": "src.image"}}
    nodes["out"]["inputs"]["image"] = "slow.image"
    return toy.graph(nodes)


def test_exact_event_order(toy: Toy, scheduler: Scheduler) -> None:
    """Started/finished per node in topological order, progress inside its node, totals."""
    events: list[Event] = []
    graph = stepping_graph(toy, steps=2)
    result = toy.run(graph, scheduler, listeners=[events.append])
    device = str(events[0].device) if isinstance(events[0], RunStarted) else "?"
    assert [summary(e) for e in events] == [
        ("run_started", 3, device),
        ("node_started", "src", "toy.const"),
        ("node_finished", "src", "toy.const"),
        ("node_started", "slow", "toy.steps"),
        ("node_progress", "slow", 1, 2),
        ("node_progress", "slow", 2, 2),
        ("node_finished", "slow", "toy.steps"),
        ("node_started", "out", "toy.sink"),
        ("node_finished", "out", "toy.sink"),
        ("run_finished", True, False, 3, 0, 0),
    ]
    assert device == "cpu"
    assert len({e.run_id for e in events}) == 1 and events[0].run_id == result.run_id
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.seconds >= 0


def test_rerun_emits_cached_events(toy: Toy, scheduler: Scheduler) -> None:
    graph = stepping_graph(toy)
    toy.run(graph, scheduler)
    events: list[Event] = []
    toy.run(graph, scheduler, listeners=[events.append])
    assert [summary(e) for e in events] == [
        ("run_started", 3, "cpu"),
        ("node_cached", "src", "toy.const"),
        ("node_cached", "slow", "toy.steps"),
        ("node_cached", "out", "toy.sink"),
        ("run_finished", True, False, 0, 3, 0),
    ]


def test_partial_rerun_mixes_cached_and_started(toy: Toy, scheduler: Scheduler) -> None:
    graph = toy.graph(chain(2))
    toy.run(graph, scheduler)
    graph.set_param("n2", "offset", 5.0)
    events: list[Event] = []
    toy.run(graph, scheduler, listeners=[events.append])
    kinds = [(e.kind, getattr(e, "node", None)) for e in events]
    assert kinds == [("run_started", None), ("node_cached", "src"), ("node_cached", "n1"),
                     ("node_started", "n2"), ("node_finished", "n2"),
                     ("node_started", "out"), ("node_finished", "out"),
                     ("run_finished", None)]


def test_failure_events(toy: Toy, scheduler: Scheduler) -> None:
    """A failure emits node_failed (with user_error) and node_skipped for dependents."""
    nodes = chain(0)
    nodes["ref"] = {"type": "toy.refuse", "inputs": {"image": "src.image"}}
    nodes["out"]["inputs"]["image"] = "ref.image"
    events: list[Event] = []
    toy.run(toy.graph(nodes), scheduler, listeners=[events.append])
    assert [summary(e) for e in events][3:] == [
        ("node_started", "ref", "toy.refuse"),
        ("node_failed", "ref", "toy.refuse", "too big for this node", True),
        ("node_skipped", "out", "toy.sink", "'ref' failed"),
        ("run_finished", False, False, 1, 0, 1),
    ]
    assert isinstance(events[4], NodeFailed)


def test_every_listener_receives_every_event(toy: Toy, scheduler: Scheduler) -> None:
    """Scheduler listeners and per-run listeners all see the same sequence."""
    first: list[Event] = []
    second: list[Event] = []
    third: list[Event] = []
    scheduler.listeners.append(first.append)
    toy.run(stepping_graph(toy), scheduler, listeners=[second.append, third.append])
    assert len(first) == 10
    assert first == second == third


def test_events_serialise_to_json(toy: Toy, scheduler: Scheduler) -> None:
    events: list[Event] = []
    toy.run(stepping_graph(toy), scheduler, listeners=[events.append])
    for event in events:
        data = json.loads(json.dumps(event.to_dict()))
        assert data["event"] == event.kind and data["run_id"] == event.run_id
