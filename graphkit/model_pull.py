"""Download the models a graph needs into the Hugging Face cache, ahead of a run.

``graphkit models pull GRAPH`` fetches, for each hub model the graph names (at the revision
the graph pins, else ``main``), only what graphkit's loaders read:

- weights as ``.safetensors`` only, and only the plain ones (not ``*.fp16.safetensors``
  variants, which the loaders do not ask for); never pickles (``.bin``, ``.ckpt``, ``.pt``)
  and never code (``.py``);
- configs and tokenizer files (``.json``, ``.txt``, sentencepiece ``.model``);
- for a diffusers pipeline (a ``model_index.json`` at the top), the component folders;
  single-file checkpoints beside them (``sd_xl_turbo_1.0.safetensors``) are skipped.

Files land in the ordinary cache (``HF_HOME`` / ``HF_HUB_CACHE``), so a later run finds
them with ``HF_HUB_OFFLINE=1``. After a pipeline's download, diffusers' own offline lookup
checks that nothing it expects is missing. Local model folders are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from graphkit.graph import GraphDoc
from graphkit.model_sources import _HUB_ID, _first_line, _hf_cache_dir, _looks_like_path
from graphkit.registry import Registry
from graphkit.requirements import model_params

WANTED_SUFFIXES = (".safetensors", ".json", ".txt", ".model")
PIPELINE_WEIGHT_STEMS = ("diffusion_pytorch_model", "model")  # what diffusers loads by name
_SHARD = re.compile(r"-\d{5}-of-\d{5}$")
_VARIANT_INDEX = re.compile(r"\.safetensors\.index\.[^.]+\.json$")


class PullError(Exception):
    """A model could not be downloaded; ``missing`` when the hub says it does not exist."""

    def __init__(self, message: str, missing: bool) -> None:
        super().__init__(" ".join(message.split()))
        self.missing = missing


@dataclass
class PullPlan:
    """One model's download: the commit a revision points to, the files chosen, bytes."""

    model: str
    revision: str | None
    commit: str = ""
    pipeline: bool = False  # a diffusers pipeline repo (model_index.json at the top)
    files: dict[str, int] = field(default_factory=dict)  # path in the repo -> bytes

    @property
    def size(self) -> int:
        return sum(self.files.values())


def graph_hub_models(doc: GraphDoc, reg: Registry) -> tuple[list[tuple[str, str | None]],
                                                             list[str]]:
    """The (hub id, revision) pairs a graph loads, and the local folders it names."""
    hub: list[tuple[str, str | None]] = []
    local: list[str] = []
    for _where, (model, revision) in sorted(model_params(doc, reg).items()):
        if _looks_like_path(model) or not _HUB_ID.match(model) or Path(model).expanduser() \
                .is_dir():
            if model not in local:
                local.append(model)
        elif (model, revision) not in hub:
            hub.append((model, revision))
    return hub, local


def pick_files(paths: list[str], pipeline: bool) -> list[str]:
    """The repo files graphkit loads (see the module docstring); ``pipeline`` for a
    diffusers pipeline repo (model_index.json at the top)."""
    chosen = []
    for path in paths:
        parts = PurePosixPath(path).parts
        if not parts or path.startswith("/") or "\\" in path or ".." in parts:
            continue  # nothing that could land outside the snapshot folder
        if any(part.startswith(".") for part in parts):
            continue
        name = parts[-1]
        if not name.endswith(WANTED_SUFFIXES) or _is_variant(name):
            continue
        if pipeline and len(parts) == 1 and name.endswith(".safetensors") \
                and _SHARD.sub("", name.removesuffix(".safetensors")) \
                not in PIPELINE_WEIGHT_STEMS:
            continue  # a single-file checkpoint beside the pipeline folders
        chosen.append(path)
    return sorted(chosen)


def _is_variant(name: str) -> bool:
    """``model.fp16.safetensors``, ``model.fp16-00001-of-00002.safetensors`` and their
    ``*.safetensors.index.fp16.json``."""
    if _VARIANT_INDEX.search(name):
        return True
    if name.endswith(".safetensors"):
        stem = _SHARD.sub("", name.removesuffix(".safetensors"))
        return "." in stem
    return False


