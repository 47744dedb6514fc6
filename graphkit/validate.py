"""Every check on a graph before it runs; all problems are reported at once."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import networkx as nx
from pydantic import ValidationError

from graphkit.errors import Problem, problem
from graphkit.graph import GraphDoc, is_node_id, split_ref
from graphkit.limits import Limits
from graphkit.registry import NodeSpec, Registry, parse_semver
from graphkit.suggest import with_hint
from graphkit.types import can_connect


@dataclass
class ResolvedNode:
    """A node whose type, params and links passed every check."""

    id: str
    spec: NodeSpec
    params: dict[str, Any]
    links: dict[str, tuple[str, str]]


@dataclass
class Checked:
    """The outcome of checking a graph: resolved nodes, topological order, problems."""

    nodes: dict[str, ResolvedNode]
    order: list[str]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def check(doc: GraphDoc, reg: Registry, limits: Limits | None = None) -> Checked:
    """Check a graph document against the registry (and resource limits, when given)."""
    problems: list[Problem] = []
    if limits is not None and len(doc.nodes) > limits.max_nodes:
        msg = (f"graph has {len(doc.nodes)} nodes; the limit is {limits.max_nodes} "
               "(GRAPHKIT_LIMIT_MAX_NODES)")
        return Checked({}, [], [problem("limit", msg, field="nodes")])
    resolved: dict[str, ResolvedNode] = {}
    for node_id, entry in doc.nodes.items():
        if not is_node_id(node_id):
            msg = "node ids are letters, digits, '_' or '-', starting with a letter or '_'"
            problems.append(problem("node_id", msg, node=node_id))
            continue
        spec = reg.get(entry.type)
        if spec is None:
            problems.append(_unknown_type(node_id, entry.type, entry.pack, reg))
            continue
        version_problem = _version_problem(node_id, entry.version, spec)
        if version_problem:
            problems.append(version_problem)
            continue
        params, param_problems = _check_params(node_id, entry.params, spec)
        problems.extend(param_problems)
        if limits is not None and params:
            problems.extend(limits.check_params(node_id, params))
        links, link_problems = _parse_links(node_id, entry.inputs, spec)
        problems.extend(link_problems)
        resolved[node_id] = ResolvedNode(node_id, spec, params, links)
    problems.extend(_check_links(doc, resolved))
    problems.extend(_shared_output_names(resolved))
    order, cycle_problems = _order(resolved)
    problems.extend(cycle_problems)
    if doc.nodes and not any(n.spec.output_node for n in resolved.values()) and not problems:
        problems.append(problem(
            "no_output", "graph has no output node (such as image.save), so nothing would run"))
    if not doc.nodes:
        problems.append(problem("no_output", "graph has no nodes"))
    return Checked(resolved, order, problems)


def validate(doc: GraphDoc, reg: Registry) -> list[Problem]:
    """Every problem with a graph document, empty when it may run."""
    return check(doc, reg).problems


def _unknown_type(node_id: str, type_id: str, pack: str | None, reg: Registry) -> Problem:
    if pack and pack in reg.failed_packs:
        hint = f"; its pack '{pack}' is installed but failed to load ({reg.failed_packs[pack]})"
    elif pack and pack not in reg.packs:
        hint = f"; it comes from the node pack '{pack}', which is not installed here"
    elif pack:
        hint = f"; the installed pack '{pack}' does not declare it (a newer version may)"
    else:
        hint = "; no installed node pack declares it"
    message = with_hint(f"unknown node type '{type_id}'{hint}", type_id, reg.specs)
    return problem("unknown_type", message, node=node_id, field="type")


def _version_problem(node_id: str, version: str | None, spec: NodeSpec) -> Problem | None:
    if version is None:
        return None
    parsed = parse_semver(version)
    if parsed is None:
        return problem("version", f"version '{version}' is not of the form 1.2.3", node_id,
                       "version")
    if parsed[0] != spec.major:
        return problem(
            "version",
            f"saved with '{spec.type_id}' {version}, but {spec.version} is installed; "
            "a different major version cannot be loaded",
            node_id, "version")
    return None


def _check_params(
    node_id: str, params: dict[str, Any], spec: NodeSpec
) -> tuple[dict[str, Any], list[Problem]]:
    try:
        values = spec.params_model.model_validate(params).model_dump()
    except ValidationError as exc:
        return {}, [_param_problem(node_id, spec, err) for err in exc.errors()]
    except RecursionError:
        return {}, [problem("bad_param", "params nest too deeply", node_id)]
    bad = [name for name, value in values.items() if not _finite(value)]
    if bad:  # NaN or infinity (given as "NaN"/"inf" text, or through the API)
        return {}, [problem("bad_param", "must be a finite number (not NaN or infinity)",
                            node_id, name) for name in bad]
    return values, []


def _finite(value: Any, depth: int = 0) -> bool:
    """False when a float anywhere in ``value`` is NaN or infinite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if depth > 100:
        return True
    if isinstance(value, dict):
        return all(_finite(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v, depth + 1) for v in value)
    return True


