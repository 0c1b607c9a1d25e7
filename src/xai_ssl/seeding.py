"""Deterministic seeds derived from the config seed, an image id and a purpose."""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, *keys: object) -> int:
    """Return a 63-bit seed from the config seed and any keys (image id, purpose, ...)."""
    text = "/".join([str(int(seed))] + [str(k) for k in keys])
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") & (2**63 - 1)


def generator(seed: int, *keys: object) -> torch.Generator:
    """Return a CPU ``torch.Generator`` seeded with :func:`derive_seed`."""
    g = torch.Generator(device="cpu")
    g.manual_seed(derive_seed(seed, *keys))
    return g
