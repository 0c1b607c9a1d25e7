"""Centre baseline: a centred isotropic Gaussian, the same for every image and view.

Photographs and rendered scenes put their object near the centre (the centre bias of eye-tracking
studies: Judd et al., "Learning to Predict Where Humans Look", ICCV 2009, use a centred Gaussian as
their baseline), so a centred blob scores well on localisation and on deletion without looking at the
model or the image. A method that does not beat it explains no more than "the object is in the middle".

    G[i, j] = exp(-((i - c_h)^2 + (j - c_w)^2) / (2 s^2)),  c = (side - 1) / 2,  s = sigma · min(H, W)

``sigma`` (default 0.25) is a fraction of the image side, so the map is the same shape at every image
size: the central half of the image holds most of the mass. The map depends on neither the model nor the
pixels: MS = 0 (max-sensitivity's trivial optimum) and RAND = 1.
"""

from __future__ import annotations

from typing import Any

import torch

from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.models.encoder import Encoder


def _check(params: dict[str, Any], size: int) -> dict[str, Any]:
    out = dict(params)
    if not isinstance(out["sigma"], (int, float)) or isinstance(out["sigma"], bool) or not out["sigma"] > 0:
        raise ValueError(f"centre_baseline: params.sigma must be a number > 0 (a fraction of the image side), got {out['sigma']!r}")
    out["sigma"] = float(out["sigma"])
    return out


def centred_gaussian(height: int, width: int, sigma: float, device: torch.device | None = None) -> torch.Tensor:
    """G [H, W] (float32): exp(-d^2 / (2 s^2)), d the distance to the image centre, s = sigma * min(H, W); peak 1."""
    s = sigma * min(height, width)
    i = torch.arange(height, dtype=torch.float64, device=device) - (height - 1) / 2  # [H]
    j = torch.arange(width, dtype=torch.float64, device=device) - (width - 1) / 2  # [W]
    d2 = i[:, None] ** 2 + j[None, :] ** 2  # [H, W]
    return torch.exp(-d2 / (2 * s * s)).float()


@register_method("centre_baseline", pair_family="crop_aug", defaults={"sigma": 0.25}, cost="0 forwards", scale=_check, baseline=True,
                 passes=lambda p, size: Passes(0))
def centre_baseline(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, torch.Tensor]:
    """The centred Gaussian [B, H, W] at image resolution for both views; the encoder and pixels are not used."""
    g = centred_gaussian(int(x1.shape[-2]), int(x1.shape[-1]), float(params["sigma"]), x1.device)  # [H, W]
    return g.expand(x1.shape[0], -1, -1).clone(), g.expand(x2.shape[0], -1, -1).clone()
