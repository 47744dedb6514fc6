"""What a graph needs (node packs, models) and which of it is missing here, before it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphkit.graph import GraphDoc
from graphkit.registry import Registry

PROBES = ("model_index.json", "config.json")


@dataclass
class Needs:
    """Packs and models a graph names, each with where it was found or why it is missing."""

    packs: dict[str, str | None] = field(default_factory=dict)  # pack -> problem or None
    models: dict[str, str] = field(default_factory=dict)  # model -> where, or the problem
    missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"packs": self.packs, "models": self.models, "missing": self.missing,
                "ok": not self.missing}


def is_model_param(name: str) -> bool:
    """Params naming a model: ``model`` or ``*_model``."""
    return name == "model" or name.endswith("_model")


def revision_param(model_param: str, params: Any) -> str:
    """The param pinning a model param's revision: ``inpaint_model`` -> ``inpaint_revision``
    when the node has one, else ``revision``."""
    own = model_param.removesuffix("model") + "revision"
    return own if model_param != "model" and own in params else "revision"


def model_params(doc: GraphDoc, reg: Registry) -> dict[str, tuple[str, str | None]]:
    """Model names a graph uses: node params called ``model`` or ``*_model``, defaults filled."""
    found: dict[str, tuple[str, str | None]] = {}
    for node_id, entry in doc.nodes.items():
        spec = reg.get(entry.type)
        if spec is None:
            continue
        for name, param in spec.params.items():
            if not is_model_param(name):
                continue
            value = entry.params.get(name, param.default)
            revision = entry.params.get(revision_param(name, spec.params))
            if not isinstance(revision, str):
                revision = None
            if isinstance(value, str) and value:
                found[f"{node_id}.{name}"] = (value, revision)
    return found


def needs(doc: GraphDoc, reg: Registry, manager: Any) -> Needs:
    """Check packs against the registry and models against ``manager.resolve`` (no loading)."""
    out = Needs()
    for node_id, entry in doc.nodes.items():
        spec = reg.get(entry.type)
        pack = entry.pack or (spec.pack if spec else None) or "?"
        if spec is None:
            out.packs[pack] = f"not installed (needed for node '{node_id}', type '{entry.type}')"
            out.missing.append(f"pack {pack}")
        else:
            out.packs.setdefault(pack, None)
    for _where, (model, revision) in sorted(model_params(doc, reg).items()):
        if model in out.models:
            continue
        out.models[model] = _locate(manager, model, revision)
        if out.models[model].startswith("missing"):
            out.missing.append(f"model {model}")
    return out


def _locate(manager: Any, model: str, revision: str | None) -> str:
    from graphkit.model_sources import ModelError, ModelRef

    error = ""
    for probe in PROBES:
        try:
            found = manager.resolve(ModelRef(model, revision), probe=probe)
        except ModelError as exc:
            error = str(exc)
            continue
        return f"{found.kind}: {found.source}"
    return f"missing: {error}"
