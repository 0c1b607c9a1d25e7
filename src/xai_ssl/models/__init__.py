"""Encoders: the common wrapper, architectures, checkpoints (trained here or pretrained) and the model registry."""

from xai_ssl.models.encoder import Encoder
from xai_ssl.models.registry import (
    ARCHITECTURES,
    PRETRAINED_SOURCES,
    CheckpointError,
    build_architecture,
    load_encoder,
    load_pretrained,
    save_encoder,
)

__all__ = [
    "ARCHITECTURES",
    "PRETRAINED_SOURCES",
    "CheckpointError",
    "Encoder",
    "build_architecture",
    "load_encoder",
    "load_pretrained",
    "save_encoder",
]
