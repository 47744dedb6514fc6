"""What `graphkit run` prints: one line per node off a terminal, step progress on a terminal
(or with --progress), each failure once, and a summary that counts every outcome."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_fixture import shared_tiny_root

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
PROGRESS_LINE = re.compile(r"^\[\d+/\d+\] ")
STEP = re.compile(r"step \d+/\d+")


@pytest.fixture(scope="module")
def tiny_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = shared_tiny_root(tmp_path_factory)
    env = {**os.environ, "GRAPHKIT_TINY_DIR": str(root), "HF_HUB_OFFLINE": "1"}
    env.pop("GRAPHKIT_MODELS", None)
    return env


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "graphkit", "run", *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env)


SDXL_3_STEPS = ("--models", "tiny", "--set", "gen.steps=3", "--set", "gen.width=64",
                "--set", "gen.height=64")


def test_off_a_terminal_one_line_per_node_and_no_step_lines(
    tmp_path: Path, tiny_env: dict[str, str]
) -> None:
    proc = run(GRAPHS / "sdxl_turbo.json", "--out", tmp_path, *SDXL_3_STEPS, env=tiny_env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert [line.split()[1] for line in lines] == ["prompt", "gen", "save"], proc.stderr
    assert all(PROGRESS_LINE.match(line) for line in lines)
    assert not STEP.search(proc.stderr) and "\r" not in proc.stderr
    assert "3 ran, 0 cached, 0 failed, 0 skipped, 0 cancelled" in proc.stdout


def test_progress_flag_prints_steps_off_a_terminal(
    tmp_path: Path, tiny_env: dict[str, str]
) -> None:
    proc = run(GRAPHS / "sdxl_turbo.json", "--out", tmp_path, "--progress", *SDXL_3_STEPS,
               env=tiny_env)
    assert proc.returncode == 0, proc.stderr
    steps = [line for line in proc.stderr.splitlines() if STEP.search(line)]
    assert [line.split()[-1] for line in steps] == ["1/3", "2/3", "3/3"]
    assert all(line.startswith("[1/3] gen step ") for line in steps)


def test_a_failure_is_printed_once(tmp_path: Path) -> None:
    """A node that refuses its input: its message appears once (the error line), the
    progress line and the summary only say it failed."""
    proc = run(GRAPHS / "crop_resize.json", "--out", tmp_path, "--set", "crop.x=200")
    assert proc.returncode == 2
    both = proc.stdout + proc.stderr
    assert both.count("exceeds the image width 256") == 1, both
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert error == (f"error: {GRAPHS / 'crop_resize.json'}: node 'crop' (image.crop) "
                     "'width': x + width = 320 exceeds the image width 256")
    assert "[2/9] crop (image.crop) failed" in proc.stderr.splitlines()
    assert re.search(r"^crop +image\.crop +failed$", proc.stdout, re.M), proc.stdout
    assert "1 ran, 0 cached, 1 failed, 7 skipped, 0 cancelled" in proc.stdout


def test_on_a_terminal_steps_update_one_line_in_place(
    tmp_path: Path, tiny_env: dict[str, str]
) -> None:
    """In a pseudo-terminal the progress is one line rewritten with carriage returns (step
    bar included) and cleared at the end; the summary then lists each node once."""
    pty = pytest.importorskip("pty")
    args = [sys.executable, "-m", "graphkit", "run", str(GRAPHS / "sdxl_turbo.json"),
            "--out", str(tmp_path), *SDXL_3_STEPS]
    pid, fd = pty.fork()
    if pid == 0:  # the child: run graphkit with the terminal as stdout and stderr
        os.environ.clear()
        os.environ.update({**tiny_env, "COLUMNS": "200"})
        os.execv(sys.executable, args)
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = b"".join(chunks).decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    for step in ("step 1/3", "step 2/3", "step 3/3"):
        assert step in text, text
    assert "\r\x1b[K" in text
    rows = text.replace("\r\n", "\n").split("\n")  # what stays on screen: each row's last
    visible = [row.rsplit("\r", 1)[-1].replace("\x1b[K", "") for row in rows]  # rewrite
    visible = [line for line in visible if line.strip()]
    assert [line.split()[0] for line in visible[:3]] == ["prompt", "gen", "save"], visible
    assert visible[3].startswith("3 ran, 0 cached, 0 failed, 0 skipped, 0 cancelled")
