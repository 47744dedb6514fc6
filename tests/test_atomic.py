"""Atomic output: a writer killed at any moment leaves the old file or the new one, whole.

A killed writer may leave its hidden temporary file (``.NAME.<random>.tmp``) behind;
graphkit never reads those, ``fileio.is_temp_file`` names them and
``fileio.remove_stale_temps`` clears them.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image as PILImage
from PIL import PngImagePlugin

from graphkit.fileio import atomic_write_text, is_temp_file, remove_stale_temps
from graphkit.graph import load_doc
from graphkit.pngmeta import encode_png, read_graph_text

ROOT = Path(__file__).resolve().parent.parent

# Loads fileio.py alone (it imports nothing from graphkit), so each writer starts fast.
WRITER = """
import importlib.util, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("fileio", sys.argv[1])
fileio = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fileio)
folder = Path(sys.argv[2])
versions = [(folder / "src" / f"v{i}.json").read_bytes() for i in range(2)]
pngs = [(folder / "src" / f"v{i}.png").read_bytes() for i in range(2)]
i = 0
while True:
    fileio.atomic_write_text(folder / "graph.json", versions[i % 2].decode())
    fileio.atomic_write_bytes(folder / "image.png", pngs[i % 2])
    if i == 0:
        print("ready", flush=True)
    i += 1
"""


def big_graph(tag: str) -> str:
    """A valid graph file of a few megabytes."""
    notes = {f"note{i}": f"{tag} " * 200 for i in range(3000)}
    return json.dumps({"format": "graphkit/1", "name": tag, "nodes": {
        "p": {"type": "text.prompt", "params": {"text": tag}}}, "ui": notes}, indent=1)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_killed_writers_never_leave_a_torn_file(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow's own decoder (used below to prove the pixels are whole) refuses text chunks
    # over 1 MB unless told otherwise; graphkit reads them without Pillow.
    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_CHUNK", 64 << 20)
    src = tmp_path / "src"
    src.mkdir()
    texts = [big_graph("first"), big_graph("second")]
    pngs = []
    for i, text in enumerate(texts):
        (src / f"v{i}.json").write_text(text)
        noise = PILImage.effect_noise((512, 512), 60 + i).convert("RGB")
        pngs.append(encode_png(noise, text))
        (src / f"v{i}.png").write_bytes(pngs[-1])
    assert len(texts[0]) > 2_000_000
    rnd = random.Random(7)
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(ROOT / "graphkit" / "fileio.py"), str(tmp_path)],
            stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rnd.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        graph_text = (tmp_path / "graph.json").read_text()
        assert graph_text in texts
        assert load_doc(tmp_path / "graph.json").name in ("first", "second")
        assert (tmp_path / "image.png").read_bytes() in pngs
        assert read_graph_text(tmp_path / "image.png") in texts
        with PILImage.open(tmp_path / "image.png") as img:
            img.load()
        others = {p.name for p in tmp_path.iterdir()} - {"graph.json", "image.png", "src"}
        assert all(is_temp_file(tmp_path / name) for name in others), others
    remove_stale_temps(tmp_path, older_than_s=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.json", "image.png", "src"]


def test_temp_file_names(tmp_path: Path) -> None:
    assert is_temp_file(Path(".graph.json.k2j_8x9f.tmp"))
    for name in ("graph.json", ".graph.json", "x.tmp", ".tmp", "graph.json.tmp"):
        assert not is_temp_file(Path(name)), name


def test_young_temp_files_are_kept_for_writers_still_running(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "g.json", "{}")
    young = tmp_path / ".g.json.abc123.tmp"
    young.write_text("half")
    assert remove_stale_temps(tmp_path) == []
    assert young.exists()
    assert remove_stale_temps(tmp_path, older_than_s=0) == [young]
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]
