"""What the torch stages share: loading the encoder for inference, the batch size, and the provenance record."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from xai_ssl.device import choose_batch_size, resolve_device, set_threads
from xai_ssl.io.download import sha256_file
from xai_ssl.models.encoder import Encoder
from xai_ssl.models.registry import read_encoder
from xai_ssl.provenance import code_fingerprint, environment

log = logging.getLogger(__name__)


def load_for_inference(encoder_path: str | Path, device: str, speed: dict[str, Any] | None, torch_threads: int | None) -> tuple[Encoder, torch.device, str]:
    """The encoder on its device with the config's speed settings (``channels_last``, ``autocast``), and its config hash.

    ``torch_threads`` is the config's CPU thread count (not Snakemake's ``threads``, which ``--cores`` can
    lower), so numbers never depend on ``--cores``.
    """
    set_threads(torch_threads)
    torch_device = resolve_device(device)
    encoder, extra = read_encoder(Path(encoder_path), torch_device)
    model_hash = str(extra.get("config_hash") or sha256_file(encoder_path)[:16])
    return encoder.set_speed(**(speed or {})), torch_device, model_hash


def resolve_batch_size(batch_size: int | str, encoder: Encoder, image_size: int, device: torch.device) -> int:
    """``batch_size`` as configured, or with ``auto`` the fastest batch for this encoder and device (timed)."""
    if batch_size != "auto":
        return int(batch_size)
    chosen = choose_batch_size(encoder, image_size, device)
    log.info("batch_size auto: %d is the fastest plain-forward batch on %s", chosen, device)
    return chosen


def job_provenance(device: torch.device, torch_threads: int | None, **extra: Any) -> dict[str, Any]:
    """Code version, library versions, device and CPU threads of a job, plus ``extra`` (dataset, model, ...)."""
    return {"code_version": code_fingerprint("."), **environment(device), "torch_threads": torch.get_num_threads(), **extra}