def plan_pull(model: str, revision: str | None) -> PullPlan:
    """Ask the hub what ``model`` at ``revision`` holds and choose the files to fetch."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    api = HfApi()
    plan = PullPlan(model, revision)
    with _hub_errors(model, revision):
        info = api.model_info(model, revision=revision)
        plan.commit = info.sha or ""
        sizes = {entry.path: int(entry.size or 0)
                 for entry in api.list_repo_tree(model, revision=plan.commit or revision,
                                                 recursive=True)
                 if isinstance(entry, RepoFile)}
    plan.pipeline = "model_index.json" in sizes
    plan.files = {path: sizes[path] for path in pick_files(list(sizes), plan.pipeline)}
    if not plan.files:
        raise PullError(f"model '{model}' has no safetensors weights or configs graphkit "
                        "could load", missing=True)
    return plan


def download(plan: PullPlan) -> Path:
    """Fetch the plan's files into the Hugging Face cache; the snapshot folder."""
    from huggingface_hub import snapshot_download

    with _hub_errors(plan.model, plan.revision):
        folder = snapshot_download(plan.model, revision=plan.revision,
                                   allow_patterns=sorted(plan.files),
                                   cache_dir=_hf_cache_dir())
    if plan.pipeline:
        _check_pipeline_offline(plan)
    return Path(folder)


def _check_pipeline_offline(plan: PullPlan) -> None:
    """Let diffusers look the pipeline up offline, as a run with HF_HUB_OFFLINE=1 will,
    so a file it expects and graphkit does not fetch (code, say) is reported now."""
    from diffusers import DiffusionPipeline

    from graphkit.image_processors import choose_pil_image_processors

    choose_pil_image_processors()
    try:
        DiffusionPipeline.download(plan.model, revision=plan.revision, use_safetensors=True,
                                   local_files_only=True, cache_dir=str(_hf_cache_dir()))
    except Exception as exc:  # diffusers raises several kinds; each is the same finding
        raise PullError(f"model '{plan.model}' was downloaded, but diffusers would not load "
                        f"it offline: {_first_line(exc)}", missing=True) from None


@contextmanager
def _hub_errors(model: str, revision: str | None) -> Iterator[None]:
    """Turn huggingface_hub's exceptions into one-line PullErrors."""
    try:
        yield
    except PullError:
        raise
    except Exception as exc:  # network, HTTP and validation errors of every kind
        raise _as_pull_error(model, revision, exc) from None


def _as_pull_error(model: str, revision: str | None, exc: Exception) -> PullError:
    from huggingface_hub import errors as hf_errors

    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return PullError("HF_HUB_OFFLINE is set, so nothing can be downloaded; unset it "
                         "to pull models", missing=False)
    if isinstance(exc, hf_errors.GatedRepoError):
        return PullError(f"model '{model}' is gated on the Hugging Face hub; accept its "
                         "licence on the model page and log in (hf auth login)", missing=True)
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return PullError(f"model '{model}': revision '{revision}' not found on the hub",
                         missing=True)
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        return PullError(f"model '{model}' not found on the Hugging Face hub (a typo, or a "
                         "private repo: log in with hf auth login)", missing=True)
    if isinstance(exc, hf_errors.HFValidationError):
        return PullError(f"model '{model}' is not a hub id: {_first_line(exc)}", missing=True)
    return PullError(f"model '{model}' could not be downloaded: {type(exc).__name__}: "
                     f"{_first_line(exc)}", missing=False)


def human_size(nbytes: int) -> str:
    """``1.2 GB``, ``350.0 MB``, ``12.0 kB`` (powers of 1000, as the hub shows sizes)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def pull_graph(doc: GraphDoc, reg: Registry, say: Callable[[str], None],
               dry_run: bool = False) -> list[PullError]:
    """Plan and download every hub model of a graph, reporting through ``say``; the errors
    (one per model that failed; the others are still pulled)."""
    hub, local = graph_hub_models(doc, reg)
    for folder in local:
        say(f"{folder}: a local folder, nothing to download")
    if not hub:
        say("this graph loads no hub models")
        return []
    errors: list[PullError] = []
    total = 0
    for model, revision in hub:
        try:
            plan = plan_pull(model, revision)
            pinned = f" at '{revision}'" if revision else ""
            say(f"{model}{pinned} (commit {plan.commit[:12]}): {len(plan.files)} files, "
                f"{human_size(plan.size)}")
            total += plan.size
            if dry_run:
                for path, size in sorted(plan.files.items()):
                    say(f"  {path}  {human_size(size)}")
                continue
            folder = download(plan)
            say(f"  in {folder}")
        except PullError as err:
            errors.append(err)
    verb = "would download" if dry_run else "pulled"
    say(f"{verb} {len(hub) - len(errors)} of {len(hub)} models, {human_size(total)}, "
        f"into {_hf_cache_dir()}")
    return errors
