"""Plan (demand-driven from output nodes) and execute a checked graph, emitting events.

A node that fails is reported with its id, type and cause; nodes that depend on it are
skipped, and independent branches still run, so one bad branch does not cost the others.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from graphkit.cache import OutputCache
from graphkit.context import Cancelled, NodeInputError, RunContext, RunControl, Sandbox
from graphkit.events import (
    Event,
    Listener,
    NodeCached,
    NodeCancelled,
    NodeFailed,
    NodeFinished,
    NodeProgress,
    NodeSkipped,
    NodeStarted,
    RunFinished,
    RunStarted,
)
from graphkit.types import SavedFiles
from graphkit.validate import Checked, ResolvedNode


@dataclass
class Plan:
    """Nodes to visit in order, with their content keys."""

    order: list[str]
    keys: dict[str, str]
    consumers: dict[str, int]
    targets: list[str] = field(default_factory=list)
    hits: set[str] = field(default_factory=set)


@dataclass
class RunResult:
    """What a run did, node by node."""

    run_id: str
    keys: dict[str, str]
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    user_errors: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    tracebacks: dict[str, str] = field(default_factory=dict)  # internal failures, for --debug
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    cancelled: bool = False
    total_seconds: float = 0.0
    cache: OutputCache | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled

    def value(self, node_id: str, port: str | None = None) -> Any:
        """The output of a node from this run (its only output when ``port`` is None)."""
        assert self.cache is not None
        outputs = self.cache.peek(self.keys[node_id])
        if outputs is None:
            raise KeyError(f"outputs of node '{node_id}' are no longer cached")
        if port is None:
            if len(outputs) != 1:
                raise KeyError(f"node '{node_id}' has outputs {sorted(outputs)}; name one")
            return next(iter(outputs.values()))
        return outputs[port]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready report."""
        return {
            "ok": self.ok,
            "cancelled": self.cancelled,
            "seconds": round(self.total_seconds, 6),
            "executed": self.executed,
            "cached": self.cached,
            "skipped": self.skipped,
            "failed": self.failed,
            "node_seconds": {k: round(v, 6) for k, v in self.seconds.items()},
            "files": [str(p) for p in self.files],
        }


def plan(checked: Checked, targets: Iterable[str] | None = None, salt: str = "",
         node_salts: dict[str, str] | None = None) -> Plan:
    """Only what the targets (default: every output node) need, in topological order.

    ``salt`` goes into the keys of output nodes, ``node_salts`` into the keys of the nodes
    they name (see :func:`input_salts`).
    """
    node_salts = node_salts or {}
    nodes = checked.nodes
    wanted = list(targets) if targets is not None else [
        n for n in checked.order if nodes[n].spec.output_node]
    needed: set[str] = set()
    stack = list(wanted)
    while stack:
        nid = stack.pop()
        if nid in needed:
            continue
        needed.add(nid)
        stack.extend(src for src, _port in nodes[nid].links.values())
    order = [n for n in checked.order if n in needed]
    keys: dict[str, str] = {}
    consumers: dict[str, int] = dict.fromkeys(order, 0)
    for nid in order:
        node = nodes[nid]
        for src, _port in node.links.values():
            consumers[src] += 1
        keys[nid] = content_key(node, keys, salt if node.spec.output_node else
                                node_salts.get(nid, ""))
    return Plan(order, keys, consumers, wanted)


def input_salts(checked: Checked, sandbox: Sandbox) -> dict[str, str]:
    """Nodes that read files (their spec's ``file_params``) keyed also by those files.

    So a graph in another folder, or a file changed on disk, is not served a cached image.
    A path that does not resolve gets a salt of its own, so the node runs and reports it.
    """
    salts = {}
    for nid, node in checked.nodes.items():
        parts = []
        for name in node.spec.file_params:
            rel = node.params.get(name)
            if not isinstance(rel, str):
                continue
            try:
                file = sandbox.resolve_input(rel, name)
                info = file.stat()
                parts.append(f"{file}:{info.st_size}:{info.st_mtime_ns}")
            except (NodeInputError, OSError):
                parts.append(f"unresolved:{uuid.uuid4().hex}")
        if parts:
            salts[nid] = "|".join(parts)
    return salts


