"""Choosing the torch device from the config."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto|cpu|cuda|cuda:N`` to a device; ``auto`` picks CUDA when available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device: {name!r} was requested but CUDA is not available on this machine; use 'auto' or 'cpu'")
    return torch.device(name)


def set_threads(n: int | None) -> None:
    """Limit torch's intra-op CPU threads to the job's thread count."""
    if n is not None and n > 0:
        torch.set_num_threads(int(n))
