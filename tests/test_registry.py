"""The @node declaration, node specs, and node packs found through entry points."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Literal

import pytest

from graphkit.context import RunContext
from graphkit.graph import GraphDoc
from graphkit.registry import (
    ENTRY_POINT_GROUP,
    REGISTRY,
    Param,
    Registry,
    RegistryError,
    node,
    registry,
)
from graphkit.types import Image, Latent, Mask, PortType, Prompt
from graphkit.validate import validate


def test_decorator_builds_full_spec() -> None:
    """Inputs, params (bounds, choices, defaults), outputs, doc, version and category."""
    reg = Registry()

    @node("demo.blend", title="Blend", category="demo", version="2.3.4", into=reg)
    def blend(
        ctx: RunContext,
        base: Image,
        mask: Mask | None = None,
        strength: Annotated[float, Param(ge=0, le=1, description="How much.")] = 0.5,
        mode: Literal["add", "mul"] = "add",
        steps: int = 4,
        label: str = ...,  # type: ignore[assignment]
    ) -> Image:
        """Blend things.

        More words."""
        return base

    spec = reg.get("demo.blend")
    assert spec is not None and blend.spec is spec  # type: ignore[attr-defined]
    assert (spec.title, spec.category, spec.version, spec.major) == ("Blend", "demo", "2.3.4", 2)
    assert spec.doc == "Blend things.\n\nMore words."
    assert spec.wants_context
    assert set(spec.inputs) == {"base", "mask"}
    assert spec.inputs["base"].type == PortType(Image) and not spec.inputs["base"].optional
    assert spec.inputs["mask"].type == PortType(Mask) and spec.inputs["mask"].optional
    assert list(spec.params) == ["strength", "mode", "steps", "label"]
    strength = spec.params["strength"]
    assert (strength.schema["minimum"], strength.schema["maximum"]) == (0, 1)
    assert strength.schema["description"] == "How much."
    assert strength.default == 0.5 and not strength.required
    assert spec.params["mode"].schema["enum"] == ["add", "mul"]
    assert spec.params["steps"].default == 4
    assert spec.params["label"].required
    assert spec.outputs == {"image": PortType(Image)}
    assert spec.single_output and not spec.output_node
    assert spec.pack == __name__.split(".")[0]
    described = json.loads(json.dumps(spec.describe()))
    assert described["inputs"]["mask"] == {"type": "Mask", "optional": True}
    assert described["outputs"] == {"image": "Image"}
    assert described["params"]["mode"]["enum"] == ["add", "mul"]


def test_params_model_enforces_declaration() -> None:
    """The params model refuses out-of-bounds values, wrong types, extra keys; fills defaults."""
    reg = Registry()

    @node("demo.count", into=reg)
    def count(n: Annotated[int, Param(ge=1, le=3)] = 2) -> int:
        """Counts."""
        return n

    model = reg.specs["demo.count"].params_model
    assert model.model_validate({}).model_dump() == {"n": 2}
    for bad in ({"n": 0}, {"n": 4}, {"n": "2"}, {"n": 1.5}, {"m": 1}):
        with pytest.raises(ValueError):
            model.model_validate(bad)
    assert reg.specs["demo.count"].outputs == {"int": PortType(int)}
    assert not reg.specs["demo.count"].wants_context


def test_multiple_outputs_and_output_node() -> None:
    """``outputs=`` names several ports; narrowed output types keep their attributes."""
    reg = Registry()

    @node("demo.split", outputs={"latent": Latent.where(space="sdxl"), "prompt": Prompt},
          output_node=True, into=reg)
    def split() -> dict:
        """Two outputs."""
        return {}

    spec = reg.specs["demo.split"]
    assert spec.outputs["latent"].attrs == (("space", "sdxl"),)
    assert spec.outputs["prompt"] == PortType(Prompt)
    assert spec.output_node and not spec.single_output


@pytest.mark.parametrize("type_id", ["nodot", "Upper.case", "a.", ".a", "a..b", "1a.b", "a-b.c"])
def test_bad_type_id_rejected(type_id: str) -> None:
    """Type ids look like ``family.name`` in lower case."""
    with pytest.raises(RegistryError, match="family.name"):
        node(type_id, into=Registry())(lambda: None)


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "1.0.0-beta", "1.0.x", ""])
def test_bad_semver_rejected(version: str) -> None:
    """Versions are plain semver."""
    with pytest.raises(RegistryError, match="semver"):
        node("demo.x", version=version, into=Registry())(lambda: None)


def test_non_port_output_rejected() -> None:
    """An output annotation must be a port type."""

    def bad() -> list:
        return []

    with pytest.raises(RegistryError, match="not a port type"):
        node("demo.bad", into=Registry())(bad)


def test_same_type_from_two_packs_rejected() -> None:
    """Two packs may not declare one type id."""
    reg = Registry()

    def first() -> Image:
        raise AssertionError

    def second() -> Image:
        raise AssertionError

    first.__module__ = "pack_one.nodes"
    second.__module__ = "pack_two.nodes"
    node("demo.same", into=reg)(first)
    with pytest.raises(RegistryError, match="pack_one"):
        node("demo.same", into=reg)(second)


def test_builtin_pack_found_by_entry_point() -> None:
    """The built-in pack is advertised under graphkit.nodes and loads into a fresh registry."""
    names = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert names.get("nodes") == "nodes"
    reg = Registry()
    reg.load_packs()
    assert "nodes" in reg.packs and not reg.failed_packs
    for type_id in ("image.load", "image.save", "image.composite", "mask.feather", "text.prompt"):
        assert type_id in reg
        assert reg.specs[type_id].pack == "nodes"
    assert "image.save" in registry()


# --- third-party packs written as fake distributions -----------------------------------------

@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for fake distributions; global registry and modules restored."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(REGISTRY, "specs", dict(REGISTRY.specs))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith(("acme_", "broken_")):
            del sys.modules[name]


def write_dist(site: Path, dist: str, entry: str, module: str, source: str) -> None:
    """A minimal installed distribution: dist-info (METADATA, entry_points.txt) + a module."""
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


HELLO = """
    from graphkit import Prompt, node

    @node("{type_id}", category="acme", version="1.1.0")
    def hello(text: str = "hi") -> Prompt:
        \"\"\"Says hello.\"\"\"
        return Prompt(text)
