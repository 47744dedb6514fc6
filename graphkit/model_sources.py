"""Where a model comes from: a hub id, a local folder, or a tiny test model.

:class:`ModelLocator` turns a model name into a :class:`Resolved` source, or raises a
one-line :class:`ModelError`. Local folders must lie inside the allowed model folders;
hub ids are checked against the Hugging Face cache, and against the hub when it is
reachable. Nothing is loaded here.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from graphkit.tinymodels import TINY_MODEL_IDS, tiny_path, write_tiny_models

DEFAULT_TINY_DIR = "~/.cache/graphkit/tiny-models"
PROBE_TIMEOUT_S = 3.0
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", re.ASCII)  # matched whole
MODEL_DIRS_ENV = "GRAPHKIT_MODEL_DIRS"
_FIX = (
    "download it with 'graphkit models pull GRAPH' (or connect to the network), set HF_HOME "
    "to a cache that has it, pass a local folder path, or use the tiny profile (--models tiny)"
)


class ModelError(Exception):
    """A model could not be found or loaded; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True)
class ModelRef:
    """A model as a graph names it: hub id or local folder, plus optional pins."""

    id: str
    revision: str | None = None
    variant: str | None = None
    dtype: str | None = None  # "float16", "bfloat16", "float32"; None = manager default

    @classmethod
    def of(cls, model: str | ModelRef, revision: str | None = None) -> ModelRef:
        """Normalise a string or ref; an explicit ``revision`` wins over the ref's."""
        ref = model if isinstance(model, ModelRef) else cls(str(model))
        if revision is not None:
            ref = ModelRef(ref.id, revision, ref.variant, ref.dtype)
        return ref


@dataclass(frozen=True)
class Resolved:
    """Where a model is loaded from."""

    model_id: str
    source: str  # hub id or absolute folder path
    kind: Literal["hub", "local", "tiny"]
    revision: str | None  # commit hash for hub snapshots, "local" for folders
    local_files_only: bool = False