def prune(full: Plan, checked: Checked, is_cached: Callable[[str], bool]) -> Plan:
    """Drop what cached nodes would have needed: walk from the targets, stop at cache hits.

    A node needed only by cached nodes is not run again, even when its own output was
    evicted; while still cached, it is reported as cached.
    """
    nodes = checked.nodes
    visit: set[str] = set()
    hits: set[str] = set()
    stack = list(full.targets)
    while stack:
        nid = stack.pop()
        if nid in visit:
            continue
        visit.add(nid)
        if is_cached(full.keys[nid]):
            hits.add(nid)
            continue
        stack.extend(src for src, _port in nodes[nid].links.values())
    # nodes below a hit are not needed; those still cached are reported as cached
    hits |= {n for n in full.order if n not in visit and is_cached(full.keys[n])}
    order = [n for n in full.order if n in visit or n in hits]
    consumers = dict.fromkeys(order, 0)
    for nid in order:
        if nid not in hits:
            for src, _port in nodes[nid].links.values():
                consumers[src] += 1
    return Plan(order, full.keys, consumers, full.targets, hits)


def content_key(node: ResolvedNode, keys: dict[str, str], salt: str = "") -> str:
    """hash(type id, type version, canonical params, keys of the inputs): a Merkle key."""
    links = sorted((port, keys[src], sport) for port, (src, sport) in node.links.items())
    blob = json.dumps(
        [node.spec.type_id, node.spec.version, node.params, links, salt],
        sort_keys=True, separators=(",", ":"), default=str, allow_nan=False,
    )
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


@dataclass
class RunItem:
    """One graph run of a group: a checked graph, its folders, listeners and targets."""

    checked: Checked
    sandbox: Sandbox
    graph_json: str = ""
    listeners: tuple[Listener, ...] = ()
    targets: tuple[str, ...] | None = None
    salts: dict[str, str] = field(default_factory=dict)


def _node_salts(item: RunItem) -> dict[str, str]:
    """Input-file salts of the item's nodes, with the item's own salts appended."""
    node_salts = input_salts(item.checked, item.sandbox)
    for nid, extra in item.salts.items():
        node_salts[nid] = f"{node_salts[nid]}|{extra}" if nid in node_salts else extra
    return node_salts


@dataclass
class _Run:
    """The state of one item while its group runs."""

    item: RunItem
    plan: Plan
    result: RunResult
    emit: Listener
    broken: set[str] = field(default_factory=set)
    planned: frozenset[str] = frozenset()  # the plan's order as a set, for membership

    def __post_init__(self) -> None:
        self.planned = frozenset(self.plan.order)


