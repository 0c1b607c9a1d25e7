"""Context-agnostic conditional occlusion (Sammani et al. §3.2): keep-only minus occluded embedding vs the other view."""

from __future__ import annotations

from typing import Any

import torch

from xai_ssl.engine import cosine
from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.methods.conditional_occlusion import n_windows, occlusion_masks, window_scaler
from xai_ssl.models.encoder import Encoder


def minmax(m: torch.Tensor) -> torch.Tensor:
    """(m - min) / (max - min) over the whole map; a constant map becomes all zeros."""
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo) if hi > lo else torch.zeros_like(m)


def difference_similarity_map(
    encoder: Encoder, x: torch.Tensor, z_other: torch.Tensor, masks: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """cos(f(P_ij(x)) - f(O_ij(x)), z_other) for every mask; x [3, H, W], z_other [D] -> [K*K] (raw).

    P_ij keeps only window (i, j) (zero elsewhere, in model-input space), O_ij zeroes only the window;
    both images of a window go through the encoder in the same forward (2*b images for b windows).
    """
    fill = encoder.baseline_pixel[0]  # [3, 1, 1]
    per_forward = max(1, batch_size // 2)
    out = []
    for i in range(0, masks.shape[0], per_forward):
        m = masks[i : i + per_forward]  # [b, 1, H, W]
        keep = torch.where(m, x, fill)  # [b, 3, H, W]
        occluded = torch.where(m, fill, x)  # [b, 3, H, W]
        z = encoder(torch.cat([keep, occluded]))  # [2b, D]
        b = m.shape[0]
        out.append(cosine(z[:b] - z[b:], z_other[None]))
    return torch.cat(out)


@register_method(
    "context_agnostic_occlusion", pair_family="crop_aug", family="occlusion", defaults={"window": None, "stride": None},
    cost="4*K^2 + 2 forwards per pair (K = (size - window) // stride + 1), no backward", scale=window_scaler("context_agnostic_occlusion"),
    passes=lambda p, size: Passes(4 * n_windows(p, size) + 2),
)
def context_agnostic_occlusion(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, torch.Tensor]:
    """H1[i,j] = cos(f(P_ij(x1)) - f(O_ij(x1)), f(x2)), H2 likewise; each min-max normalised; maps [B, K, K]."""
    size = x1.shape[-1]
    window, stride = int(params["window"]), int(params["stride"])
    k = (size - window) // stride + 1
    masks = occlusion_masks(size, window, stride, x1.device)  # [K*K, 1, H, W]
    out1, out2 = [], []
    with torch.inference_mode():
        z1, z2 = encoder(x1), encoder(x2)  # [B, D], the fixed sides embedded once
        for b in range(x1.shape[0]):
            out1.append(minmax(difference_similarity_map(encoder, x1[b], z2[b], masks, ctx.batch_size)).view(k, k))
            out2.append(minmax(difference_similarity_map(encoder, x2[b], z1[b], masks, ctx.batch_size)).view(k, k))
    return torch.stack(out1), torch.stack(out2)
