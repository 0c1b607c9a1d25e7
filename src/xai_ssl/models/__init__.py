"""Encoders: the common wrapper, architectures, checkpoints and the model registry."""

from xai_ssl.models.encoder import Encoder
from xai_ssl.models.registry import ARCHITECTURES, build_architecture, load_encoder, save_encoder

__all__ = ["ARCHITECTURES", "Encoder", "build_architecture", "load_encoder", "save_encoder"]