class Scheduler:
    """Runs checked graphs against one output cache; listeners receive every event."""

    def __init__(self, cache: OutputCache | None = None) -> None:
        self.cache = cache if cache is not None else OutputCache()
        self.listeners: list[Listener] = []

    def run(
        self,
        checked: Checked,
        *,
        device: torch.device,
        sandbox: Sandbox,
        control: RunControl | None = None,
        targets: Iterable[str] | None = None,
        listeners: Iterable[Listener] = (),
        graph_json: str = "",
        extras: dict[str, Any] | None = None,
        salts: dict[str, str] | None = None,
    ) -> RunResult:
        """Execute what the targets need; nodes whose key is cached are not run again.

        ``salts`` go into the keys of the nodes they name (and so of their descendants),
        for what a node's output depends on beyond its params, such as the model profile."""
        item = RunItem(checked, sandbox, graph_json, tuple(listeners),
                       tuple(targets) if targets is not None else None, dict(salts or {}))
        return self.run_group([item], device=device, control=control, extras=extras)[0]

    def run_group(
        self,
        items: Sequence[RunItem],
        *,
        device: torch.device,
        control: RunControl | None = None,
        extras: dict[str, Any] | None = None,
        max_batch: int = 1,
    ) -> list[RunResult]:
        """Run graphs of one shape (the variations of a sweep) together, node by node.

        A node runs once per distinct content key across the items: items that need the
        same output share it (it counts as executed for the first, cached for the others).
        A node that declares batching runs the items whose calls differ only in its
        ``batching.over`` values together, in calls of at most ``max_batch`` items. Each
        item gets its own RunResult and events; a failure skips only that item's dependants.
        """
        control = control or RunControl()
        if any(it.checked.order != items[0].checked.order for it in items):
            raise ValueError("run_group needs graphs with the same nodes in the same order")
        runs: list[_Run] = []
        with self.cache.lock:
            for it in items:
                out_salt = str(it.sandbox.out_dir.resolve()) if it.sandbox.out_dir else ""
                full = plan(it.checked, it.targets, out_salt, _node_salts(it))
                the_plan = prune(full, it.checked, self._usable)
                for nid, count in the_plan.consumers.items():  # each pin is released by a reader
                    self.cache.pin(the_plan.keys[nid], count + (nid in the_plan.hits))
                result = RunResult(uuid.uuid4().hex[:12], the_plan.keys, cache=self.cache)
                runs.append(_Run(it, the_plan, result,
                                 _emitter([*self.listeners, *it.listeners])))
        for run in runs:
            run.emit(RunStarted(run.result.run_id, len(run.plan.order), str(device)))
        started = time.perf_counter()
        try:
            for nid in items[0].checked.order if items else []:
                if control.cancelled:
                    break
                self._visit_all(nid, runs, device, control, extras or {}, max(1, max_batch))
        finally:
            self.cache.unpin_all()
        seconds = time.perf_counter() - started
        for run in runs:
            result = run.result
            result.cancelled = result.cancelled or control.cancelled
            result.total_seconds = seconds
            run.emit(RunFinished(result.run_id, result.ok, result.cancelled, seconds,
                                 len(result.executed), len(result.cached), len(result.failed)))
        return [run.result for run in runs]

    def _visit_all(self, nid: str, runs: list[_Run], device: torch.device,
                   control: RunControl, extras: dict[str, Any], max_batch: int) -> None:
        """Visit one node in every item: skip, serve from the cache, or execute."""
        owners: dict[str, _Run] = {}
        sharers: list[tuple[_Run, _Run]] = []
        for run in runs:
            if nid not in run.planned:
                continue
            node = run.item.checked.nodes[nid]
            if self._skip_or_hit(node, run):
                continue
            key = run.plan.keys[nid]
            if key in owners:
                sharers.append((run, owners[key]))
            else:
                owners[key] = run
        spec = runs[0].item.checked.nodes[nid].spec
        if spec.batching is not None and max_batch > 1 and len(owners) > 1:
            for group in _batch_groups(nid, list(owners.values()), max_batch):
                if control.cancelled:
                    break
                if len(group) == 1:
                    self._execute(group[0], nid, device, control, extras)
                else:
                    self._execute_batch(group, nid, device, control, extras)
        else:
            for run in owners.values():
                if control.cancelled:
                    break
                self._execute(run, nid, device, control, extras)
        for run, owner in sharers:
            self._share(run, owner, nid)

    def _skip_or_hit(self, node: ResolvedNode, run: _Run) -> bool:
        """Handle a node whose source failed or whose output is cached; True if handled."""
        nid, spec, result = node.id, node.spec, run.result
        bad_sources = [src for src, _p in node.links.values() if src in run.broken]
        if bad_sources:
            run.broken.add(nid)
            result.skipped.append(nid)
            run.emit(NodeSkipped(result.run_id, nid, spec.type_id,
                                 f"'{bad_sources[0]}' failed"))
            return True
        if nid in run.plan.hits:  # readers fetch it from the cache (and the device) themselves
            key = run.plan.keys[nid]
            result.cached.append(nid)
            _collect_files(self.cache.touch(key) or {}, result)
            self.cache.unpin(key)
            run.emit(NodeCached(result.run_id, nid, spec.type_id))
            return True
        return False

    def _share(self, run: _Run, owner: _Run, nid: str) -> None:
        """An item that needed the output another item of the group just made."""
        node, result = run.item.checked.nodes[nid], run.result
        if nid in owner.result.executed:
            result.cached.append(nid)
            _collect_files(self.cache.touch(run.plan.keys[nid]) or {}, result)
            self._release_inputs(node, run.plan)
            run.emit(NodeCached(result.run_id, nid, node.spec.type_id))
        elif nid in owner.result.failed:
            field_name, _m = owner.result.user_errors.get(nid, (None, ""))
            self._fail(node, run, owner.result.failed[nid], field_name,
                       nid in owner.result.user_errors)
            if nid in owner.result.tracebacks:
                result.tracebacks[nid] = owner.result.tracebacks[nid]

    def _inputs(self, node: ResolvedNode, the_plan: Plan, device: torch.device
                ) -> dict[str, Any]:
        kwargs = dict(node.params)
        for port, (src, sport) in node.links.items():
            kwargs[port] = self.cache.get(the_plan.keys[src], device)[sport]  # type: ignore[index]
        return kwargs

    def _execute(self, run: _Run, nid: str, device: torch.device, control: RunControl,
                 extras: dict[str, Any]) -> None:
        """Run one node for one item."""
        node, result, emit = run.item.checked.nodes[nid], run.result, run.emit
        spec = node.spec
        emit(NodeStarted(result.run_id, nid, spec.type_id))
        t0 = time.perf_counter()
        try:
            kwargs = self._inputs(node, run.plan, device)
            ctx = None
            if spec.wants_context:
                def report(step: int, total: int) -> None:
                    emit(NodeProgress(result.run_id, nid, step, total))

                ctx = RunContext(nid, spec.type_id, device, run.item.sandbox, control, report,
                                 run.item.graph_json, extras)
            outputs = _as_outputs(node, self._call_with_oom_retry(spec.func, ctx, kwargs))
        except Cancelled:
            result.cancelled = True
            emit(NodeCancelled(result.run_id, nid, spec.type_id, time.perf_counter() - t0))
            return
        except NodeInputError as exc:
            self._fail(node, run, exc.message, exc.field, True)
            return
        except Exception as exc:  # the node's own failure, reported with its cause
            result.tracebacks[nid] = traceback.format_exc()
            self._fail(node, run, f"{type(exc).__name__}: {exc}", None, False)
            return
        self._finish(run, node, outputs, time.perf_counter() - t0)

    def _execute_batch(self, group: list[_Run], nid: str, device: torch.device,
                       control: RunControl, extras: dict[str, Any]) -> None:
        """Run one node for several items in one call of its batching function.

        If the call fails (not by cancelling), each item runs alone, so one bad item
        fails only itself.
        """
        first = group[0].item.checked.nodes[nid]
        spec = first.spec
        assert spec.batching is not None
        over = spec.batching.over
        for run in group:
            run.emit(NodeStarted(run.result.run_id, nid, spec.type_id))
        t0 = time.perf_counter()

        def report(step: int, total: int) -> None:
            for run in group:
                run.emit(NodeProgress(run.result.run_id, nid, step, total))

        try:
            all_kwargs = [self._inputs(run.item.checked.nodes[nid], run.plan, device)
                          for run in group]
            shared = {k: v for k, v in all_kwargs[0].items() if k not in over}
            batch = [{k: kw[k] for k in over if k in kw} for kw in all_kwargs]
            ctx = RunContext(nid, spec.type_id, device, group[0].item.sandbox, control,
                             report, group[0].item.graph_json, extras)
            values = self._call_with_oom_retry(spec.batching.run, ctx,
                                               {"items": batch, **shared})
            if not isinstance(values, list) or len(values) != len(group):
                raise TypeError(f"batch call returned {type(values).__name__}; expected a "
                                f"list of {len(group)} outputs")
            outputs = [_as_outputs(run.item.checked.nodes[nid], v)
                       for run, v in zip(group, values, strict=True)]
        except Cancelled:
            for run in group:
                run.result.cancelled = True
                run.emit(NodeCancelled(run.result.run_id, nid, spec.type_id,
                                       time.perf_counter() - t0))
            return
        except Exception:  # find out which item is at fault: each runs alone
            for run in group:
                if control.cancelled:
                    break
                self._execute(run, nid, device, control, extras)
            return
        share = (time.perf_counter() - t0) / len(group)
        for run, out in zip(group, outputs, strict=True):
            self._finish(run, run.item.checked.nodes[nid], out, share)

    def _finish(self, run: _Run, node: ResolvedNode, outputs: dict[str, Any],
                seconds: float) -> None:
        self._release_inputs(node, run.plan)
        self.cache.put(run.plan.keys[node.id], outputs)
        run.result.executed.append(node.id)
        run.result.seconds[node.id] = seconds
        _collect_files(outputs, run.result)
        run.emit(NodeFinished(run.result.run_id, node.id, node.spec.type_id, seconds))

    def _call_with_oom_retry(self, func: Callable[..., Any], ctx: RunContext | None,
                             kwargs: dict[str, Any]) -> Any:
        """Call a node; after an out-of-memory, free cached tensors and models, retry once."""
        args = (ctx,) if ctx is not None else ()
        try:
            return func(*args, **kwargs)
        except torch.OutOfMemoryError:
            self.recover_from_oom()
        try:
            return func(*args, **kwargs)
        except torch.OutOfMemoryError as exc:
            raise MemoryError("out of memory, also after moving cached outputs to host memory "
                              f"and retrying with CPU offload ({_first_line(exc)})") from None

    def recover_from_oom(self) -> None:
        """Move cached outputs to host memory and models off the device."""
        self.cache.spill_all()
        models = sys.modules.get("graphkit.models")
        manager = getattr(models, "_MANAGER", None) if models else None
        if manager is not None:
            manager.recover_from_oom()
        elif torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _usable(self, key: str) -> bool:
        outputs = self.cache.peek(key)
        return outputs is not None and _still_valid(outputs)

    def _release_inputs(self, node: ResolvedNode, the_plan: Plan) -> None:
        for src, _port in node.links.values():
            self.cache.unpin(the_plan.keys[src])

    def _fail(self, node: ResolvedNode, run: _Run, message: str, field_name: str | None,
              user_error: bool) -> None:
        result = run.result
        run.broken.add(node.id)
        result.failed[node.id] = message
        if user_error:
            result.user_errors[node.id] = (field_name, message)
        run.emit(NodeFailed(result.run_id, node.id, node.spec.type_id, message, user_error))


