"""The canvas's built bundle: where it is, and whether it was built from the sources here.

``make frontend`` builds ``frontend/src`` into ``frontend/dist`` and records there
(``build-info.json``) a hash of the sources it read; ``source_hash`` computes the same hash
from the files in this checkout (file contents, not times: a clone does not keep times).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

FRONTEND = Path(__file__).with_name("frontend")
SOURCES = ("package.json", "package-lock.json", "vite.config.js", "tsconfig.json", "src")
INFO = "build-info.json"


def source_files(root: Path = FRONTEND) -> list[str]:
    """The source files a build reads, as sorted paths relative to ``root``."""
    found = []
    for name in SOURCES:
        path = root / name
        if path.is_file():
            found.append(name)
        elif path.is_dir():
            found += [p.relative_to(root).as_posix() for p in path.rglob("*") if p.is_file()]
    return sorted(found)


def source_hash(root: Path = FRONTEND) -> str:
    """SHA-256 over each source file's path and the SHA-256 of its text (CRLF read as LF)."""
    total = hashlib.sha256()
    for rel in source_files(root):
        data = (root / rel).read_bytes().replace(b"\r\n", b"\n")
        total.update(f"{rel}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return total.hexdigest()


def build_info(root: Path = FRONTEND) -> dict[str, Any]:
    """What the last build recorded (empty when there is no build)."""
    try:
        return json.loads((root / "dist" / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
