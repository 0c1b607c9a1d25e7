"""The common encoder wrapper every method and metric relies on."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Encoder(nn.Module):
    """Trunk (feature maps) -> spatial mean -> head -> embedding; takes images in [0, 1].

    The encoder applies its own input normalisation, so callers always pass pixel values in
    [0, 1]. ``features`` is the layer CAM methods use; ``embed_features`` maps it to the
    embedding whose cosine similarity every method explains.
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
        return self.trunk(self.normalise(x))

    def embed_features(self, a: torch.Tensor) -> torch.Tensor:
        """Embedding [B, D] from feature maps [B, C, h, w] (spatial mean, then head)."""
        return self.head(a.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding [B, D] of images [B, 3, H, W] in [0, 1]."""
        return self.embed_features(self.features(x))
