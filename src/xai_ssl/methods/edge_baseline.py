"""Edge baseline: the image-gradient magnitude (Sobel) of each view's greyscale image.

Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018, show that an edge detector — which
never looks at the model — produces maps that resemble those of several saliency methods and would pass a
visual inspection; a method that scores no better than the edges of the image may be explaining the image,
not the model. Sobel operator: Sobel & Feldman (1968), as in Gonzalez & Woods, "Digital Image Processing".

    Y = 0.2989 R + 0.587 G + 0.114 B     (ITU-R 601 luma, torchvision's rgb_to_grayscale), pixels in [0, 1]
    Gx = Y ⋆ [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],  Gy = Y ⋆ Gxᵀ,  map = sqrt(Gx² + Gy²)

with replicated borders (the border is not an edge). The map depends on the pixels but not on the model:
RAND = 1, and MS measures how much the input noise moves the edges.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.models.encoder import Encoder

SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude [B, H, W] of the greyscale of images [B, 3, H, W] (Sobel, replicated borders)."""
    from torchvision.transforms.v2.functional import rgb_to_grayscale  # this method's jobs only (~2 s import)

    grey = rgb_to_grayscale(x)  # [B, 1, H, W]
    kx = torch.tensor(SOBEL_X, dtype=x.dtype, device=x.device)
    kernels = torch.stack([kx, kx.T])[:, None]  # [2, 1, 3, 3]: Gx, Gy
    g = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)  # [B, 2, H, W]
    return torch.sqrt((g * g).sum(1))


@register_method("edge_baseline", pair_family="crop_aug", defaults={}, cost="0 forwards", baseline=True, passes=lambda p, size: Passes(0))
def edge_baseline(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel gradient magnitude [B, H, W] of each view at image resolution; the encoder is not used."""
    with torch.no_grad():
        return sobel_magnitude(x1), sobel_magnitude(x2)
