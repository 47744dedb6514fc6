"""Graph files and PNGs are data: no pickle, no code from files, no remote code, no
unregistered node types, and pickle weights only on explicit request."""

from __future__ import annotations

import ast
import json
import os
import pickle
import shutil
import subprocess
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
        assert caught.value.kwargs["trust_remote_code"] is False  # said, not defaulted
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


def pickle_only_graph(tmp_path: Path, tiny_root: Path, monkeypatch: pytest.MonkeyPatch
                      ) -> tuple[Path, Path]:
    """A 64x64 text-to-image graph whose model is a pickle-only copy of tiny SDXL-Turbo under
    ``tmp_path/m``, with the unsafe-weights and model-folder settings cleared (restored after
    the test, whatever the CLI sets) and no model manager yet: (folder, graph file)."""
    folder = pickle_only_copy(tm.tiny_path(tiny_root, tm.SDXL_TURBO), tmp_path / "m" / "sdxl")
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps({"format": "graphkit/1", "nodes": {
        "prompt": {"type": "text.prompt", "params": {"text": "a cat"}},
        "gen": {"type": "sdxl.text2image",
                "params": {"model": str(folder), "width": 64, "height": 64},
                "inputs": {"prompt": "prompt.prompt"}},
        "save": {"type": "image.save", "inputs": {"image": "gen.image"}}}}))
    for name in ("GRAPHKIT_ALLOW_UNSAFE_WEIGHTS", "GRAPHKIT_MODEL_DIRS"):
        monkeypatch.setenv(name, "")
    monkeypatch.setattr(models, "_MANAGER", None)
    return folder, graph


def test_pickle_weights_need_the_explicit_flag(
    tmp_path: Path, tiny_root: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    _folder, graph = pickle_only_graph(tmp_path, tiny_root, monkeypatch)
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


# --- model folders that need custom code ----------------------------------------------------

def from_pretrained_calls(source: str, filename: str) -> list[str]:
    """Calls to ``from_pretrained`` that do not pass ``trust_remote_code=False`` themselves."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                node.func.attr == "from_pretrained"):
            explicit = any(k.arg == "trust_remote_code" and isinstance(k.value, ast.Constant)
                           and k.value.value is False for k in node.keywords)
            if not explicit:
                found.append(f"{filename}:{node.lineno}")
    return found


def test_every_from_pretrained_passes_trust_remote_code_false() -> None:
    """Explicitly, at every call: no loader may fall back to asking on stdin."""
    files = sorted([*SOURCES, *(ROOT / "bench").rglob("*.py")])
    calls = [path for path in files if "from_pretrained(" in path.read_text()]
    assert len(calls) >= 3  # models.py, tinymodels.py, bench
    missing = [use for path in calls
               for use in from_pretrained_calls(path.read_text(), str(path.relative_to(ROOT)))]
    assert missing == []


def custom_code_sam(tiny_root: Path, dest: Path, marker: Path) -> Path:
    """A copy of the tiny SAM whose preprocessor config points at code that writes ``marker``."""
    shutil.copytree(tm.tiny_path(tiny_root, tm.SAM_BASE), dest)
    (dest / "evil_processor.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(marker)!r}).write_text('the folder ran code')\n"
        "from transformers import SamImageProcessor\n"
        "class EvilProcessor(SamImageProcessor):\n    pass\n")
    config_file = dest / "preprocessor_config.json"
    config = json.loads(config_file.read_text())
    config["auto_map"] = {"AutoImageProcessor": "evil_processor.EvilProcessor"}
    config["image_processor_type"] = "EvilProcessor"
    config_file.write_text(json.dumps(config))
    return dest


def sam_graph(folder: Path, model: Path) -> Path:
    PILImage.new("RGB", (64, 64), "white").save(folder / "photo.png")
    path = folder / "g.json"
    path.write_text(json.dumps({"format": "graphkit/1", "nodes": {
        "photo": {"type": "image.load", "params": {"path": "photo.png"}},
        "mask": {"type": "sam.mask", "params": {"points": [[10, 10, 1]], "model": str(model)},
                 "inputs": {"image": "photo.image"}},
        "view": {"type": "mask.to_image", "inputs": {"mask": "mask.mask"}},
        "save": {"type": "image.save", "inputs": {"image": "view.image"}}}}))
    return path


def test_custom_code_model_folder_is_refused_without_a_prompt(
    tmp_path: Path, tiny_root: Path
) -> None:
    """Answering 'y' on stdin changes nothing: no prompt is shown, no code from the folder runs."""
    marker = tmp_path / "MARKER"
    model = custom_code_sam(tiny_root, tmp_path / "models" / "sam", marker)
    graph = sam_graph(tmp_path, model)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               HF_MODULES_CACHE=str(tmp_path / "modules"), GRAPHKIT_TINY_DIR=str(tiny_root))
    base = [sys.executable, "-m", "graphkit"]
    run = subprocess.run([*base, "run", str(graph), "--out", str(tmp_path / "out"),
                          "--device", "cpu", "--model-dir", str(tmp_path / "models")],
                         input="y\ny\n", capture_output=True, text=True, env=env, timeout=300)
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode == 2, run.stderr
    assert len(errors) == 1 and "node 'mask' (sam.mask) 'model'" in errors[0]
    assert str(model) in errors[0] and "custom code" in errors[0]
    assert "auto_map" in errors[0] and "preprocessor_config.json" in errors[0]
    assert "Do you wish" not in run.stdout + run.stderr and "Traceback" not in run.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()
    check = subprocess.run([*base, "check", str(graph), "--model-dir", str(tmp_path / "models")],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                           timeout=300)
    assert check.returncode == 2
    assert f"model {model}: refused:" in check.stdout and "custom code" in check.stdout
    assert "everything is here" not in check.stdout and not marker.exists()


@pytest.mark.parametrize(("where", "edit"), [
    ("text_encoder/config.json", {"auto_map": {"AutoModel": "code.Model"}}),
    ("tokenizer/tokenizer_config.json", {"auto_map": {"AutoTokenizer": ["code.Tok", None]}}),
    ("model_index.json", {"unet": ["my_unet", "MyUNet"]}),
    ("model_index.json", {"_class_name": ["pipeline", "MyPipeline"]}),
])
def test_any_config_asking_for_custom_code_is_refused_before_loading(
    tmp_path: Path, tiny_root: Path, monkeypatch: pytest.MonkeyPatch, where: str,
    edit: dict[str, Any]
) -> None:
    import diffusers

    folder = tmp_path / "models" / "sdxl"
    shutil.copytree(tm.tiny_path(tiny_root, tm.SDXL_TURBO), folder)
    config = json.loads((folder / where).read_text())
    config.update(edit)
    (folder / where).write_text(json.dumps(config))

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("from_pretrained was called")

    monkeypatch.setattr(diffusers.AutoPipelineForText2Image, "from_pretrained", never)
    mgr = ModelManager(device="cpu", model_dirs=[tmp_path / "models"], tiny_root=tiny_root)
    with pytest.raises(models.ModelError, match="custom code") as err:
        mgr.sdxl(str(folder))
    assert where.split("/")[-1] in str(err.value) and "\n" not in str(err.value)
    assert mgr.load_count == 0


def test_every_loader_call_gets_trust_remote_code_false(
    tiny_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Processors and tokenizers too: SAM's processor is loaded after its model."""
    import transformers

    seen: dict[str, dict[str, Any]] = {}

    class Stub:
        def eval(self) -> Any:
            return self

    def model_loader(owner: type, source: str, **kwargs: Any) -> Any:
        seen["SamModel"] = kwargs
        return Stub()

    def processor_loader(owner: type, source: str, **kwargs: Any) -> Any:
        seen["SamProcessor"] = kwargs
        raise Captured("SamProcessor", kwargs)

    monkeypatch.setattr(transformers.SamModel, "from_pretrained", classmethod(model_loader))
    monkeypatch.setattr(transformers.SamProcessor, "from_pretrained",
                        classmethod(processor_loader))
    mgr = ModelManager(profile="tiny", tiny_root=tiny_root, device="cpu")
    with pytest.raises(Captured):
        mgr.sam(tm.SAM_BASE)
    assert seen["SamModel"]["trust_remote_code"] is False
    assert seen["SamProcessor"]["trust_remote_code"] is False


def test_hub_snapshot_asking_for_custom_code_is_refused_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hub model in the local cache is looked at the same way before it loads."""
    cache = tmp_path / "hub"
    repo = cache / "models--someone--custom-sdxl"
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    (snapshot / "model_index.json").write_text(json.dumps(
        {"_class_name": "StableDiffusionXLPipeline", "unet": ["unet_code", "MyUNet"]}))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    mgr = ModelManager(profile="hub", device="cpu", tiny_root=tmp_path / "tiny")
    with pytest.raises(models.ModelError, match="custom code") as err:
        mgr.sdxl("someone/custom-sdxl")
    assert "unet_code" in str(err.value) and mgr.load_count == 0
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps({"nodes": {
        "p": {"type": "text.prompt"},
        "gen": {"type": "sdxl.text2image", "params": {"model": "someone/custom-sdxl"},
                "inputs": {"prompt": "p.prompt"}},
        "save": {"type": "image.save", "inputs": {"image": "gen.image"}}}}))
    monkeypatch.setattr(models, "_MANAGER", mgr)
    assert cli.main(["check", str(graph)]) == 2
    assert "model someone/custom-sdxl: refused:" in capsys.readouterr().out


def test_check_reports_a_pickle_only_folder(
    tmp_path: Path, tiny_root: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    folder, graph = pickle_only_graph(tmp_path, tiny_root, monkeypatch)
    assert cli.main(["check", str(graph), "--model-dir", str(tmp_path / "m")]) == 2
    out = capsys.readouterr().out
    assert f"model {folder}: refused: " in out and "only pickle weights" in out
    assert "everything is here" not in out
    monkeypatch.setattr(models, "_MANAGER", None)
    assert cli.main(["check", str(graph), "--model-dir", str(tmp_path / "m"),
                     "--allow-unsafe-weights"]) == 0
    assert f"model {folder}: local: " in capsys.readouterr().out
