"""Node declaration (``@node``), node specs, and discovery of node packs by entry point."""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from graphkit.types import PLAIN_TYPES, PortType, is_port_annotation, port_type

ENTRY_POINT_GROUP = "graphkit.nodes"
# matched whole (fullmatch), ASCII only: no ``$`` (a trailing newline) and no ``\d``
_TYPE_ID = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+", re.ASCII)
_SEMVER = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)", re.ASCII)


def parse_semver(version: str) -> tuple[int, int, int] | None:
    """``"1.2.3"`` -> (1, 2, 3); None unless the whole text is plain ASCII semver."""
    match = _SEMVER.fullmatch(version)
    if match is None:
        return None
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


# A param's schema key naming the inputs it depends on being linked or not, e.g. a model
# loaded only when the node's ``mask`` is linked: {"mask": true}. ``check``, ``models pull``
# and the models a PNG records then name only the models the node will load.
USED_WHEN_LINKED = "usedWhenLinked"


def used_with(param: ParamSpec, linked: Iterable[str]) -> bool:
    """Whether a param is used by a node whose linked inputs are ``linked``."""
    wanted = param.schema.get(USED_WHEN_LINKED)
    if not isinstance(wanted, dict):
        return True
    names = set(linked)
    return all((name in names) == bool(on) for name, on in wanted.items())


def Param(default: Any = ..., **kwargs: Any) -> Any:  # noqa: N802 - reads like a type
    """Declare a param's bounds, choices or description: ``Annotated[int, Param(ge=1)]``."""
    return Field(default, **kwargs)


@dataclass(frozen=True)
class InputSpec:
    """One input port of a node type."""

    name: str
    type: PortType
    optional: bool


@dataclass(frozen=True)
class ParamSpec:
    """One param of a node type, with its JSON schema (bounds, choices, description)."""

    name: str
    schema: dict[str, Any]
    default: Any
    required: bool


@dataclass(frozen=True)
class Batching:
    """How a node runs several items in one call (several seeds or prompts per pipeline call).

    ``over`` names the params and inputs that may differ between the items of one call;
    every other param and input is the same for all of them. ``run`` is called as
    ``run(ctx, items, **shared)``: ``items`` is a list of dicts holding the ``over`` values
    of each item, ``shared`` the rest; it returns one output (as the node function would)
    per item, in order. Each item's output must equal a single call of the node function
    with the same values (up to floating-point batch effects).
    """

    over: tuple[str, ...]
    run: Callable[..., list[Any]]


