"""Graph files and PNGs are data: no pickle, no code from files, no remote code, no
unregistered node types, and pickle weights only on explicit request."""

from __future__ import annotations

import ast
import json
import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image as PILImage
from safetensors.torch import load_file
from tiny_fixture import shared_tiny_root

from graphkit import cli, models
from graphkit import tinymodels as tm
from graphkit.api import Graph
from graphkit.graph import GraphDoc
from graphkit.models import ModelManager, ModelRef, Resolved
from graphkit.pngmeta import read_graph_text, read_info
from graphkit.registry import registry
from graphkit.validate import validate

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(ROOT / "graphkit").rglob("*.py"), *(ROOT / "nodes").rglob("*.py")])

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve",
                     "marshal"}
FORBIDDEN_CALLS = {"eval", "exec", "__import__", "compile"}
FORBIDDEN_ATTRS = {("torch", "load"), ("pickle", "load"), ("pickle", "loads"),
                   ("numpy", "load"), ("np", "load")}


def _dotted(node: ast.AST) -> tuple[str, ...]:
    """``a.b.c`` as ('a', 'b', 'c'); () for anything else."""
    if isinstance(node, ast.Name):
        return (node.id,)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return (*base, node.attr) if base else ()
    return ()


def unsafe_uses(source: str, filename: str) -> list[str]:
    """Uses of pickle, code evaluation, torch.load and remote code in one module."""
    found = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")[0]
            if module in FORBIDDEN_MODULES:
                found.append(f"{where}: from {node.module} import ...")
            if module == "torch" and any(a.name == "load" for a in node.names):
                found.append(f"{where}: from torch import load")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if len(name) == 1 and name[0] in FORBIDDEN_CALLS:
                found.append(f"{where}: {name[0]}()")
            for keyword in node.keywords:
                if keyword.arg == "trust_remote_code" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    found.append(f"{where}: trust_remote_code={ast.unparse(keyword.value)}")
        if isinstance(node, ast.Attribute) and _dotted(node)[-2:] in FORBIDDEN_ATTRS:
            found.append(f"{where}: {'.'.join(_dotted(node))}")
    return found


def test_scanner_catches_each_pattern() -> None:
    bad = ("import pickle\nfrom dill import loads\nimport torch\nx = torch.load('f')\n"
           "eval('1')\nexec('x')\n__import__('os')\nm.from_pretrained(p, trust_remote_code=True)\n"
           "from torch import load\n")
    assert len(unsafe_uses(bad, "bad.py")) == 8
    fine = "model.eval()\nm.from_pretrained(p, trust_remote_code=False)\ntext = 'pickle'\n"
    assert unsafe_uses(fine, "fine.py") == []


