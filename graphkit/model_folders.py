"""What a model folder holds that graphkit refuses to load: custom code, pickle-only weights.

Decided from the folder's files alone, before any loader sees it: a config with an
``auto_map`` (transformers' and diffusers' hook for code shipped in the repo), a
``model_index.json`` naming a pipeline class or a component from a module that is not
diffusers or transformers, or weights that are pickles only. Each refusal is one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

UNSAFE_WEIGHTS_ENV = "GRAPHKIT_ALLOW_UNSAFE_WEIGHTS"
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MAX_CONFIG_BYTES = 4 * 1024 * 1024  # larger "*config*.json" files are not configs
CODE_LIBRARIES = ("diffusers", "transformers")


def refusal(model_id: str, folder: Path, *, allow_unsafe_weights: bool,
            complete: bool = True) -> str | None:
    """Why ``folder`` must not be loaded, or None. ``complete`` is False for a hub snapshot
    that may hold only some files (then only custom code is looked for)."""
    reason = custom_code(folder)
    if reason:
        return (f"model '{model_id}' at {folder} needs custom code ({reason}), which graphkit "
                "never runs; use a checkpoint that loads with the standard diffusers or "
                "transformers classes")
    if complete and not allow_unsafe_weights:
        pickle = pickle_only(folder)
        if pickle:
            return (f"model '{model_id}' at {folder} has only pickle weights ({pickle}) and no "
                    ".safetensors; convert it to safetensors, or if you trust it allow unsafe "
                    f"weights (graphkit run --allow-unsafe-weights, {UNSAFE_WEIGHTS_ENV}=1 or "
                    "allow_unsafe_weights=True)")
    return None


def custom_code(folder: Path) -> str | None:
    """Where ``folder`` asks for code of its own (a config file and key), or None."""
    for config in _config_files(folder):
        data = _read_json(config)
        if not isinstance(data, dict):
            continue
        where = str(config.relative_to(folder))
        if "auto_map" in data:
            return f"{where} has an auto_map ({_short(data['auto_map'])})"
        if config.name == "model_index.json" and config.parent == folder:
            reason = _custom_components(data)
            if reason:
                return f"{where} {reason}"
    return None


def pickle_only(folder: Path) -> str | None:
    """The first pickle weight file when ``folder`` has no .safetensors at all, else None."""
    files = [p for pattern in ("*", "*/*") for p in folder.glob(pattern) if p.is_file()]
    if any(p.suffix == ".safetensors" for p in files):
        return None
    unsafe = sorted(p for p in files if p.suffix in UNSAFE_SUFFIXES)
    return str(unsafe[0].relative_to(folder)) if unsafe else None


def _config_files(folder: Path) -> list[Path]:
    found = []
    for pattern in ("model_index.json", "*config*.json", "*/*config*.json"):
        found += [p for p in sorted(folder.glob(pattern)) if p not in found]
    return found


def _read_json(path: Path) -> Any:
    """Parsed JSON of a small regular file; None for anything else (the loader reports it)."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def _custom_components(index: dict[str, Any]) -> str | None:
    """A pipeline class or component that diffusers would import from the folder."""
    name = index.get("_class_name")
    if isinstance(name, list):
        return f"names a pipeline class from the module '{_short(name[0] if name else '')}'"
    for component, spec in index.items():
        if component.startswith("_") or not isinstance(spec, list) or len(spec) != 2:
            continue
        library = spec[0]
        if library is None or library in CODE_LIBRARIES or _is_diffusers_pipeline(library):
            continue
        return (f"loads component '{_short(component)}' from the module '{_short(library)}', "
                "not from diffusers or transformers")
    return None


def _is_diffusers_pipeline(library: Any) -> bool:
    """Old indexes name a diffusers pipeline sub-package ('stable_diffusion', 'kandinsky')."""
    if not isinstance(library, str) or not library.isidentifier():
        return False
    from diffusers import pipelines

    try:
        return hasattr(pipelines, library)
    except Exception:  # a lazy sub-package that fails to import is not a safe answer
        return False


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, str) else value
    text = text.encode("ascii", "backslashreplace").decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."