@dataclass
class NodeSpec:
    """Everything known about a node type."""

    type_id: str
    version: str
    title: str
    category: str
    doc: str
    func: Callable[..., Any]
    inputs: dict[str, InputSpec]
    params: dict[str, ParamSpec]
    params_model: type[BaseModel]
    outputs: dict[str, PortType]
    output_node: bool
    pack: str
    wants_context: bool
    single_output: bool
    file_params: tuple[str, ...] = ()
    output_params: tuple[str, ...] = ()
    batching: Batching | None = None

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (for ``graphkit nodes --json`` and the editor)."""
        return {
            "type": self.type_id,
            "version": self.version,
            "title": self.title,
            "category": self.category,
            "pack": self.pack,
            "doc": self.doc,
            "output_node": self.output_node,
            "inputs": {
                n: {"type": i.type.name, "optional": i.optional} for n, i in self.inputs.items()
            },
            "params": {n: p.schema for n, p in self.params.items()},
            "outputs": {n: t.name for n, t in self.outputs.items()},
        }


class RegistryError(Exception):
    """A node type declared wrongly (a programming error in a node pack)."""


@dataclass
class Registry:
    """Node types by id, and the packs they came from."""

    specs: dict[str, NodeSpec] = field(default_factory=dict)
    packs: dict[str, str] = field(default_factory=dict)  # pack -> distribution
    failed_packs: dict[str, str] = field(default_factory=dict)  # pack -> error
    _loaded: bool = False

    def add(self, spec: NodeSpec) -> None:
        known = self.specs.get(spec.type_id)
        if known is not None and known.func is not spec.func and known.pack != spec.pack:
            raise RegistryError(
                f"node type '{spec.type_id}' is declared by both '{known.pack}' and '{spec.pack}'"
            )
        self.specs[spec.type_id] = spec

    def get(self, type_id: str) -> NodeSpec | None:
        return self.specs.get(type_id)

    def __contains__(self, type_id: str) -> bool:
        return type_id in self.specs

    def load_packs(self) -> None:
        """Import every node pack advertised under the ``graphkit.nodes`` entry-point group."""
        if self._loaded:
            return
        self._loaded = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else ep.name
            self.packs[ep.name] = dist
            try:
                loaded = ep.load()
                if isinstance(loaded, types.ModuleType):
                    self._adopt(loaded.__name__)
                elif callable(loaded):
                    loaded(self)
            except Exception as exc:  # a broken pack must not break the others
                self.failed_packs[ep.name] = f"{type(exc).__name__}: {exc}"

    def _adopt(self, module: str) -> None:
        """Add the node types a pack module declared with ``@node`` (they land in REGISTRY)."""
        if self is REGISTRY:
            return
        for spec in list(REGISTRY.specs.values()):
            where = spec.func.__module__
            if where == module or where.startswith(module + "."):
                self.add(spec)


REGISTRY = Registry()


def registry() -> Registry:
    """The process registry with every installed pack loaded."""
    REGISTRY.load_packs()
    return REGISTRY


def node(
    type_id: str,
    *,
    title: str | None = None,
    category: str = "misc",
    version: str = "1.0.0",
    outputs: dict[str, Any] | None = None,
    output_node: bool = False,
    file_params: tuple[str, ...] = (),
    output_params: tuple[str, ...] = (),
    batching: Batching | None = None,
    into: Registry | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a node type from a typed function and register it.

    Arguments annotated with a port type are inputs (optional when defaulting to None);
    other arguments are params validated by pydantic; the return annotation (or
    ``outputs``) names the output ports. A first argument annotated ``RunContext``
    receives the run context. ``file_params`` names params holding input file paths: the
    cache key then covers the file's identity, size and modification time.
    ``output_params`` names params holding the name of a file the node writes into the
    output folder: two nodes of a graph may not write one name.
    ``batching``
    lets the scheduler run several items (e.g. sweep variations differing in seed or
    prompt) in one call; see :class:`Batching`.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        spec = build_spec(func, type_id, title, category, version, outputs, output_node)
        for kind, names in (("file_params", file_params), ("output_params", output_params)):
            unknown = set(names) - set(spec.params)
            if unknown:
                raise RegistryError(f"node '{type_id}': {kind} {sorted(unknown)} are not params")
        spec.file_params = tuple(file_params)
        spec.output_params = tuple(output_params)
        if batching is not None:
            _check_batching(type_id, spec, batching)
            spec.batching = batching
        (into or REGISTRY).add(spec)
        func.spec = spec  # type: ignore[attr-defined]
        return func

    return decorate


def _check_batching(type_id: str, spec: NodeSpec, batching: Batching) -> None:
    unknown = set(batching.over) - set(spec.params) - set(spec.inputs)
    if unknown or not batching.over:
        raise RegistryError(f"node '{type_id}': batching over {sorted(unknown) or 'nothing'}: "
                            "name params or inputs of the node")
    if spec.output_node:
        raise RegistryError(f"node '{type_id}': output nodes write files and run one at a "
                            "time; they cannot declare batching")
    if not spec.wants_context:
        raise RegistryError(f"node '{type_id}': batching needs a RunContext argument")


def build_spec(
    func: Callable[..., Any],
    type_id: str,
    title: str | None,
    category: str,
    version: str,
    outputs: dict[str, Any] | None,
    output_node: bool,
) -> NodeSpec:
    """Read a node function's signature into a NodeSpec."""
    if not _TYPE_ID.fullmatch(type_id):
        raise RegistryError(f"node type id '{type_id}' must look like 'family.name'")
    if parse_semver(version) is None:
        raise RegistryError(f"node '{type_id}': version '{version}' is not semver (1.2.3)")
    hints = typing.get_type_hints(func, include_extras=True)
    sig = inspect.signature(func)
    inputs: dict[str, InputSpec] = {}
    fields: dict[str, Any] = {}
    wants_context = False
    for name, parameter in sig.parameters.items():
        annotation = hints.get(name, Any)
        if _is_context(annotation):
            wants_context = True
            continue
        inner, optional = _unwrap_optional(annotation)
        if is_port_annotation(inner):
            has_default = parameter.default is not inspect.Parameter.empty
            inputs[name] = InputSpec(name, port_type(inner), optional or has_default)
            continue
        default = parameter.default
        if default is inspect.Parameter.empty:
            default = ...
        fields[name] = (annotation, default)
    params_model = create_model(  # type: ignore[call-overload]
        f"Params_{type_id.replace('.', '_')}",
        __config__=ConfigDict(extra="forbid", strict=True, allow_inf_nan=False),
        **fields,
    )
    params = _param_specs(params_model)
    out_types, single = _output_types(type_id, outputs, hints.get("return", None))
    doc = inspect.cleandoc(func.__doc__ or "")
    return NodeSpec(
        type_id=type_id,
        version=version,
        title=title or type_id,
        category=category,
        doc=doc,
        func=func,
        inputs=inputs,
        params=params,
        params_model=params_model,
        outputs=out_types,
        output_node=output_node,
        pack=func.__module__.split(".")[0],
        wants_context=wants_context,
        single_output=single,
    )


def _is_context(annotation: Any) -> bool:
    return getattr(annotation, "__name__", "") == "RunContext"


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def _param_specs(model: type[BaseModel]) -> dict[str, ParamSpec]:
    schema = model.model_json_schema()
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    specs = {}
    for name, info in model.model_fields.items():
        default = None if info.is_required() else _default_of(info)
        specs[name] = ParamSpec(name, props.get(name, {}), default, name in required)
    return specs


def _default_of(info: FieldInfo) -> Any:
    return info.get_default(call_default_factory=True)


def _output_types(
    type_id: str, outputs: dict[str, Any] | None, returns: Any
) -> tuple[dict[str, PortType], bool]:
    if outputs is not None:
        return {name: _as_port_type(type_id, a) for name, a in outputs.items()}, False
    if returns is None or returns is type(None):
        return {}, True
    pt = _as_port_type(type_id, returns)
    name = getattr(pt.cls, "port_name", None) or PLAIN_TYPES.get(pt.cls, "value").lower()
    return {name: pt}, True


def _as_port_type(type_id: str, annotation: Any) -> PortType:
    if is_port_annotation(annotation):
        return port_type(annotation)
    if annotation in PLAIN_TYPES:
        return PortType(annotation)
    raise RegistryError(f"node '{type_id}': output type {annotation!r} is not a port type")
