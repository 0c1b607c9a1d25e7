"""The common encoder wrapper every method and metric relies on."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"none": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Encoder(nn.Module):
    """Trunk (feature maps) -> spatial mean -> head -> embedding; takes images in [0, 1].

    The encoder applies its own input normalisation, so callers always pass pixel values in
    [0, 1]. ``features`` is the layer CAM methods use; ``embed_features`` maps it to the
    embedding whose cosine similarity every method explains (``forward(x) ==
    embed_features(features(x))``). Subclasses change these for other designs (a Vision Transformer's
    patch-token grid: :class:`xai_ssl.models.vit.VitEncoder`) and may define ``truncated_trunk(k)`` /
    ``default_up_until()`` (feature visualisation's cut) and ``cascade_layers()`` (randomisation order).
    """

    def __init__(
        self,
        trunk: nn.Module,
        head: nn.Module,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head
        if (mean is None) != (std is None):
            raise ValueError("Encoder: give both mean and std, or neither")
        self.normalised = mean is not None
        m = torch.tensor(mean if mean is not None else (0.0, 0.0, 0.0), dtype=torch.float32)
        s = torch.tensor(std if std is not None else (1.0, 1.0, 1.0), dtype=torch.float32)
        self.register_buffer("input_mean", m.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", s.view(1, 3, 1, 1), persistent=False)
        self.channels_last = False
        self.autocast_dtype: torch.dtype | None = None

    def set_speed(self, channels_last: bool = False, autocast: str = "none") -> Encoder:
        """Run the trunk channels-last and/or under CUDA autocast (``none|bfloat16|float16``); returns self.

        Autocast is refused on CPU: without native bf16 it is ~30x slower there (issue #8). Feature
        maps and embeddings are returned in float32 either way.
        """
        if autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"autocast: {autocast!r} is not one of {sorted(AUTOCAST_DTYPES)}")
        dtype = AUTOCAST_DTYPES[autocast]
        if dtype is not None and self.input_mean.device.type != "cuda":
            raise ValueError(f"autocast: {autocast!r} needs a CUDA device; on CPU use autocast: none")
        self.channels_last = bool(channels_last)
        self.autocast_dtype = dtype
        if self.channels_last:
            self.trunk.to(memory_format=torch.channels_last)
        return self

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel space [B, 3, H, W] in [0, 1] -> model-input space."""
        if not self.normalised:
            return x
        return (x - self.input_mean) / self.input_std

    @property
    def baseline_pixel(self) -> torch.Tensor:
        """Pixel value [1, 3, 1, 1] that is zero in model-input space (black, or the mean colour)."""
        return self.input_mean

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps [B, C, h, w] of the last trunk stage for images [B, 3, H, W]."""
        x = self.normalise(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.autocast_dtype is None:
            return self.trunk(x)
        with torch.autocast(device_type=x.device.type, dtype=self.autocast_dtype):
            return self.trunk(x).float()

    def embed_features(self, a: torch.Tensor) -> torch.Tensor:
        """Embedding [B, D] from feature maps [B, C, h, w] (spatial mean, then head)."""
        return self.head(a.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding [B, D] of images [B, 3, H, W] in [0, 1]."""
        return self.embed_features(self.features(x))

    def cascade_layers(self) -> list[tuple[str, nn.Module]]:
        """Layers from the top down for cascading randomisation: ``head``, then the trunk's top-level children from last to first."""
        children = list(self.trunk.named_children())
        trunk = [(f"trunk.{name}", mod) for name, mod in reversed(children)] if children else [("trunk", self.trunk)]
        return [("head", self.head), *trunk]