def test_engine_and_nodes_never_unpickle_or_evaluate_code() -> None:
    assert len(SOURCES) > 20
    found = [use for path in SOURCES
             for use in unsafe_uses(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == []
    texts = "\n".join(path.read_text() for path in SOURCES)
    assert "trust_remote_code=True" not in texts and "torch.load(" not in texts


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_root(tmp_path_factory)


@pytest.fixture
def tiny_manager(tiny_root: Path, monkeypatch: pytest.MonkeyPatch) -> ModelManager:
    """A tiny-profile CPU manager as the process manager (the previous one comes back)."""
    manager = ModelManager(profile="tiny", tiny_root=tiny_root, device="cpu")
    monkeypatch.setattr(models, "_MANAGER", manager)
    return manager


def test_no_pickle_while_loading_running_and_reading_pngs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_manager: ModelManager
) -> None:
    """With every unpickling entry point booby-trapped, graphs and PNGs still work."""
    def trap(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("unpickling was attempted")

    for module, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"),
                         (torch, "load")]:
        monkeypatch.setattr(module, name, trap)
    out = tmp_path / "out"
    for example in ("mask_composite.json", "sdxl_turbo.json"):
        graph = Graph.load(ROOT / "graphs" / example)
        if example == "sdxl_turbo.json":
            graph.apply_overrides(["gen.width=64", "gen.height=64"])
        result = graph.run(out, device="cpu")
        assert result.ok, result.failed
    png = out / "lighthouse.png"
    assert json.loads(read_graph_text(png))["nodes"]["gen"]["type"] == "sdxl.text2image"
    assert read_info(png)["versions"]["graphkit"]
    again = Graph.load(png)
    assert again.doc.nodes["gen"].params["width"] == 64 and not again.validate()


class Captured(Exception):  # noqa: N818 - a signal for the test, not an error
    """Raised by the fake from_pretrained with the arguments it was given."""

    def __init__(self, owner: str, kwargs: dict[str, Any]) -> None:
        super().__init__(owner)
        self.owner = owner
        self.kwargs = kwargs


def test_model_loading_never_trusts_remote_code(
    tiny_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every from_pretrained the manager calls gets safetensors only and no remote code."""
    import diffusers
    import transformers

    classes = [getattr(diffusers, n) for n in (
        "AutoPipelineForText2Image", "AutoPipelineForInpainting", "StableDiffusionXLPipeline",
        "StableDiffusionXLInpaintPipeline", "KandinskyV22PriorPipeline",
        "KandinskyV22Pipeline", "KandinskyV22InpaintPipeline", "StableDiffusionUpscalePipeline")]
    classes += [transformers.SamModel, transformers.SamProcessor]
    for cls in classes:
        def fake(owner: type, source: str, _name: str = cls.__name__, **kwargs: Any) -> Any:
            raise Captured(_name, kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(fake))
    mgr = ModelManager(profile="tiny", tiny_root=tiny_root, device="cpu")
    calls = [lambda: mgr.sdxl(tm.SDXL_TURBO), lambda: mgr.sdxl(tm.SDXL_INPAINT, "inpaint"),
             lambda: mgr.kandinsky_prior(tm.KANDINSKY_PRIOR),
             lambda: mgr.kandinsky_decoder(tm.KANDINSKY_DECODER),
             lambda: mgr.upscaler(tm.SD_X4_UPSCALER), lambda: mgr.sam(tm.SAM_BASE)]
    seen = set()
    for call in calls:
        with pytest.raises(Captured) as caught:
            call()
        seen.add(caught.value.owner)
        assert caught.value.kwargs.get("trust_remote_code", False) is False
        assert "custom_pipeline" not in caught.value.kwargs
        assert caught.value.kwargs["use_safetensors"] is True
    assert len(seen) == len(calls)
    hub = Resolved("owner/name", "owner/name", "hub", "abc123")
    kwargs = mgr._load_kwargs(ModelRef("owner/name"), hub, torch.float32)
    assert kwargs["use_safetensors"] is True and "trust_remote_code" not in kwargs


def pickle_only_copy(src: Path, dest: Path) -> Path:
    """A copy of a model folder with its safetensors weights rewritten as .bin pickles."""
    shutil.copytree(src, dest)
    for file in list(dest.rglob("*.safetensors")):
        name = "pytorch_model.bin" if file.name == "model.safetensors" else (
            file.name.replace(".safetensors", ".bin"))
        torch.save(load_file(file), file.with_name(name))
        file.unlink()
    return dest


def test_pickle_weights_need_the_explicit_flag(
    tmp_path: Path, tiny_root: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    folder = pickle_only_copy(tm.tiny_path(tiny_root, tm.SDXL_TURBO), tmp_path / "m" / "sdxl")
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps({"format": "graphkit/1", "nodes": {
        "prompt": {"type": "text.prompt", "params": {"text": "a cat"}},
        "gen": {"type": "sdxl.text2image",
                "params": {"model": str(folder), "width": 64, "height": 64},
                "inputs": {"prompt": "prompt.prompt"}},
        "save": {"type": "image.save", "inputs": {"image": "gen.image"}}}}))
    for name in ("GRAPHKIT_ALLOW_UNSAFE_WEIGHTS", "GRAPHKIT_MODEL_DIRS"):
        monkeypatch.setenv(name, "")  # restored after the test, whatever the CLI sets
    monkeypatch.setattr(models, "_MANAGER", None)
    args = ["run", str(graph), "--out", str(tmp_path / "out"), "--device", "cpu",
            "--model-dir", str(tmp_path / "m")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "node 'gen' (sdxl.text2image) 'model'" in err and "only pickle weights" in err
    assert "--allow-unsafe-weights" in err
    assert models.get_manager().load_count == 0 and not (tmp_path / "out").exists()

    monkeypatch.setattr(models, "_MANAGER", None)  # the flag is read when the manager is made
    assert cli.main([*args, "--allow-unsafe-weights"]) == 0, capsys.readouterr().err
    assert models.get_manager().allow_unsafe_weights
    with PILImage.open(tmp_path / "out" / "image.png") as img:
        assert img.size == (64, 64)


@pytest.mark.parametrize("type_id", ["os.system", "builtins.eval", "nodes.image_io.image_load",
                                     "subprocess.run", "graphkit.cli.main"])
def test_node_types_come_only_from_registered_packs(type_id: str) -> None:
    """A type id is looked up, never imported: naming a Python callable does nothing."""
    before = set(sys.modules)
    doc = GraphDoc.model_validate({"nodes": {"x": {"type": type_id, "pack": type_id}}})
    (problem,) = validate(doc, registry())
    assert problem.code == "unknown_type" and type_id in problem.message
    assert "not installed" in problem.message or "does not declare" in problem.message
    assert set(sys.modules) == before
