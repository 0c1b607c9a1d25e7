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
from xai_ssl.models.traits import ModelTraits
from xai_ssl.models.vit import VitEncoder

__all__ = [
    "ARCHITECTURES",
    "PRETRAINED_SOURCES",
    "CheckpointError",
    "Encoder",
    "ModelTraits",
    "VitEncoder",
    "build_architecture",
    "load_encoder",
    "load_pretrained",
    "save_encoder",
]
