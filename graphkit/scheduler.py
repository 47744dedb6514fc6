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
from collections.abc import Callable, Iterable
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
        control = control or RunControl()
        out_salt = str(sandbox.out_dir.resolve()) if sandbox.out_dir else ""
        node_salts = input_salts(checked, sandbox)
        for nid, extra in (salts or {}).items():
            node_salts[nid] = f"{node_salts[nid]}|{extra}" if nid in node_salts else extra
        with self.cache.lock:
            full = plan(checked, targets, out_salt, node_salts)
            the_plan = prune(full, checked, self._usable)
            for nid, count in the_plan.consumers.items():  # each pin is released by a reader
                self.cache.pin(the_plan.keys[nid], count + (nid in the_plan.hits))
        run_id = uuid.uuid4().hex[:12]
        result = RunResult(run_id, the_plan.keys, cache=self.cache)
        emit = _emitter([*self.listeners, *listeners])
        emit(RunStarted(run_id, len(the_plan.order), str(device)))
        started = time.perf_counter()
        broken: set[str] = set()
        try:
            for nid in the_plan.order:
                if control.cancelled:
                    result.cancelled = True
                    break
                self._visit(checked.nodes[nid], the_plan, result, broken, emit, device,
                            sandbox, control, graph_json, extras or {})
                if result.cancelled:
                    break
        finally:
            self.cache.unpin_all()
        result.total_seconds = time.perf_counter() - started
        emit(RunFinished(run_id, result.ok, result.cancelled, result.total_seconds,
                         len(result.executed), len(result.cached), len(result.failed)))
        return result

    def _visit(
        self,
        node: ResolvedNode,
        the_plan: Plan,
        result: RunResult,
        broken: set[str],
        emit: Listener,
        device: torch.device,
        sandbox: Sandbox,
        control: RunControl,
        graph_json: str,
        extras: dict[str, Any],
    ) -> None:
        nid, spec, key = node.id, node.spec, the_plan.keys[node.id]
        bad_sources = [src for src, _p in node.links.values() if src in broken]
        if bad_sources:
            broken.add(nid)
            result.skipped.append(nid)
            emit(NodeSkipped(result.run_id, nid, spec.type_id, f"'{bad_sources[0]}' failed"))
            return
        if nid in the_plan.hits:  # readers fetch it from the cache (and the device) themselves
            result.cached.append(nid)
            _collect_files(self.cache.touch(key) or {}, result)
            self.cache.unpin(key)
            emit(NodeCached(result.run_id, nid, spec.type_id))
            return
        emit(NodeStarted(result.run_id, nid, spec.type_id))
        t0 = time.perf_counter()
        try:
            kwargs = dict(node.params)
            for port, (src, sport) in node.links.items():
                kwargs[port] = self.cache.get(the_plan.keys[src], device)[sport]  # type: ignore[index]
            if spec.wants_context:
                def report(step: int, total: int, _nid: str = nid) -> None:
                    emit(NodeProgress(result.run_id, _nid, step, total))

                ctx = RunContext(nid, spec.type_id, device, sandbox, control, report,
                                 graph_json, extras)
                value = self._call_with_oom_retry(spec.func, ctx, kwargs)
            else:
                value = self._call_with_oom_retry(spec.func, None, kwargs)
            outputs = _as_outputs(node, value)
        except Cancelled:
            result.cancelled = True
            emit(NodeCancelled(result.run_id, nid, spec.type_id, time.perf_counter() - t0))
            return
        except NodeInputError as exc:
            self._fail(node, result, broken, emit, exc.message, exc.field, True)
            return
        except Exception as exc:  # the node's own failure, reported with its cause
            result.tracebacks[nid] = traceback.format_exc()
            self._fail(node, result, broken, emit, f"{type(exc).__name__}: {exc}", None, False)
            return
        self._release_inputs(node, the_plan)
        self.cache.put(key, outputs)
        seconds = time.perf_counter() - t0
        result.executed.append(nid)
        result.seconds[nid] = seconds
        _collect_files(outputs, result)
        emit(NodeFinished(result.run_id, nid, spec.type_id, seconds))

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

    def _fail(self, node: ResolvedNode, result: RunResult, broken: set[str], emit: Listener,
              message: str, field_name: str | None, user_error: bool) -> None:
        broken.add(node.id)
        result.failed[node.id] = message
        if user_error:
            result.user_errors[node.id] = (field_name, message)
        emit(NodeFailed(result.run_id, node.id, node.spec.type_id, message, user_error))


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
