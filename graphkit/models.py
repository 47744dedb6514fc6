"""Model manager: load each model once, share components, keep a device memory budget.

A model is named by a Hugging Face hub id (with an optional revision) or by a local folder
in the standard ``save_pretrained`` layout. With the ``tiny`` profile every default model id
maps to a tiny random-weight folder (see :mod:`graphkit.tinymodels`), written on first use.

Loading always goes through the ordinary diffusers/transformers ``from_pretrained`` code,
with ``use_safetensors=True`` (pickle weights only when ``allow_unsafe_weights``) and with
``trust_remote_code=False`` said at every call, so no loader can ask on stdin; a folder that
needs custom code is refused before any loader sees it (:mod:`graphkit.model_folders`).
Pipelines of one checkpoint (text2image / image2image / inpaint) are made
with ``from_pipe`` and share one copy of the weights.

Budget: before a model is handed out it is made resident on the execution device; when the
resident models would exceed ``budget_bytes``, whole least-recently-used models move to host
memory. A model larger than the whole budget gets ``enable_model_cpu_offload()`` on CUDA.

Where a model comes from (hub, local folder, tiny) is decided by
:class:`graphkit.model_sources.ModelLocator`, which the manager owns.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from graphkit.devices import default_dtype, host_device, pick_device
from graphkit.image_processors import choose_pil_image_processors
from graphkit.model_folders import UNSAFE_WEIGHTS_ENV, refusal
from graphkit.model_sources import (  # ModelError, ModelRef, Resolved: re-exported here
    _FIX,
    ModelError,
    ModelLocator,
    ModelRef,
    Resolved,
    _env_flag,
    _first_line,
    _hf_cache_dir,
    _hf_home,
)


def _drop_empty_fp32_warning(record: logging.LogRecord) -> bool:
    """diffusers warns on every dtype cast, even when no module must stay in float32."""
    return "should be kept in float32: []" not in record.getMessage()


logging.getLogger("diffusers.models.modeling_utils").addFilter(_drop_empty_fp32_warning)

Task = Literal["text2image", "image2image", "inpaint"]
TASKS: tuple[str, ...] = ("text2image", "image2image", "inpaint")

_SDXL_CLASSES = ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
                 "StableDiffusionXLInpaintPipeline")


@dataclass
class _Entry:
    """One loaded checkpoint and the pipelines that share its modules."""

    name: str
    resolved: Resolved
    dtype: torch.dtype
    base: Any
    pipes: dict[str, Any] = field(default_factory=dict)
    nbytes: int = 0
    state: Literal["host", "device", "offload"] = "host"
    last_used: int = 0

    def modules(self) -> list[torch.nn.Module]:
        """Every torch module held by the base object and its sibling pipelines."""
        objs = [self.base, *self.pipes.values()]
        found: dict[int, torch.nn.Module] = {}
        for obj in objs:  # siblings hold the same modules unless from_pipe copied them
            for mod in _torch_modules(obj):
                found.setdefault(id(mod), mod)
        return list(found.values())


class ModelManager:
    """Loads models once per process and hands out shared pipelines."""

    def __init__(
        self,
        *,
        profile: str | None = None,
        tiny_root: Path | str | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        budget_bytes: int | None = None,
        allow_unsafe_weights: bool = False,
        variant: str | None = None,
        model_dirs: list[Path | str] | None = None,
    ) -> None:
        self.locator = ModelLocator(profile=profile, tiny_root=tiny_root, model_dirs=model_dirs)
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        if isinstance(dtype, str):
            dtype = _dtype_of(dtype)
        self.dtype: torch.dtype = dtype or default_dtype(self.device)
        self.budget_bytes = budget_bytes
        self.allow_unsafe_weights = allow_unsafe_weights
        self.variant = variant
        self.load_count = 0
        self._entries: dict[tuple, _Entry] = {}
        self._tick = 0
        self._lock = threading.RLock()
        self.offload_all = False

    @property
    def profile(self) -> str:
        """The model profile, 'hub' or 'tiny' (held by the locator)."""
        return self.locator.profile

    @profile.setter
    def profile(self, value: str) -> None:
        self.locator.profile = value

    @property
    def tiny_root(self) -> Path:
        """Where tiny models are written (held by the locator)."""
        return self.locator.tiny_root

    @tiny_root.setter
    def tiny_root(self, value: Path) -> None:
        self.locator.tiny_root = value

    # --- public getters -------------------------------------------------------------

    def sdxl(self, model_id: str | ModelRef, task: Task = "text2image",
             revision: str | None = None) -> Any:
        """An SDXL pipeline for ``task``; tasks of one checkpoint share weights."""
        _check_task(task)
        ref = ModelRef.of(model_id, revision)
        with self._lock:
            entry = self._entry("sdxl", ref, "model_index.json", self._load_sdxl)
            if _is_inpaint_checkpoint(entry.base) and task != "inpaint":
                raise ModelError(
                    f"model '{ref.id}' is an inpainting checkpoint; use it for the inpaint "
                    f"task only, or pick a text-to-image checkpoint for {task}"
                )
            pipe = self._sibling(entry, task, _sdxl_task_class)
            self._activate(entry)
            return pipe

    def kandinsky_prior(self, model_id: str | ModelRef, revision: str | None = None) -> Any:
        """The Kandinsky 2.2 prior pipeline (text/image to image embeddings)."""
        ref = ModelRef.of(model_id, revision)
        with self._lock:
            entry = self._entry("kandinsky_prior", ref, "model_index.json",
                                self._load_named("KandinskyV22PriorPipeline"))
            self._activate(entry)
            return entry.base

    def kandinsky_decoder(self, model_id: str | ModelRef, task: Task = "text2image",
                          revision: str | None = None) -> Any:
        """A Kandinsky 2.2 decoder pipeline; image2image shares the text2image weights."""
        _check_task(task)
        ref = ModelRef.of(model_id, revision)
        with self._lock:
            entry = self._entry("kandinsky_decoder", ref, "model_index.json",
                                self._load_kandinsky_decoder)
            inpaint_ckpt = type(entry.base).__name__ == "KandinskyV22InpaintPipeline"
            if inpaint_ckpt != (task == "inpaint"):
                want = "an inpainting" if task == "inpaint" else "a text-to-image"
                raise ModelError(
                    f"model '{ref.id}' is not usable for the Kandinsky {task} task; "
                    f"pick {want} decoder checkpoint"
                )
            pipe = self._sibling(entry, task, _kandinsky_task_class)
            self._activate(entry)
            return pipe

    def sam(self, model_id: str | ModelRef, revision: str | None = None) -> tuple[Any, Any]:
        """``(SamModel, SamProcessor)`` for a Segment Anything checkpoint."""
        ref = ModelRef.of(model_id, revision)
        with self._lock:
            entry = self._entry("sam", ref, "config.json", self._load_sam)
            self._activate(entry)
            return entry.base

    def upscaler(self, model_id: str | ModelRef, revision: str | None = None) -> Any:
        """The Stable Diffusion x4 upscaler pipeline."""
        ref = ModelRef.of(model_id, revision)
        with self._lock:
            entry = self._entry("upscaler", ref, "model_index.json",
                                self._load_named("StableDiffusionUpscalePipeline"))
            self._activate(entry)
            return entry.base

    # --- bookkeeping ----------------------------------------------------------------

    def loaded(self) -> dict[str, dict]:
        """What is loaded, by model name: source, revision, dtype, bytes, state."""
        with self._lock:
            return {
                e.name: {
                    "source": e.resolved.source,
                    "kind": e.resolved.kind,
                    "revision": e.resolved.revision,
                    "dtype": str(e.dtype).removeprefix("torch."),
                    "param_bytes": e.nbytes,
                    "state": e.state,
                    "tasks": sorted(e.pipes),
                    "class": type(e.base).__name__ if not isinstance(e.base, tuple)
                    else type(e.base[0]).__name__,
                }
                for e in self._entries.values()
            }

    def param_bytes(self) -> int:
        """Bytes of the unique parameter tensors across every loaded model."""
        with self._lock:
            return _unique_param_bytes(m for e in self._entries.values() for m in e.modules())

    def resident_bytes(self) -> int:
        """Bytes of the models currently counted as resident on the execution device."""
        with self._lock:
            return sum(e.nbytes for e in self._entries.values() if e.state == "device")

    def free(self) -> None:
        """Drop every model and release cached device memory."""
        with self._lock:
            self._entries.clear()
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    # --- resolution -----------------------------------------------------------------

    def resolve(self, model: str | ModelRef, probe: str = "model_index.json") -> Resolved:
        """Find where ``model`` comes from, or raise :class:`ModelError` (fast)."""
        return self.locator.resolve(model, probe)

    def model_dirs(self) -> list[Path]:
        """Folders a graph may name models inside (see :meth:`ModelLocator.model_dirs`)."""
        return self.locator.model_dirs()

    def refusal(self, resolved: Resolved) -> str | None:
        """Why a resolved model must not be loaded (custom code, pickle-only weights), or
        None; for a hub model, what of its snapshot is in the local cache is looked at."""
        if resolved.kind != "hub":
            return refusal(resolved.model_id, Path(resolved.source),
                           allow_unsafe_weights=self.allow_unsafe_weights)
        snapshot = _hub_snapshot(resolved)
        if snapshot is None:
            return None
        return refusal(resolved.model_id, snapshot, allow_unsafe_weights=True, complete=False)

    # --- loading --------------------------------------------------------------------

    def _entry(self, family: str, ref: ModelRef, probe: str, load) -> _Entry:
        dtype = _dtype_of(ref.dtype) or self.dtype
        key = (family, ref.id, ref.revision, ref.variant, dtype)
        entry = self._entries.get(key)
        if entry is not None:
            return entry
        resolved = self.resolve(ref, probe)
        reason = self.refusal(resolved)
        if reason:
            raise ModelError(reason)
        kwargs = self._load_kwargs(ref, resolved, dtype)
        choose_pil_image_processors()
        with _quiet_progress():
            try:
                base = load(resolved, kwargs)
            except ModelError:
                raise
            except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
                raise _load_error(ref.id, resolved, exc, self.allow_unsafe_weights) from None
        self.load_count += 1
        name = ref.id if ref.revision is None else f"{ref.id}@{ref.revision}"
        entry = _Entry(name, resolved, dtype, base)
        if family in ("sdxl", "kandinsky_decoder"):
            entry.pipes[_base_task(base)] = base
        entry.nbytes = _unique_param_bytes(entry.modules())
        self._entries[key] = entry
        return entry

    def _load_kwargs(self, ref: ModelRef, resolved: Resolved, dtype: torch.dtype) -> dict:
        kwargs: dict[str, Any] = {
            "dtype": dtype,
            "use_safetensors": None if self.allow_unsafe_weights else True,
        }
        if resolved.kind == "hub":
            kwargs.update(
                revision=resolved.revision or ref.revision,
                cache_dir=str(_hf_cache_dir()),
                local_files_only=resolved.local_files_only,
            )
            variant = ref.variant or self.variant
            if variant:
                kwargs["variant"] = variant
        return kwargs

    def _load_pipeline(self, cls: Any, resolved: Resolved, kwargs: dict) -> Any:
        pipe = cls.from_pretrained(resolved.source, trust_remote_code=False, **kwargs)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _load_named(self, class_name: str):
        """A loader for one diffusers pipeline class (imported only when loading)."""

        def load(resolved: Resolved, kwargs: dict) -> Any:
            import diffusers

            return self._load_pipeline(getattr(diffusers, class_name), resolved, kwargs)

        return load

    def _load_sdxl(self, resolved: Resolved, kwargs: dict) -> Any:
        import diffusers

        name = str(_model_index(resolved).get("_class_name", ""))
        # The SDXL classes by name: diffusers' AutoPipeline would read model_index.json
        # from the hub cache again through a deprecated download argument (a warning on
        # every run with real weights). Other checkpoints go through AutoPipeline.
        cls = getattr(diffusers, name) if name in _SDXL_CLASSES else (
            diffusers.AutoPipelineForInpainting if "Inpaint" in name
            else diffusers.AutoPipelineForText2Image)
        return self._load_pipeline(cls, resolved, kwargs)

    def _load_kandinsky_decoder(self, resolved: Resolved, kwargs: dict) -> Any:
        from diffusers import KandinskyV22InpaintPipeline, KandinskyV22Pipeline

        index = _model_index(resolved)
        cls = KandinskyV22InpaintPipeline if "Inpaint" in index.get("_class_name", "") \
            else KandinskyV22Pipeline
        return self._load_pipeline(cls, resolved, kwargs)

    def _load_sam(self, resolved: Resolved, kwargs: dict) -> tuple[Any, Any]:
        from transformers import SamModel, SamProcessor

        model = SamModel.from_pretrained(resolved.source, trust_remote_code=False,
                                         **kwargs).eval()
        proc_kwargs = {k: v for k, v in kwargs.items()
                       if k in ("revision", "cache_dir", "local_files_only")}
        processor = SamProcessor.from_pretrained(resolved.source, trust_remote_code=False,
                                                 **proc_kwargs)
        return model, processor

    def _sibling(self, entry: _Entry, task: str, task_class) -> Any:
        """The pipeline for ``task`` built from the entry's components (``from_pipe``)."""
        pipe = entry.pipes.get(task)
        if pipe is None:
            # from_pipe casts every shared module to its dtype argument (float32 when
            # omitted), so pass the checkpoint's own dtype to keep one copy as loaded.
            pipe = task_class(task).from_pipe(entry.base, dtype=entry.dtype)
            pipe.set_progress_bar_config(disable=True)
            entry.pipes[task] = pipe
        return pipe

    # --- budget ---------------------------------------------------------------------

    def _activate(self, entry: _Entry) -> None:
        """Mark ``entry`` used and make it resident, evicting LRU models over budget."""
        self._tick += 1
        entry.last_used = self._tick
        if entry.state in ("device", "offload"):
            return
        budget = self.budget_bytes
        too_big = budget is not None and entry.nbytes > budget
        if (too_big or self.offload_all) and self._offload(entry):
            return
        if budget is not None:
            self._make_room(entry.nbytes, keep=entry)
        _move(entry, self.device)
        entry.state = "device"

    def recover_from_oom(self) -> None:
        """After an out-of-memory: move every model to host; later uses stream with CPU offload."""
        with self._lock:
            for entry in self._entries.values():
                if entry.state == "device":
                    _move(entry, host_device())
                    entry.state = "host"
            self.offload_all = True
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def _make_room(self, need: int, keep: _Entry) -> None:
        """Move least-recently-used resident models to host until ``need`` fits."""
        budget = self.budget_bytes or 0
        resident = sorted(
            (e for e in self._entries.values() if e.state == "device" and e is not keep),
            key=lambda e: e.last_used,
        )
        used = sum(e.nbytes for e in resident)
        for victim in resident:
            if used + need <= budget:
                break
            _move(victim, host_device())
            victim.state = "host"
            used -= victim.nbytes

    def _offload(self, entry: _Entry) -> bool:
        """Stream a too-big pipeline through the GPU module by module (CUDA only)."""
        if self.device.type != "cuda" or not hasattr(entry.base, "enable_model_cpu_offload"):
            return False
        self._make_room(0, keep=entry)
        entry.base.enable_model_cpu_offload(device=self.device)
        entry.state = "offload"
        return True


