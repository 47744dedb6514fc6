"""Failure isolation end to end: out-of-memory recovery in the model manager and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_fixture import shared_tiny_root

from graphkit import cli, models
from graphkit import tinymodels as tm
from graphkit.api import default_scheduler
from graphkit.devices import host_device
from graphkit.models import ModelManager
from graphkit.registry import Registry, node, registry
from graphkit.types import Image

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_root(tmp_path_factory)


def test_recover_from_oom_moves_models_to_host_and_turns_on_offload(tiny_root: Path) -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    mgr = ModelManager(profile="tiny", tiny_root=tiny_root, device=device)
    mgr.sdxl(tm.SDXL_TURBO)
    mgr.sam(tm.SAM_BASE)
    assert all(info["state"] == "device" for info in mgr.loaded().values())
    mgr.recover_from_oom()
    assert mgr.offload_all
    assert {info["state"] for info in mgr.loaded().values()} == {"host"}
    for entry in mgr._entries.values():
        assert all(p.device.type == host_device().type
                   for m in entry.modules() for p in m.parameters())
    assert mgr.resident_bytes() == 0
    pipe = mgr.sdxl(tm.SDXL_TURBO)  # still usable afterwards
    assert pipe is not None and mgr.load_count == 2


@pytest.fixture
def hungry_type(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """A node type ``test.hungry`` in the process registry that runs out of memory
    ``counts['fail']`` times, then passes its image through."""
    counts = {"fail": 0, "calls": 0}

    @node("test.hungry", into=Registry())
    def hungry(image: Image) -> Image:
        """Simulates an out-of-memory on the device."""
        counts["calls"] += 1
        if counts["fail"] > 0:
            counts["fail"] -= 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return Image(image.pixels * 0.5)

    monkeypatch.setitem(registry().specs, "test.hungry", hungry.spec)  # type: ignore[attr-defined]
    return counts


def test_out_of_memory_in_one_branch_keeps_the_other_and_resumes(
    tmp_path: Path, hungry_type: dict[str, int], tiny_root: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mgr = ModelManager(profile="tiny", tiny_root=tiny_root, device="cpu")
    mgr.kandinsky_prior(tm.KANDINSKY_PRIOR)
    monkeypatch.setattr(models, "_MANAGER", mgr)
    graph = tmp_path / "g.json"
    photo = (ROOT / "graphs" / "inputs" / "photo.png").resolve()
    graph.write_text(json.dumps({"format": "graphkit/1", "nodes": {
        "photo": {"type": "image.load", "params": {"path": "photo.png"}},
        "eat": {"type": "test.hungry", "inputs": {"image": "photo.image"}},
        "save_eat": {"type": "image.save", "params": {"name": "eaten"},
                     "inputs": {"image": "eat.image"}},
        "save_plain": {"type": "image.save", "params": {"name": "plain"},
                       "inputs": {"image": "photo.image"}}}}))
    out = tmp_path / "out"
    args = ["run", str(graph), "--out", str(out), "--device", "cpu", "--input",
            str(photo.parent)]
    hungry_type["fail"] = 2
    assert cli.main(args) == 1
    std = capsys.readouterr()
    assert hungry_type["calls"] == 2  # tried, freed memory, retried once, gave up
    assert ("error: " + str(graph) + ": node 'eat' (test.hungry): MemoryError: out of memory, "
            "also after moving cached outputs to host memory and retrying with CPU offload "
            "(CUDA out of memory. Tried to allocate 20.00 GiB)") in std.err
    assert "save_eat (image.save) skipped ('eat' failed)" in std.err
    assert sorted(p.name for p in out.iterdir()) == ["plain.png"]
    assert mgr.offload_all and {i["state"] for i in mgr.loaded().values()} == {"host"}

    hungry_type["fail"] = 1  # one OOM: recovered by the retry
    assert cli.main(args) == 0
    std = capsys.readouterr()
    assert hungry_type["calls"] == 4
    assert "photo (image.load) cached" in std.err and "save_plain (image.save) cached" in std.err
    assert "eat (test.hungry) ran" in std.err
    assert sorted(p.name for p in out.iterdir()) == ["eaten.png", "plain.png"]
    default_scheduler().cache.clear()
