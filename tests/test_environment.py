"""GRAPHKIT_* environment settings: a bad value is one line and exit 2 before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from graphkit.cli import main
from graphkit.environment import problems

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("GRAPHKIT_LIMIT_MAX_SIDE", "big", "GRAPHKIT_LIMIT_MAX_SIDE must be a whole number"),
    ("GRAPHKIT_LIMIT_MAX_STEPS", "0", "GRAPHKIT_LIMIT_MAX_STEPS must be at least 1"),
    ("GRAPHKIT_LIMIT_MAX_SIDES", "10", "GRAPHKIT_LIMIT_MAX_SIDES is not a limit"),
    ("GRAPHKIT_CACHE_DEVICE_MB", "lots", "GRAPHKIT_CACHE_DEVICE_MB must be a whole number"),
    ("GRAPHKIT_CACHE_HOST_MB", "-5", "GRAPHKIT_CACHE_HOST_MB must be at least 0"),
    ("GRAPHKIT_MODELS", "huge", "GRAPHKIT_MODELS must be one of hub, tiny"),
    ("GRAPHKIT_DEVICE", "gpu", "GRAPHKIT_DEVICE must be one of auto, cpu, cuda"),
    ("GRAPHKIT_ALLOW_UNSAFE_WEIGHTS", "maybe", "GRAPHKIT_ALLOW_UNSAFE_WEIGHTS must be"),
    ("GRAPHKIT_TINY_DIR", "{file}", "GRAPHKIT_TINY_DIR"),
    ("GRAPHKIT_MODEL_DIRS", "{file}", "GRAPHKIT_MODEL_DIRS"),
])
@pytest.mark.parametrize("command", [["validate", str(GRAPHS / "crop_resize.json")],
                                     ["run", str(GRAPHS / "crop_resize.json")],
                                     ["check", str(GRAPHS / "sdxl_turbo.json")]])
def test_bad_environment_value_is_one_line_exit_2(
    tmp_path: Path, name: str, value: str, expected: str, command: list[str]
) -> None:
    file = tmp_path / "a-file"
    file.write_text("x")
    env = {name: value.format(file=file)}
    found = problems(env)
    assert len(found) == 1 and expected in found[0], found
    if command[0] == "run":
        command = [*command, "--out", str(tmp_path / "out")]
    proc = subprocess.run([sys.executable, "-m", "graphkit", *command], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={**_base_env(), **env})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and expected in proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("GRAPHKIT_")}


@pytest.mark.parametrize(("name", "value"), [
    ("GRAPHKIT_LIMIT_MAX_SIDE", "4096"), ("GRAPHKIT_CACHE_DEVICE_MB", "0"),
    ("GRAPHKIT_MODELS", "tiny"), ("GRAPHKIT_DEVICE", "cpu"), ("GRAPHKIT_DEVICE", "auto"),
    ("GRAPHKIT_ALLOW_UNSAFE_WEIGHTS", "1"), ("GRAPHKIT_ALLOW_UNSAFE_WEIGHTS", "false"),
    ("GRAPHKIT_ALLOW_UNSAFE_WEIGHTS", ""), ("GRAPHKIT_TINY_DIR", "/no/such/folder/yet"),
    ("GRAPHKIT_MODEL_DIRS", ""), ("GRAPHKIT_SOMETHING_ELSE", "whatever"),
])
def test_good_values_pass(name: str, value: str) -> None:
    assert problems({name: value}) == []


def test_several_bad_values_are_all_reported(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHKIT_LIMIT_MAX_NODES", "many")
    monkeypatch.setenv("GRAPHKIT_MODELS", "nope")
    assert main(["validate", str(GRAPHS / "crop_resize.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "GRAPHKIT_LIMIT_MAX_NODES" in err and "GRAPHKIT_MODELS" in err


def test_the_stand_alone_editor_launcher_checks_the_settings_too(tmp_path: Path) -> None:
    """``python -m graphkit.editor.launch`` refuses a bad setting before it starts a server."""
    proc = subprocess.run([sys.executable, "-m", "graphkit.editor.launch", "--workspace",
                           str(tmp_path)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL,
                          env={**_base_env(), "GRAPHKIT_CACHE_HOST_MB": "lots"})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "error: GRAPHKIT_CACHE_HOST_MB must be a whole number (got 'lots')\n"
    assert proc.stdout == ""  # no "graphkit editor: http://..." line: nothing was served
