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
import stat
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

_TEMP_NAME = re.compile(r"\..+\.[A-Za-z0-9_]+\.tmp", re.ASCII | re.DOTALL)


class NotRegularFileError(OSError):
    """A path names a folder, a FIFO, a device or a socket where a file was expected."""


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file; NotRegularFileError if not.

    Opening never waits: a FIFO with no writer, or a terminal, is opened non-blocking and
    refused after a look at what was opened (no race between checking and opening).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a file")
            raise NotRegularFileError(f"it is {kind}, not a regular file")
        if flags & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def folder_problem(folder: Path) -> str | None:
    """Why files cannot be written into ``folder`` (made if missing), or None; one line."""
    folder = Path(folder)
    try:
        for candidate in (folder, *folder.absolute().parents):
            if not candidate.exists():
                if candidate.is_symlink():
                    return f"'{folder}': '{candidate}' is a link to nothing"
                continue
            if candidate.is_dir():
                if not os.access(candidate, os.W_OK | os.X_OK):
                    return f"'{folder}': '{candidate}' is not writable"
                return None
            if candidate == folder:
                return f"'{folder}' is a file, not a folder"
            return f"'{folder}': '{candidate}' is a file, so no folder can be made inside it"
    except (OSError, ValueError) as exc:
        return f"'{folder}' cannot be used as a folder ({exc})"
    return None


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