class ModelLocator:
    """Resolves model names for one profile, tiny-model root and set of model folders."""

    def __init__(
        self,
        *,
        profile: str | None = None,
        tiny_root: Path | str | None = None,
        model_dirs: list[Path | str] | None = None,
    ) -> None:
        profile = profile if profile is not None else os.environ.get("GRAPHKIT_MODELS", "hub")
        if profile not in ("hub", "tiny"):
            raise ModelError(f"unknown model profile '{profile}'; use 'hub' or 'tiny'")
        self.profile = profile
        root = tiny_root or os.environ.get("GRAPHKIT_TINY_DIR") or DEFAULT_TINY_DIR
        self.tiny_root = Path(root).expanduser()
        self._model_dirs = list(model_dirs or [])
        self._tiny_written = False
        self._reachable: tuple[bool, float] | None = None

    def resolve(self, model: str | ModelRef, probe: str = "model_index.json") -> Resolved:
        """Find where ``model`` comes from, or raise :class:`ModelError` (fast)."""
        ref = ModelRef.of(model)
        name = ref.id
        if not name.strip():
            raise ModelError("empty model name; pass a hub id like 'owner/name' or a folder")
        if self.profile == "tiny" and name in TINY_MODEL_IDS:
            if not self._tiny_written:
                write_tiny_models(self.tiny_root)
                self._tiny_written = True
            folder = tiny_path(self.tiny_root, name)
            return Resolved(name, str(folder), "tiny", "local", True)
        path = _as_path(name)
        if path is None:
            raise ModelError(f"model '{_clip(name)}' is not a usable name: not a hub id like "
                             "'owner/name' and not a folder path")
        is_dir, exists = _stat_kind(path)
        if is_dir or exists or _looks_like_path(name):
            self._check_allowed(name, path)
        if is_dir:
            folder = path.resolve()
            if not (folder / probe).is_file():
                raise ModelError(
                    f"model '{name}' not usable: the folder {folder} has no {probe}, so it "
                    f"is not a checkpoint in the save_pretrained layout of the kind this "
                    f"node loads"
                )
            return Resolved(name, str(folder), "local", "local", True)
        if exists or _looks_like_path(name):
            what = "is a file, not a model folder" if exists else "does not exist"
            raise ModelError(
                f"model '{name}' not found: the folder {path.absolute()} {what}; pass a "
                f"folder in the save_pretrained layout or a hub id like 'owner/name'"
            )
        if not _HUB_ID.fullmatch(name):
            raise ModelError(
                f"model '{name}' not found: there is no folder of that name and it is not a "
                f"hub id like 'owner/name'"
            )
        return self._resolve_hub(ref, probe)

    def model_dirs(self) -> list[Path]:
        """Folders a graph may name models inside: the manager's own, GRAPHKIT_MODEL_DIRS,
        and the tiny-model root."""
        env = os.environ.get(MODEL_DIRS_ENV, "")
        given = [*self._model_dirs, *(p for p in env.split(os.pathsep) if p.strip())]
        roots = []
        for root in [*given, self.tiny_root]:
            try:
                roots.append(Path(root).expanduser().resolve())
            except (OSError, RuntimeError, ValueError):
                continue
        return roots

    def _check_allowed(self, name: str, path: Path) -> None:
        """Refuse a local folder outside the allowed model folders (a shared graph must not
        make graphkit read arbitrary folders)."""
        try:
            folder = path.resolve()
        except (OSError, RuntimeError, ValueError):
            folder = path.absolute()
        roots = self.model_dirs()
        if any(folder.is_relative_to(root) for root in roots):
            return
        allowed = ", ".join(str(r) for r in roots) or "none"
        raise ModelError(
            f"model '{_clip(name)}' refused: the folder {_clip(str(folder))} is outside the "
            f"allowed model folders ({allowed}); to allow it pass --model-dir "
            f"{_clip(str(folder))} or add it to {MODEL_DIRS_ENV}"
        )

    def _resolve_hub(self, ref: ModelRef, probe: str) -> Resolved:
        from huggingface_hub import errors as hf_errors
        from huggingface_hub import hf_hub_download

        offline = _env_flag("HF_HUB_OFFLINE")
        local_only = offline or not self._hub_reachable()
        why = "HF_HUB_OFFLINE is set" if offline else "the hub could not be reached"
        home = _hf_home()
        rev = f" at revision '{ref.revision}'" if ref.revision else ""
        try:
            file = hf_hub_download(
                ref.id, probe, revision=ref.revision, cache_dir=_hf_cache_dir(),
                local_files_only=local_only, etag_timeout=PROBE_TIMEOUT_S,
            )
        except hf_errors.GatedRepoError as exc:
            raise ModelError(
                f"model '{ref.id}' is gated on the Hugging Face hub; accept its license on "
                f"the model page and log in (hf auth login) ({_first_line(exc)})"
            ) from None
        except hf_errors.RepositoryNotFoundError:
            raise ModelError(
                f"model '{ref.id}' not found on the Hugging Face hub (a typo, or a private "
                f"repo: log in with hf auth login); or pass a local folder path"
            ) from None
        except hf_errors.RevisionNotFoundError:
            raise ModelError(
                f"model '{ref.id}': revision '{ref.revision}' not found on the Hugging Face hub"
            ) from None
        except hf_errors.LocalEntryNotFoundError:
            raise ModelError(
                f"model '{ref.id}'{rev} not found: not in the Hugging Face cache "
                f"(HF_HOME={home}) and {why}; {_FIX}"
            ) from None
        except hf_errors.EntryNotFoundError:
            raise ModelError(
                f"model '{ref.id}' has no {probe} on the hub: it is not a checkpoint of the "
                f"kind this node loads"
            ) from None
        except (OSError, ValueError, hf_errors.HfHubHTTPError) as exc:
            raise ModelError(
                f"model '{ref.id}' could not be fetched (HF_HOME={home}): {_first_line(exc)}; "
                f"{_FIX}"
            ) from None
        snapshot = Path(file).parent
        revision = snapshot.name if snapshot.parent.name == "snapshots" else ref.revision
        return Resolved(ref.id, ref.id, "hub", revision, local_only)

    def _hub_reachable(self) -> bool:
        """Whether the hub endpoint (or proxy) accepts a TCP connection; cached a minute."""
        now = time.monotonic()
        if self._reachable and now - self._reachable[1] < 60:
            return self._reachable[0]
        endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        target = urllib.request.getproxies().get("https") or endpoint
        url = urlparse(target if "://" in target else f"http://{target}")
        port = url.port or (443 if url.scheme == "https" else 80)
        ok = _can_connect(url.hostname or "", port, PROBE_TIMEOUT_S)
        self._reachable = (ok, now)
        return ok


# --- helpers ------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _as_path(name: str) -> Path | None:
    """``name`` as a path with ``~`` expanded, or None when it cannot be one."""
    if "\x00" in name:
        return None
    try:
        return Path(name).expanduser()
    except RuntimeError:  # ~user of an unknown user
        return Path(name)


def _stat_kind(path: Path) -> tuple[bool, bool]:
    """(is a folder, exists) without raising on names the OS refuses (too long...)."""
    try:
        return path.is_dir(), path.exists()
    except (OSError, ValueError):
        return False, False


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith(("/", "./", "../", "~", "\\"))
        or name in (".", "..")
        or "\\" in name
        or name.count("/") > 1
        or (len(name) > 1 and name[1] == ":")
    )



def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _hf_home() -> str:
    default = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
    return str(Path(os.environ.get("HF_HOME") or default).expanduser())


def _hf_cache_dir() -> Path:
    explicit = os.environ.get("HF_HUB_CACHE")
    return Path(explicit).expanduser() if explicit else Path(_hf_home()) / "hub"


def _can_connect(host: str, port: int, timeout: float) -> bool:
    """TCP connect with a hard time limit (name resolution included)."""
    if not host:
        return False
    result: list[bool] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])