# --- process-wide manager -----------------------------------------------------------

_MANAGER: ModelManager | None = None
_manager_lock = threading.Lock()


def get_manager() -> ModelManager:
    """The process-wide manager, created from the environment on first use."""
    global _MANAGER
    with _manager_lock:
        if _MANAGER is None:
            _MANAGER = ModelManager(allow_unsafe_weights=_env_flag(UNSAFE_WEIGHTS_ENV),
                                    device=os.environ.get("GRAPHKIT_DEVICE") or None)
        return _MANAGER


def configure(**kwargs: Any) -> ModelManager:
    """Replace the process-wide manager (freeing the old one) with new settings."""
    global _MANAGER
    with _manager_lock:
        if _MANAGER is not None:
            _MANAGER.free()
        for other in _OTHER_PROFILES.values():
            other.free()
        _OTHER_PROFILES.clear()
        _MANAGER = ModelManager(**kwargs)
        return _MANAGER


_OTHER_PROFILES: dict[str, ModelManager] = {}


def manager_for(profile: str | None = None) -> ModelManager:
    """The process-wide manager, or, for another profile ('hub' or 'tiny'), a manager of
    that profile kept beside it (same device and weight policy), so one run can use the
    tiny models without changing what the rest of the process uses."""
    current = get_manager()
    if profile is None or profile == current.profile:
        return current
    if profile not in ("hub", "tiny"):
        raise ValueError(f"unknown model profile '{profile}'; use 'hub' or 'tiny'")
    with _manager_lock:
        other = _OTHER_PROFILES.get(profile)
        if other is None:
            other = ModelManager(profile=profile, device=current.device, dtype=current.dtype,
                                 budget_bytes=current.budget_bytes, variant=current.variant,
                                 allow_unsafe_weights=current.allow_unsafe_weights)
            _OTHER_PROFILES[profile] = other
        return other


