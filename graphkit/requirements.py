"""What a graph needs (node packs, models, input files) and which of it is missing here,
before it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphkit.context import Sandbox
from graphkit.graph import GraphDoc
from graphkit.registry import NodeSpec, Registry, parse_semver, used_with

PROBES = ("model_index.json", "config.json")
INSTALLED = "installed"


@dataclass
class Needs:
    """Packs, models and input files a graph names, each with a status string.

    Packs: ``installed``; ``missing: why`` (not installed), ``failed: why`` (installed but it
    did not load) or ``incompatible: why`` (a node saved with another major version).
    Models: ``KIND: where`` (hub, local or tiny); ``missing: why`` or ``refused: why`` (custom
    code, pickle-only weights). Inputs (``node.param``): ``found: path``; ``missing: why``
    or ``refused: why`` (outside the allowed folders, not a regular file).
    """

    packs: dict[str, str] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"packs": self.packs, "models": self.models, "inputs": self.inputs,
                "missing": self.missing, "ok": not self.missing}


def is_model_param(name: str) -> bool:
    """Params naming a model: ``model`` or ``*_model``."""
    return name == "model" or name.endswith("_model")


def revision_param(model_param: str, params: Any) -> str:
    """The param pinning a model param's revision: ``inpaint_model`` -> ``inpaint_revision``
    when the node has one, else ``revision``."""
    own = model_param.removesuffix("model") + "revision"
    return own if model_param != "model" and own in params else "revision"


def model_params(doc: GraphDoc, reg: Registry) -> dict[str, tuple[str, str | None]]:
    """Model names a graph uses: node params called ``model`` or ``*_model``, defaults filled,
    leaving out those the node does not load with its linked inputs (a decoder's inpainting
    checkpoint without a mask)."""
    found: dict[str, tuple[str, str | None]] = {}
    for node_id, entry in doc.nodes.items():
        spec = reg.get(entry.type)
        if spec is None:
            continue
        for name, param in spec.params.items():
            if not is_model_param(name) or not used_with(param, entry.inputs):
                continue
            value = entry.params.get(name, param.default)
            revision = entry.params.get(revision_param(name, spec.params))
            if not isinstance(revision, str):
                revision = None
            if isinstance(value, str) and value:
                found[f"{node_id}.{name}"] = (value, revision)
    return found


def needs(doc: GraphDoc, reg: Registry, manager: Any, sandbox: Sandbox | None = None) -> Needs:
    """Check packs against the registry, models against ``manager.resolve`` and its refusals,
    and (given a ``sandbox``) input files where a run would look for them. Loads nothing."""
    out = Needs()
    for node_id, entry in sorted(doc.nodes.items()):
        spec = reg.get(entry.type)
        pack = entry.pack or (spec.pack if spec else None) or "?"
        status = _pack_status(node_id, entry.type, entry.version, spec, pack, reg)
        if status != INSTALLED and out.packs.get(pack, INSTALLED) == INSTALLED:
            out.missing.append(f"pack {pack}")
        if out.packs.get(pack, INSTALLED) == INSTALLED:
            out.packs[pack] = status
    if sandbox is not None:
        _check_inputs(doc, reg, sandbox, out)
    for _where, (model, revision) in sorted(model_params(doc, reg).items()):
        if model in out.models:
            continue
        out.models[model] = _locate(manager, model, revision)
        if out.models[model].startswith("missing"):
            out.missing.append(f"model {model}")
        elif out.models[model].startswith("refused"):
            out.missing.append(f"model {model} (refused)")
    return out


def _pack_status(node_id: str, type_id: str, version: str | None, spec: NodeSpec | None,
                 pack: str, reg: Registry) -> str:
    if spec is None:
        if pack in reg.failed_packs:
            return f"failed: installed but it did not load ({reg.failed_packs[pack]})"
        return f"missing: not installed (needed for node '{node_id}', type '{type_id}')"
    if version is None:
        return INSTALLED
    parsed = parse_semver(version)
    if parsed is None:
        return (f"incompatible: node '{node_id}' names version '{version[:40]}' of {type_id}, "
                "which is not of the form 1.2.3")
    if parsed[0] != spec.major:
        return (f"incompatible: node '{node_id}' was saved with {type_id} {version}; "
                f"{spec.version} is installed (another major version)")
    return INSTALLED


def _check_inputs(doc: GraphDoc, reg: Registry, sandbox: Sandbox, out: Needs) -> None:
    from graphkit.inputs import input_files
    from graphkit.validate import check

    for item in input_files(check(doc, reg), sandbox):
        where = f"{item.node}.{item.param}"
        out.inputs[where] = item.status
        if item.path is None:
            out.missing.append(f"input {where}")


def _locate(manager: Any, model: str, revision: str | None) -> str:
    from graphkit.model_sources import ModelError, ModelRef

    error = ""
    for probe in PROBES:
        try:
            found = manager.resolve(ModelRef(model, revision), probe=probe)
        except ModelError as exc:
            error = str(exc)
            continue
        reason = manager.refusal(found)  # what a run would refuse to load
        return f"refused: {reason}" if reason else f"{found.kind}: {found.source}"
    return f"missing: {error}"
