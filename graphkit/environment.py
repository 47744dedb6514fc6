"""GRAPHKIT_* settings read from the environment, checked together before a command runs.

Each setting is read where it is used; :func:`problems` looks at all of them at once so that
a bad value is a one-line error (exit 2 from the CLI) instead of a failure half-way through a
run. Variables it does not know are left alone.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

FLAG_VALUES = ("", "0", "1", "false", "true", "no", "yes", "off", "on")
DEVICES = ("auto", "cpu", "cuda", "mps")
LIMIT_PREFIX = "GRAPHKIT_LIMIT_"


def whole_number(environ: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    """An integer setting; ValueError with a one-line message when it is not one."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{name} must be a whole number (got {_shown(raw)})") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum} (got {value})")
    return value


def refused(file: TextIO | None = None) -> bool:
    """Print an ``error:`` line (to stderr) for each unusable setting of this process's
    environment, all at once; True when there was one (the command then exits 2)."""
    found = problems()
    for line in found:
        print(f"error: {line}", file=file or sys.stderr)
    return bool(found)


def problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line for each GRAPHKIT_* variable whose value graphkit cannot use."""
    env = os.environ if environ is None else environ
    found = []
    for name, check in _CHECKS.items():
        if name in env:
            message = check(env, name)
            if message:
                found.append(message)
    found += _limit_problems(env)
    return found


def _limit_problems(env: Mapping[str, str]) -> list[str]:
    from graphkit.limits import Limits

    known = {f"{LIMIT_PREFIX}{f.name.upper()}" for f in dataclasses.fields(Limits)}
    found = []
    for name in sorted(k for k in env if k.startswith(LIMIT_PREFIX)):
        if name not in known:
            found.append(f"{name} is not a limit (known: {', '.join(sorted(known))})")
            continue
        found += _number(env, name, minimum=1)
    return found


def _number(env: Mapping[str, str], name: str, minimum: int) -> list[str]:
    try:
        whole_number(env, name, 0, minimum)
    except ValueError as exc:
        return [str(exc)]
    return []


def _cache_mb(env: Mapping[str, str], name: str) -> str | None:
    return next(iter(_number(env, name, minimum=0)), None)


def _choice(choices: tuple[str, ...]) -> Callable[[Mapping[str, str], str], str | None]:
    def check(env: Mapping[str, str], name: str) -> str | None:
        if env[name] in choices or env[name] == "":
            return None
        return f"{name} must be one of {', '.join(choices)} (got {_shown(env[name])})"

    return check


def _flag(env: Mapping[str, str], name: str) -> str | None:
    if env[name].strip().lower() in FLAG_VALUES:
        return None
    return f"{name} must be 1 or 0 (also true/false, yes/no, on/off; got {_shown(env[name])})"


def _device(env: Mapping[str, str], name: str) -> str | None:
    from graphkit.devices import pick_device

    value = env[name]
    if value == "":
        return None
    base, _, index = value.partition(":")
    if base not in DEVICES or (index and (base != "cuda" or not index.isdigit())):
        return (f"{name} must be one of {', '.join(DEVICES)} (or cuda:N; got "
                f"{_shown(value)})")
    try:
        pick_device(value)
    except ValueError as exc:
        return f"{name}: {exc}"
    return None


def _folder(env: Mapping[str, str], name: str) -> str | None:
    """A folder that may not exist yet, but is not a file (nor inside one)."""
    return _not_a_folder(name, env[name]) if env[name] else None


def _folders(env: Mapping[str, str], name: str) -> str | None:
    for part in env[name].split(os.pathsep):
        message = _not_a_folder(name, part) if part.strip() else None
        if message:
            return message
    return None


def _not_a_folder(name: str, value: str) -> str | None:
    try:
        path = Path(value).expanduser()
        for candidate in (path, *path.parents):
            if candidate.exists():
                if candidate.is_dir():
                    return None
                return f"{name}: {_shown(str(candidate))} is a file, not a folder"
    except (OSError, RuntimeError, ValueError) as exc:
        return f"{name}: {_shown(value)} cannot be used as a folder ({exc})"
    return None


def _shown(text: str, limit: int = 60) -> str:
    text = repr(text)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


_CHECKS: dict[str, Callable[[Mapping[str, str], str], str | None]] = {
    "GRAPHKIT_MODELS": _choice(("hub", "tiny")),
    "GRAPHKIT_DEVICE": _device,
    "GRAPHKIT_ALLOW_UNSAFE_WEIGHTS": _flag,
    "GRAPHKIT_CACHE_DEVICE_MB": _cache_mb,
    "GRAPHKIT_CACHE_HOST_MB": _cache_mb,
    "GRAPHKIT_TINY_DIR": _folder,
    "GRAPHKIT_MODEL_DIRS": _folders,
    "GRAPHKIT_EDITOR_WORKSPACE": _folder,
}