# --- helpers ------------------------------------------------------------------------


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ModelError(f"unknown task '{task}'; use one of {', '.join(TASKS)}")


def _sdxl_task_class(task: str) -> Any:
    import diffusers

    return {
        "text2image": diffusers.AutoPipelineForText2Image,
        "image2image": diffusers.AutoPipelineForImage2Image,
        "inpaint": diffusers.AutoPipelineForInpainting,
    }[task]


def _kandinsky_task_class(task: str) -> Any:
    import diffusers

    return {
        "text2image": diffusers.KandinskyV22Pipeline,
        "image2image": diffusers.KandinskyV22Img2ImgPipeline,
        "inpaint": diffusers.KandinskyV22InpaintPipeline,
    }[task]


def _base_task(pipe: Any) -> str:
    name = type(pipe).__name__
    if "Inpaint" in name:
        return "inpaint"
    if "Img2Img" in name:
        return "image2image"
    return "text2image"


def _is_inpaint_checkpoint(pipe: Any) -> bool:
    return "Inpaint" in type(pipe).__name__


def _model_index(resolved: Resolved) -> dict:
    """The pipeline's model_index.json (already in the local cache after resolve)."""
    if resolved.kind != "hub":
        path = Path(resolved.source) / "model_index.json"
        if not path.is_file():
            raise ModelError(
                f"model '{resolved.model_id}' at {resolved.source} has no model_index.json: "
                f"not a diffusers pipeline folder"
            )
        return json.loads(path.read_text(encoding="utf-8"))
    from huggingface_hub import hf_hub_download

    file = hf_hub_download(
        resolved.source, "model_index.json", revision=resolved.revision,
        cache_dir=_hf_cache_dir(), local_files_only=True,
    )
    return json.loads(Path(file).read_text(encoding="utf-8"))


