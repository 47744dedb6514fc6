"""Packaging metadata: the licence in the current (SPDX string) form, built without warnings."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_license_is_an_spdx_string_and_setuptools_supports_it() -> None:
    data = _pyproject()
    assert data["project"]["license"] == "Apache-2.0"
    floors = [Requirement(r) for r in data["build-system"]["requires"]
              if Requirement(r).name == "setuptools"]
    assert floors, "setuptools is the build backend"
    # setuptools reads the string form from 77.0 on; an older one must not be chosen
    assert not any(floors[0].specifier.contains(v) for v in ("68.0", "76.9"))
    assert floors[0].specifier.contains("77.0")


def test_metadata_builds_without_a_licence_deprecation(tmp_path: Path) -> None:
    """What `pip install` does first: setuptools prepares the metadata. No deprecation box,
    and the licence lands in METADATA as a License-Expression."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("graphkit", "nodes"):
        (src / package).mkdir()
        (src / package / "__init__.py").write_text("")
    out = tmp_path / "meta"
    out.mkdir()
    code = ("import sys; from setuptools import build_meta as b; "
            "print(b.prepare_metadata_for_build_wheel(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=src,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    log = proc.stdout + proc.stderr
    assert "deprecated" not in log.lower(), log
    meta = Parser().parsestr((out / proc.stdout.split()[-1] / "METADATA").read_text())
    assert meta["License-Expression"] == "Apache-2.0"