def batch_signature(node: ResolvedNode, keys: dict[str, str]) -> str:
    """What must be equal for items to share one batch call of ``node``.

    Every param and input outside the node's ``batching.over``; for inputs named in it,
    only whether they are connected.
    """
    over = node.spec.batching.over if node.spec.batching else ()
    params = {k: v for k, v in node.params.items() if k not in over}
    links = sorted((port, "*" if port in over else keys[src], "" if port in over else sport)
                   for port, (src, sport) in node.links.items())
    return json.dumps([params, links], sort_keys=True, separators=(",", ":"), default=str)


def _batch_groups(nid: str, runs: list[_Run], max_batch: int) -> list[list[_Run]]:
    """Items that may share a batch call of ``nid``, in calls of at most ``max_batch``."""
    by_signature: dict[str, list[_Run]] = {}
    for run in runs:
        sig = batch_signature(run.item.checked.nodes[nid], run.plan.keys)
        by_signature.setdefault(sig, []).append(run)
    return [same[i:i + max_batch] for same in by_signature.values()
            for i in range(0, len(same), max_batch)]


def _emitter(listeners: list[Listener]) -> Listener:
    def emit(event: Event) -> None:
        for listener in listeners:
            listener(event)

    return emit


def _as_outputs(node: ResolvedNode, value: Any) -> dict[str, Any]:
    spec = node.spec
    if spec.single_output:
        outputs = {next(iter(spec.outputs)): value} if spec.outputs else {}
    elif isinstance(value, dict):
        outputs = value
    else:
        raise TypeError(f"node returned {type(value).__name__}; expected a dict of outputs")
    if set(outputs) != set(spec.outputs):
        raise TypeError(f"node returned outputs {sorted(outputs)}; declared {sorted(spec.outputs)}")
    for name, port_type in spec.outputs.items():
        if not isinstance(outputs[name], port_type.cls) and not (
            port_type.cls is float and isinstance(outputs[name], int)
        ):
            raise TypeError(f"output '{name}' is {type(outputs[name]).__name__}; "
                            f"declared {port_type}")
    return outputs


def _still_valid(outputs: dict[str, Any]) -> bool:
    """Cached output files must still exist for the output node to count as cached."""
    for value in outputs.values():
        if isinstance(value, SavedFiles) and not all(Path(p).exists() for p in value.paths):
            return False
    return True


def _collect_files(outputs: dict[str, Any], result: RunResult) -> None:
    for value in outputs.values():
        if isinstance(value, SavedFiles):
            result.files.extend(Path(p) for p in value.paths)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
