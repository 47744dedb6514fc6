"""Every command in README.md's code blocks runs as written: on the tiny profile offline,
and, for the commands that need the real weights, against a local server speaking the hub
API that serves the tiny models under the real ids. Long-running or recursive commands are
checked without running them for good: `graphkit edit` by its --help, `make test` and
`make setup` by make's dry run."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fake_hub import FakeHub
from tiny_fixture import shared_tiny_root

from graphkit.tinymodels import TINY_MODEL_IDS, tiny_path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BLOCK = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
CLOSED_PORT = "http://127.0.0.1:9"  # offline commands: any hub access would fail here


def readme_blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [body for lang, body in BLOCK.findall(text) if lang == language]


def readme_commands() -> list[list[str]]:
    """Each shell command of the README, as words, comments dropped, in document order."""
    commands = []
    for body in readme_blocks("sh"):
        for line in body.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def test_the_readme_shows_the_commands_a_newcomer_needs() -> None:
    lines = [" ".join(words) for words in readme_commands()]
    for needed in ("make run", "make test", "graphkit run graphs/sdxl_turbo.json --models tiny",
                   "graphkit run out/lighthouse.png", "graphkit models pull", "--version"):
        assert any(needed in line for line in lines), needed
    assert readme_blocks("python"), "the Python example"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory):
    tiny = shared_tiny_root(tmp_path_factory)
    server = FakeHub()
    for model_id in TINY_MODEL_IDS:
        server.add_folder(model_id, tiny_path(tiny, model_id))
    server.start()
    yield server
    server.stop()


class Readme:
    """Runs README commands in a copy of the example graphs, as a newcomer would."""

    def __init__(self, work: Path, tiny: Path, hub: FakeHub) -> None:
        self.work, self.hub, self.online = work, hub, False
        self.env = {**os.environ, "GRAPHKIT_TINY_DIR": str(tiny), "HF_HOME": str(work / "hf"),
                    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
                    "HF_HUB_DISABLE_TELEMETRY": "1"}
        for name in ("GRAPHKIT_MODELS", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "MAKEFLAGS",
                     "TORCH_INDEX"):
            self.env.pop(name, None)

    def environment(self, assignments: dict[str, str]) -> dict[str, str]:
        env = dict(self.env)
        if self.online:  # after `models pull`: the hub is reachable (the local server)
            env["HF_ENDPOINT"] = self.hub.url
        else:
            env.update(HF_ENDPOINT=CLOSED_PORT, HF_HUB_OFFLINE="1")
        env.update(assignments)
        return env

    def run(self, words: list[str]) -> subprocess.CompletedProcess[str]:
        assignments = {}
        while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
            name, _, value = words.pop(0).partition("=")
            assignments[name] = value
        if words[:3] == [".venv/bin/graphkit", "models", "pull"]:
            self.online = True
        env = self.environment(assignments)
        if words[0] == "make":
            return self.make(words[1:], env)
        if words[0].startswith(".venv/bin/"):
            words = [str(BIN / words[0].removeprefix(".venv/bin/")), *words[1:]]
        if words[1:2] == ["edit"]:  # a server: check that it takes these arguments
            words = [*words, "--help"]
        return subprocess.run(words, capture_output=True, text=True, timeout=600, env=env,
                              cwd=self.work)

    def make(self, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        targets = [a for a in args if "=" not in a]
        if targets in (["run"], []):  # runs for real, with this test's environment
            out = self.work / "make-out"
            proc = subprocess.run(
                ["make", "--no-print-directory", "-o", ".venv/.installed", *args,
                 f"BIN={BIN}", f"OUT={out}"],
                capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
            if proc.returncode == 0:
                assert list(out.glob("*.png")), proc.stdout
            return proc
        # set-up and the test suite itself: make's dry run shows what they would do
        proc = subprocess.run(["make", "--no-print-directory", "-n", "-B", *args],
                              capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
        for assignment in (a for a in args if "=" in a):
            assert assignment.partition("=")[2] in proc.stdout, (assignment, proc.stdout)
        return proc


def test_every_readme_command_runs(hub: FakeHub, tmp_path: Path,
                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path / "work"
    shutil.copytree(ROOT / "graphs", work / "graphs")
    readme = Readme(work, shared_tiny_root(tmp_path_factory), hub)
    failures = []
    for words in readme_commands():
        proc = readme.run(list(words))
        if proc.returncode != 0:
            failures.append(f"$ {shlex.join(words)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    assert not failures, "\n\n".join(failures)
    assert (work / "out" / "lighthouse.png").is_file()
    assert (work / "my-tiny-models").is_dir()


def test_every_readme_python_example_runs(tmp_path: Path,
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path / "work"
    shutil.copytree(ROOT / "graphs", work / "graphs")
    env = {**os.environ, "GRAPHKIT_TINY_DIR": str(shared_tiny_root(tmp_path_factory)),
           "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": CLOSED_PORT, "HF_HOME": str(tmp_path / "hf")}
    env.pop("GRAPHKIT_MODELS", None)
    for code in readme_blocks("python"):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=600, env=env, cwd=work)
        assert proc.returncode == 0, f"{code}\n{proc.stderr}"
