"""Execution device and dtype choice, and memory queries."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str | None = None) -> torch.device:
    """Return the device to run on: the one named, else cuda, then mps, then cpu."""
    if name and name != "auto":
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device '{name}' was asked for but CUDA is not available here")
        if name == "mps" and not _mps_available():
            raise ValueError("device 'mps' was asked for but MPS is not available here")
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on accelerators, fp32 on the CPU."""
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


def host_device() -> torch.device:
    """Where values go when they leave the execution device."""
    return torch.device("cpu")


def free_device_bytes(device: torch.device) -> int | None:
    """Free memory on an accelerator, or None where it cannot be asked."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return None