def _param_problem(node_id: str, spec: NodeSpec, err: Any) -> Problem:
    loc = [str(x) for x in err.get("loc", ())]
    name = loc[0] if loc else None
    if err.get("type") == "extra_forbidden":
        known = ", ".join(spec.params) or "none"
        message = with_hint(f"unknown param (known: {known})", name or "", spec.params)
        return problem("unknown_param", message, node_id, name)
    if err.get("type") == "missing":
        return problem("missing_param", "required param is not set", node_id, name)
    got = _short(err.get("input"))
    sub = "".join(f"[{x}]" for x in loc[1:])
    msg = err.get("msg", "invalid value").replace("\n", " ")
    return problem("bad_param", f"{msg}{' at ' + sub if sub else ''} (got {got})", node_id, name)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_links(
    node_id: str, inputs: dict[str, str], spec: NodeSpec
) -> tuple[dict[str, tuple[str, str]], list[Problem]]:
    links: dict[str, tuple[str, str]] = {}
    problems = []
    for port, ref in inputs.items():
        if port not in spec.inputs:
            known = ", ".join(spec.inputs) or "none"
            message = with_hint(f"unknown input port (known: {known})", port, spec.inputs)
            problems.append(problem("unknown_input", message, node_id, port))
            continue
        parts = split_ref(ref)
        if parts is None:
            problems.append(problem("bad_link", f"link {_short(ref)} must look like 'node.port'",
                                    node_id, port))
            continue
        links[port] = parts
    for name, inp in spec.inputs.items():
        if not inp.optional and name not in inputs:
            problems.append(problem("missing_input",
                                    f"required input ({inp.type}) is not connected",
                                    node_id, name))
    return links, problems


def _check_links(doc: GraphDoc, resolved: dict[str, ResolvedNode]) -> list[Problem]:
    problems = []
    for node in resolved.values():
        for port, (src_id, src_port) in node.links.items():
            if src_id not in doc.nodes:
                message = with_hint(f"links to node '{src_id}', which does not exist",
                                    src_id, doc.nodes)
                problems.append(problem("missing_node", message, node.id, port))
                continue
            src = resolved.get(src_id)
            if src is None:
                continue  # the source has its own problem already
            out_type = src.spec.outputs.get(src_port)
            if out_type is None:
                has = ", ".join(src.spec.outputs) or "none"
                message = with_hint(f"node '{src_id}' ({src.spec.type_id}) has no output "
                                    f"'{src_port}' (outputs: {has})", src_port, src.spec.outputs)
                problems.append(problem("missing_port", message, node.id, port))
                continue
            in_type = node.spec.inputs[port].type
            if not can_connect(out_type, in_type):
                problems.append(problem(
                    "type_mismatch",
                    f"'{src_id}.{src_port}' gives {out_type} but this input takes {in_type}",
                    node.id, port))
    return problems


def _shared_output_names(resolved: dict[str, ResolvedNode]) -> list[Problem]:
    """Nodes that would write one file name (compared without case, as on macOS and Windows)
    into the output folder: in one run the later would overwrite the earlier."""
    writers: dict[str, list[tuple[str, str]]] = {}
    for node in resolved.values():
        for name in node.spec.output_params:
            value = node.params.get(name)
            if isinstance(value, str):
                writers.setdefault(value.casefold(), []).append((node.id, name))
    problems = []
    for same in writers.values():
        if len(same) < 2:
            continue
        for node_id, name in same:
            others = ", ".join(f"'{n}'" for n, _ in same if n != node_id)
            value = resolved[node_id].params[name]
            problems.append(problem(
                "duplicate_output", f"writes the output '{value}', as node {others} does: one "
                "would overwrite the other in a run; give each its own name", node_id, name))
    return problems


def dependency_graph(resolved: dict[str, ResolvedNode]) -> nx.DiGraph:
    """Edges from each source node to the nodes that read it."""
    g = nx.DiGraph()
    g.add_nodes_from(resolved)
    for node in resolved.values():
        for src_id, _port in node.links.values():
            if src_id in resolved:
                g.add_edge(src_id, node.id)
    return g


def _order(resolved: dict[str, ResolvedNode]) -> tuple[list[str], list[Problem]]:
    g = dependency_graph(resolved)
    try:
        return list(nx.lexicographical_topological_sort(g)), []
    except nx.NetworkXUnfeasible:
        pass
    problems = []
    for part in sorted(sorted(c) for c in nx.strongly_connected_components(g)):
        if len(part) == 1 and not g.has_edge(part[0], part[0]):
            continue
        cycle = nx.find_cycle(g.subgraph(part), source=part[0])
        path = " -> ".join([u for u, _v in cycle] + [cycle[0][0]])
        reader, source = cycle[-1][1], cycle[-1][0]
        port = next(p for p, (src, _) in resolved[reader].links.items() if src == source)
        problems.append(problem("cycle", f"graph has a cycle: {path}", reader, port))
    return [], problems
