"""The sweep's record in its output folder: ``sweep.jsonl`` rows and ``sweep.json``.

``sweep.jsonl`` gets one JSON object per variation, appended as the variation finishes,
after its files, with one ``write`` call (so a killed process leaves whole rows, or at
worst a torn last line, which is ignored)::

    {"index": 3, "set": {"gen.seed": 3}, "status": "done", "files": ["00003/lighthouse.png"],
     "executed": ["gen", "save"], "cached": ["prompt"], "seconds": 0.41}

``status`` is ``done`` or ``failed`` (with ``error``); ``files`` are relative to the folder.
A variation that failed and ran again on a later run gets a new row: the last row of an
index is its state. ``sweep.json`` names the sweep the rows belong to (hashes of the graph
and of the variations), so rows of different sweeps are never mixed in one folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from graphkit.errors import GraphError, problem
from graphkit.fileio import atomic_write_text

MANIFEST = "sweep.jsonl"
DESCRIPTION = "sweep.json"
FORMAT = "graphkit.sweep/1"
_MAX_DESCRIPTION_BYTES = 1 << 20


def describe(graph_json: str, sweep: dict[str, Any], variations: list[dict[str, Any]]
             ) -> dict[str, Any]:
    """What identifies a sweep: the graph and every variation's overrides, as hashes."""
    blob = json.dumps(variations, sort_keys=True, separators=(",", ":"))
    return {
        "format": FORMAT,
        "graph_sha256": hashlib.sha256(graph_json.encode()).hexdigest(),
        "variations_sha256": hashlib.sha256(blob.encode()).hexdigest(),
        "variations": len(variations),
        **sweep,
    }


def folder_name(index: int, total: int) -> str:
    """The subfolder a variation writes into: 00003 (more digits for huge sweeps)."""
    return f"{index:0{max(5, len(str(max(total - 1, 0))))}d}"


class Manifest:
    """Reads and appends the rows of one sweep folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST
        self.description_path = self.folder / DESCRIPTION

    def claim(self, description: dict[str, Any]) -> None:
        """Make the folder this sweep's; GraphError when it holds rows of another sweep."""
        rows = self.rows() if self.path.exists() else {}
        known = self._read_description()
        if known is not None and known != description and rows:
            raise GraphError([problem(
                "sweep", f"{self.folder} holds the results of a different sweep (the graph or "
                "the sweep values differ); choose another --out, or delete its "
                f"{MANIFEST} and {DESCRIPTION} to start over")])
        if known is None and rows:
            raise GraphError([problem(
                "sweep", f"{self.path} has rows but no {DESCRIPTION} naming their sweep; "
                "choose another --out")])
        if known != description:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.description_path, json.dumps(description, indent=2) + "\n")

    def _read_description(self) -> dict[str, Any] | None:
        if not self.description_path.exists():
            return None
        try:
            with self.description_path.open("rb") as handle:
                data = handle.read(_MAX_DESCRIPTION_BYTES + 1)
            value = json.loads(data.decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            value = None
        if not isinstance(value, dict) or value.get("format") != FORMAT \
                or len(data) > _MAX_DESCRIPTION_BYTES:
            raise GraphError([problem(
                "sweep", f"{self.description_path} is not a graphkit sweep description; "
                "choose another --out")])
        return value

    def rows(self) -> dict[int, dict[str, Any]]:
        """The last row of each index. A torn last line (a killed writer) is ignored."""
        found: dict[int, dict[str, Any]] = {}
        if not self.path.exists():
            return found
        with self.path.open("rb") as handle:
            lines = handle.read().split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.decode("utf-8"))
                index = row["index"] if isinstance(row, dict) else None
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError):
                index = None
            if not isinstance(index, int) or isinstance(index, bool):
                if number == len(lines):  # no newline after it: a write cut short
                    continue
                raise GraphError([problem(
                    "sweep", f"{self.path} line {number} is not a sweep row; choose another "
                    "--out")])
            found[index] = row
        return found

    def finished(self, rows: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """Rows of variations that are done and whose files are all still there."""
        return {
            i: row for i, row in rows.items()
            if row.get("status") == "done" and all(
                isinstance(f, str) and (self.folder / f).is_file() for f in row.get("files", []))
        }

    def append(self, row: dict[str, Any]) -> None:
        """Add one row with a single unbuffered write.

        Not fsynced: the files it names are (atomic writes), and a row lost to a machine
        crash only means its variation runs again.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and _last_byte(self.path, size) != b"\n":  # after a torn line
                line = "\n" + line
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)


def _last_byte(path: Path, size: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(size - 1)
        return handle.read(1)
