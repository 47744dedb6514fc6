"""Ctrl-C during a multi-step diffusion node: stops within one step, writes nothing, exit 130."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_fixture import shared_tiny_root

ROOT = Path(__file__).resolve().parent.parent
STEP = re.compile(r"gen step (\d+)/(\d+)$")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_root(tmp_path_factory)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_mid_node_stops_within_one_step_and_writes_nothing(
    tmp_path: Path, tiny_root: Path
) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "GRAPHKIT_TINY_DIR": str(tiny_root), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphkit", "run", str(ROOT / "graphs" / "sdxl_turbo.json"),
         "--models", "tiny", "--device", "cpu", "--out", str(out), "--progress",
         "--set", "gen.steps=50", "--set", "gen.width=256", "--set", "gen.height=256"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            match = STEP.search(lines[-1])
            if match and int(match.group(1)) >= 2:
                proc.send_signal(signal.SIGINT)
                break
            assert time.monotonic() < deadline, "no step progress within 120 s"
        rest = proc.stderr.read()  # to the end: the child exits after cancelling
        summary = proc.stdout.read() if proc.stdout else ""
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines += rest.splitlines()
    assert proc.returncode == 130, "\n".join(lines)
    cancel_at = next(i for i, line in enumerate(lines) if "cancelling after the current step"
                     in line)
    steps_before = [int(m.group(1)) for line in lines[:cancel_at] if (m := STEP.search(line))]
    steps_after = [int(m.group(1)) for line in lines[cancel_at:] if (m := STEP.search(line))]
    assert steps_before and steps_before[-1] < 50
    assert len(steps_after) <= 1, "more than one step ran after the signal"
    assert "cancelled: no partial files were written" in lines[-1]
    assert "Traceback" not in "\n".join(lines)
    # the summary counts the node that was stopped, and the one that never started
    assert re.search(r"^gen +sdxl\.text2image +cancelled after", summary, re.M), summary
    assert "1 ran, 0 cached, 0 failed, 0 skipped, 1 cancelled, 1 not started" in summary
    leftovers = list(out.rglob("*")) if out.exists() else []
    assert leftovers == []  # no image, no temporary files
