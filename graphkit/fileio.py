"""Atomic file writes: a temporary file beside the target, then a rename.

Readers see the old file or the new one, never half of one. A writer killed before its
rename (SIGKILL, power loss) may leave its temporary file behind: a hidden
``.NAME.<random>.tmp`` beside the target. graphkit never reads or lists such files (every
listing asks for a real suffix such as ``*.json`` or ``*.png``); :func:`is_temp_file` names
them and :func:`remove_stale_temps` deletes old ones.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

_TEMP_NAME = re.compile(r"\..+\.[A-Za-z0-9_]+\.tmp", re.ASCII | re.DOTALL)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Text flavour of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def is_temp_file(path: Path) -> bool:
    """Whether ``path`` is the temporary file of an atomic write (maybe left by a killed one)."""
    return _TEMP_NAME.fullmatch(Path(path).name) is not None


def remove_stale_temps(folder: Path, older_than_s: float = 3600.0) -> list[Path]:
    """Delete temporary files of atomic writes in ``folder`` older than ``older_than_s``.

    Younger ones are kept: they may belong to a write still under way.
    """
    removed = []
    cutoff = time.time() - older_than_s
    for path in Path(folder).iterdir():
        try:
            if is_temp_file(path) and path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed
