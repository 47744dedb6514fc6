"""Set-up and hints: `make` picks the torch index asked for and refuses an old Python,
`graphkit models tiny DIR` prints a command that really uses DIR, and `make run` with real
weights missing points to the tiny profile."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from graphkit.cli import tiny_models_hint

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_models_tiny_hint_runs_on_that_folder(tmp_path: Path) -> None:
    """Written to a folder that is not the default, the printed command runs a graph on
    those models (the default folder stays empty)."""
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "HF_HUB_OFFLINE": "1"}
    for name in ("GRAPHKIT_TINY_DIR", "GRAPHKIT_MODELS", "XDG_CACHE_HOME"):
        env.pop(name, None)
    made = subprocess.run([sys.executable, "-m", "graphkit", "models", "tiny", "my-models"],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    hint = made.stdout.splitlines()[-1]
    folder = (tmp_path / "my-models").resolve()
    assert hint == (f"use them with: GRAPHKIT_TINY_DIR={shlex.quote(str(folder))} "
                    "graphkit run GRAPH --models tiny")
    words = shlex.split(hint.removeprefix("use them with: "))
    graph = str(ROOT / "graphs" / "sdxl_turbo.json")
    words = [str(BIN / "graphkit") if w == "graphkit" else graph if w == "GRAPH" else w
             for w in words]
    command = shlex.join(words) + " --set gen.width=64 --set gen.height=64 --out out"
    other = tmp_path / "elsewhere"  # run from another folder: the hint's path is absolute
    other.mkdir()
    ran = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=600,
                         env=env, cwd=other)
    assert ran.returncode == 0, ran.stderr
    assert (other / "out" / "lighthouse.png").is_file()
    assert not (home / ".cache" / "graphkit" / "tiny-models").exists()


def test_models_tiny_hint_for_the_default_folder(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHKIT_TINY_DIR", str(tmp_path / "tiny"))
    assert tiny_models_hint(tmp_path / "tiny") == \
        "use them with: graphkit run GRAPH --models tiny"
    monkeypatch.delenv("GRAPHKIT_TINY_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    default = tmp_path / ".cache" / "graphkit" / "tiny-models"
    assert tiny_models_hint(default) == "use them with: graphkit run GRAPH --models tiny"


def test_make_run_with_missing_real_weights_suggests_models_tiny(tmp_path: Path) -> None:
    """`make run MODELS=hub` offline with an empty cache fails and says MODELS=tiny."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    for name in ("GRAPHKIT_MODELS", "HF_HUB_CACHE", "MAKEFLAGS"):
        env.pop(name, None)
    proc = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "run", "MODELS=hub",
         f"OUT={tmp_path / 'out'}", f"BIN={BIN}"],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode != 0
    assert "model 'stabilityai/sdxl-turbo' not found" in proc.stderr
    assert "make run MODELS=tiny" in proc.stdout + proc.stderr
    assert not (tmp_path / "out").exists()


def _make_dry_run(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "TORCH_INDEX")}
    proc = subprocess.run(["make", "--no-print-directory", "-n", "-B", ".venv/.installed",
                           *args], capture_output=True, text=True, timeout=60, env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_make_setup_installs_torch_from_the_index_asked_for() -> None:
    torch_lines = [line for line in _make_dry_run().splitlines()
                   if "pip install -q torch==" in line]
    assert [line.split()[-1] for line in torch_lines] == ["torch==2.13.0"]
    cpu = "https://download.pytorch.org/whl/cpu"
    torch_lines = [line for line in _make_dry_run(f"TORCH_INDEX={cpu}").splitlines()
                   if "pip install -q torch==" in line]
    assert [line.split()[-3:] for line in torch_lines] == [
        ["torch==2.13.0", "--index-url", cpu]]


def test_make_setup_refuses_python_older_than_3_11(tmp_path: Path) -> None:
    old = tmp_path / "python-old"
    old.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import sys; sys.exit(1)'\n")
    old.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    proc = subprocess.run(["make", "--no-print-directory", "-B", f"VENV={tmp_path / 'venv'}",
                           f"PYTHON={old}", "setup"], capture_output=True, text=True,
                          timeout=60, env=env, cwd=ROOT)
    assert proc.returncode != 0
    assert "graphkit needs Python 3.11 or newer" in proc.stderr
    assert not (tmp_path / "venv").exists()
