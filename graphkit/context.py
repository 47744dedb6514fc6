"""What a node sees while it runs: device, progress, cancellation, sandboxed files, models."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


class NodeInputError(Exception):
    """A node refused its input (a bad file, a value out of range for this image...)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class InputFileMissing(NodeInputError):  # noqa: N818 - a kind of NodeInputError
    """An input file that is in none of the allowed folders (as opposed to one refused)."""


class Cancelled(Exception):  # noqa: N818 - it is a state, not a fault
    """The run was cancelled; raised between steps."""


class RunControl:
    """A handle to cancel a run from another thread (the editor's cancel button, SIGINT)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def reset(self) -> None:
        self._event.clear()


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}", re.ASCII)


@dataclass
class Sandbox:
    """The folders a run may read inputs from and the one folder it may write into."""

    input_dirs: list[Path] = field(default_factory=list)
    out_dir: Path | None = None
    # Output file names (case-folded, as on macOS and Windows) handed out in this run, and
    # the node each went to: a second node asking for one would overwrite the first's file.
    claimed: dict[str, str] = field(default_factory=dict, repr=False)

    def resolve_input(self, rel: str, field_name: str = "path") -> Path:
        """A readable regular file named relative to one of the input folders."""
        absolute = rel.startswith(("\\", "/", "~")) or re.match(r"^[A-Za-z]:", rel)
        if "\x00" in rel:
            raise NodeInputError(field_name, "the path contains a NUL character")
        if not rel or "://" in rel or absolute:
            raise NodeInputError(field_name, f"'{rel}' must be a relative path inside the graph's "
                                 "folder or an allowed input folder (no URLs or absolute paths)")
        parts = Path(rel).parts
        if ".." in parts:
            raise NodeInputError(field_name, f"'{rel}' may not contain '..'")
        for root in self.input_dirs:
            try:
                root = root.resolve()
                candidate = (root / rel).resolve()
                exists = candidate.exists()
            except (OSError, RuntimeError) as exc:  # a name too long, a link loop...
                raise NodeInputError(field_name, f"'{rel}' cannot be used as a path "
                                     f"({getattr(exc, 'strerror', None) or exc})") from None
            if not candidate.is_relative_to(root):
                raise NodeInputError(field_name, f"'{rel}' leads outside the allowed folder "
                                     f"'{root}' (through a link)")
            if exists:
                if not candidate.is_file():  # folders, devices, FIFOs, sockets
                    raise NodeInputError(field_name, f"'{rel}' is not a regular file")
                return candidate
        where = ", ".join(str(r) for r in self.input_dirs) or "no input folder was given"
        raise InputFileMissing(field_name, f"file '{rel}' not found (looked in: {where})")

    def output_file(self, name: str, suffix: str, field_name: str = "name",
                    owner: str = "") -> Path:
        """A path for a new output file inside the output folder. ``owner`` (the node id)
        claims the file name for this run: another owner asking for it is refused, so that
        no node overwrites a file another wrote in the same run (say a batch's ``a_0``
        and a save named ``a_0``)."""
        if self.out_dir is None:
            raise NodeInputError(field_name, "this run has no output folder")
        if not _SAFE_NAME.fullmatch(name) or ".." in name:
            raise NodeInputError(field_name, f"output name '{name}' must be a plain file name "
                                 "(letters, digits, '_', '-', '.'; no folders)")
        file_name = f"{name}{suffix}"
        earlier = self.claimed.setdefault(file_name.casefold(), owner)
        if earlier != owner:
            raise NodeInputError(field_name, f"'{file_name}' was already written in this run "
                                 f"by node '{earlier}'; give each output its own name")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / file_name


@dataclass
class RunContext:
    """Passed to nodes that declare a ``ctx: RunContext`` argument."""

    node_id: str
    type_id: str
    device: torch.device
    sandbox: Sandbox
    control: RunControl
    report: Callable[[int, int], None]
    graph_json: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def progress(self, step: int, total: int) -> None:
        """Report step k of n; raises Cancelled when the run was cancelled."""
        self.report(step, total)
        self.check_cancelled()

    def check_cancelled(self) -> None:
        if self.control.cancelled:
            raise Cancelled()

    @property
    def limits(self) -> Any:
        """The process resource limits (graphkit.limits.Limits)."""
        from graphkit.limits import limits

        return limits()

    @property
    def models(self) -> Any:
        """The run's model manager (the process one unless the run chose a profile)."""
        manager = self.extras.get("models")
        if manager is not None:
            return manager
        from graphkit.models import get_manager

        return get_manager()

    def generator(self, seed: int) -> torch.Generator:
        """A generator seeded for this node, on the device where diffusers expects it."""
        return torch.Generator(device="cpu").manual_seed(int(seed))