def _torch_modules(obj: Any) -> list[torch.nn.Module]:
    if isinstance(obj, torch.nn.Module):
        return [obj]
    if isinstance(obj, tuple):
        return [m for part in obj for m in _torch_modules(part)]
    components = getattr(obj, "components", None)
    if isinstance(components, dict):
        return [c for c in components.values() if isinstance(c, torch.nn.Module)]
    return []


def _unique_param_bytes(modules: Iterator[torch.nn.Module] | list[torch.nn.Module]) -> int:
    seen: set[tuple[str, int]] = set()
    total = 0
    for module in modules:
        for param in module.parameters():
            key = (str(param.device), param.data_ptr())
            if key in seen:
                continue
            seen.add(key)
            total += param.numel() * param.element_size()
    return total


def _move(entry: _Entry, device: torch.device) -> None:
    for module in entry.modules():
        module.to(device)


def _hub_snapshot(resolved: Resolved) -> Path | None:
    """The local snapshot folder of a resolved hub model, when it is in the cache."""
    if not resolved.revision:
        return None
    repo = "models--" + resolved.source.replace("/", "--")
    folder = _hf_cache_dir() / repo / "snapshots" / resolved.revision
    return folder if folder.is_dir() else None


def _load_error(model_id: str, resolved: Resolved, exc: BaseException,
                allow_unsafe: bool) -> ModelError:
    where = resolved.source if resolved.kind != "hub" else f"the hub cache (HF_HOME={_hf_home()})"
    text = _first_line(exc)
    if "trust_remote_code" in str(exc) or "custom code" in text:
        return ModelError(f"model '{model_id}' at {where} needs custom code ({text}), which "
                          "graphkit never runs; use a checkpoint that loads with the standard "
                          "diffusers or transformers classes")
    if not allow_unsafe and "safetensors" in text.lower():
        return ModelError(
            f"model '{model_id}' could not be loaded from {where}: no .safetensors weights "
            f"({text}); convert it, or allow unsafe weights (allow_unsafe_weights=True)"
        )
    hint = _FIX if resolved.kind == "hub" else "check that the folder is a complete checkpoint"
    return ModelError(f"model '{model_id}' could not be loaded from {where}: {text}; {hint}")


def _dtype_of(name: str | None) -> torch.dtype | None:
    if name is None:
        return None
    dtype = getattr(torch, name.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise ModelError(f"unknown dtype '{name}'; use float16, bfloat16 or float32")
    return dtype


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """Hide diffusers/transformers loading bars; restore their setting afterwards."""
    from diffusers.utils import logging as df_logging
    from transformers.utils import logging as tf_logging

    saved = (df_logging.is_progress_bar_enabled(), tf_logging.is_progress_bar_enabled())
    df_logging.disable_progress_bar()
    tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if saved[0]:
            df_logging.enable_progress_bar()
        if saved[1]:
            tf_logging.enable_progress_bar()
