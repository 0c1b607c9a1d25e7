"""Model registry: architectures by config name, and the checkpoint format of encoders trained here."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from xai_ssl.models.encoder import Encoder
from xai_ssl.models.small_resnet import build_resnet18, build_small_resnet

ARCHITECTURES: dict[str, Callable[..., Encoder]] = {
    "small_resnet": build_small_resnet,
    "resnet18": build_resnet18,
}

CHECKPOINT_FORMAT = "xai_ssl.encoder/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or does not match the expected layout."""


def build_architecture(arch: str, **params: Any) -> Encoder:
    """Build an encoder from its registry name and architecture parameters."""
    if arch not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {arch!r}; accepted: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](**params)


def save_encoder(encoder: Encoder, path: Path, arch: str, arch_params: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """Write an encoder checkpoint atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "arch": arch,
        "arch_params": dict(arch_params),
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        "extra": extra or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_encoder(path: Path, device: torch.device | str = "cpu") -> Encoder:
    """Load an encoder checkpoint written by :func:`save_encoder`, strictly, in eval mode."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: expected format {CHECKPOINT_FORMAT!r}, got {payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r}")
    try:
        encoder = build_architecture(payload["arch"], **payload["arch_params"])
        result = encoder.load_state_dict(payload["state_dict"], strict=False)
    except (KeyError, TypeError, RuntimeError) as exc:  # unknown arch/params, or a tensor of the wrong shape
        raise CheckpointError(f"{path} (format {CHECKPOINT_FORMAT}): does not match its architecture ({exc})") from exc
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{path} (format {CHECKPOINT_FORMAT}, arch {payload['arch']}): missing keys {result.missing_keys[:5]}, "
            f"unexpected keys {result.unexpected_keys[:5]}"
        )
    return encoder.to(device).eval()