"""


def test_third_party_module_pack_discovered(site: Path) -> None:
    """A pack module declaring nodes with @node shows up in a fresh registry."""
    module = unique("acme_pack")
    type_id = f"{module}.hello"
    write_dist(site, module.replace("_", "-"), f"{module} = {module}", module,
               HELLO.format(type_id=type_id))
    reg = Registry()
    reg.load_packs()
    assert module in reg.packs and reg.packs[module] == module.replace("_", "-")
    assert not reg.failed_packs
    spec = reg.specs[type_id]
    assert (spec.version, spec.category, spec.pack) == ("1.1.0", "acme", module)
    assert "image.load" in reg  # the built-in pack still loads beside it


def test_third_party_register_function_pack(site: Path) -> None:
    """A pack advertised as a ``register(registry)`` function fills the registry it is given."""
    module = unique("acme_fn")
    type_id = f"{module}.thing"
    write_dist(site, module, f"{module} = {module}:register", module, f"""
        from graphkit import Image, node

        def register(reg):
            @node("{type_id}", into=reg)
            def thing(image: Image) -> Image:
                return image
    """)
    reg = Registry()
    reg.load_packs()
    assert type_id in reg
    assert type_id not in REGISTRY.specs


def test_broken_pack_recorded_others_still_load(site: Path) -> None:
    """A pack raising on import lands in failed_packs; other packs load."""
    good, bad = unique("acme_good"), unique("broken_pack")
    write_dist(site, good, f"{good} = {good}", good, HELLO.format(type_id=f"{good}.hello"))
    write_dist(site, bad, f"{bad} = {bad}", bad, "raise RuntimeError('no GPU driver here')\n")
    reg = Registry()
    reg.load_packs()
    assert bad in reg.failed_packs
    assert "RuntimeError" in reg.failed_packs[bad] and "no GPU driver" in reg.failed_packs[bad]
    assert f"{good}.hello" in reg
    assert "image.save" in reg
    doc = GraphDoc.model_validate({"nodes": {"x": {"type": f"{bad}.thing", "pack": bad}}})
    (p,) = [p for p in validate(doc, reg) if p.code == "unknown_type"]
    assert bad in p.message and "failed to load" in p.message and "no GPU driver" in p.message


def test_load_packs_runs_once() -> None:
    """A second load_packs call is a no-op."""
    reg = Registry()
    reg.load_packs()
    count = len(reg.specs)
    reg.specs.pop("image.load")
    reg.load_packs()
    assert len(reg.specs) == count - 1


def test_type_from_missing_pack_names_the_pack() -> None:
    """A node from a pack that is not installed gets an error naming that pack."""
    reg = Registry()
    reg.load_packs()
    doc = GraphDoc.model_validate({"nodes": {
        "gen": {"type": "fancy.generate", "pack": "fancy_nodes"},
        "other": {"type": "image.mystery", "pack": "nodes"},
        "plain": {"type": "nowhere.node"},
    }})
    problems = {p.node: p for p in validate(doc, reg)}
    gen = problems["gen"]
    assert gen.code == "unknown_type" and gen.field == "type"
    assert "'fancy_nodes'" in gen.message and "not installed" in gen.message
    assert "does not declare" in problems["other"].message
    assert "no installed node pack" in problems["plain"].message


@pytest.mark.parametrize("type_id", ["demo.x\n", "demo.x\r\n"])
def test_type_id_with_trailing_newline_rejected(type_id: str) -> None:
    with pytest.raises(RegistryError, match="family.name"):
        node(type_id, into=Registry())(lambda: None)


@pytest.mark.parametrize("version", ["1.0.0\n", "\u0661.0.0", "1.\uff10.0"])
def test_semver_is_ascii_and_whole(version: str) -> None:
    with pytest.raises(RegistryError, match="semver"):
        node("demo.x", version=version, into=Registry())(lambda: None)
