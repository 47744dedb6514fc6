"""Model runs print no install-looking warnings (transformers' torchvision fallback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FALLBACK = ("requires torchvision", "falling back to")


def _graphkit(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "graphkit", *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env)


def test_tiny_sam_and_kandinsky_runs_print_no_torchvision_fallback(tmp_path: Path) -> None:
    """Writing the tiny models, a SAM + SDXL inpaint run and a Kandinsky run: no fallback
    warning on stderr (graphkit picks the PIL image processors itself)."""
    tiny = tmp_path / "tiny"
    env = {**os.environ, "GRAPHKIT_TINY_DIR": str(tiny), "HF_HUB_OFFLINE": "1"}
    env.pop("GRAPHKIT_MODELS", None)
    written = _graphkit("models", "tiny", tiny, env=env)
    assert written.returncode == 0, written.stderr
    runs = [
        ("sam_inpaint.json", ["paint.steps=2"]),
        ("kandinsky_text2image.json", ["prior.steps=2", "decode.steps=2", "decode.width=64",
                                       "decode.height=64"]),
    ]
    logs = [("models tiny", written.stderr)]
    for graph, overrides in runs:
        sets = [arg for item in overrides for arg in ("--set", item)]
        proc = _graphkit("run", ROOT / "graphs" / graph, "--models", "tiny", "--out",
                         tmp_path / "out", *sets, env=env)
        assert proc.returncode == 0, proc.stderr
        logs.append((graph, proc.stderr))
    for what, stderr in logs:
        for text in FALLBACK:
            assert text not in stderr, f"{what}: {stderr}"
