"""Conditional occlusion (Sammani et al. §3.1): similarity drop when a window of one view is occluded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from xai_ssl.engine import cosine
from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.models.encoder import Encoder


def window_scaler(method: str) -> Callable[[dict[str, Any], int], dict[str, Any]]:
    """A scaler for occlusion methods: window 64 / stride 8 at 224 px, scaled to the image size when left at null."""

    def scale(params: dict[str, Any], size: int) -> dict[str, Any]:
        out = dict(params)
        if out["window"] is None:
            out["window"] = max(1, int(round(64 * size / 224)))
        if out["stride"] is None:
            out["stride"] = max(1, int(round(8 * size / 224)))
        if out["window"] > size:
            raise ValueError(f"{method}: window {out['window']} is larger than the image ({size} px)")
        return out

    return scale


def n_windows(params: dict[str, Any], size: int) -> int:
    """K² windows of an occlusion method with resolved ``window``/``stride`` at ``size`` px."""
    k = (size - int(params["window"])) // int(params["stride"]) + 1
    return k * k


def occlusion_masks(size: int, window: int, stride: int, device: torch.device) -> torch.Tensor:
    """Boolean masks [K*K, 1, size, size], True inside window (i, j) (row-major)."""
    starts = torch.arange(0, size - window + 1, stride, device=device)  # [K]
    pos = torch.arange(size, device=device)
    inside = (pos[None, :] >= starts[:, None]) & (pos[None, :] < starts[:, None] + window)  # [K, size]
    masks = inside[:, None, :, None] & inside[None, :, None, :]  # [K, K, size, size]
    return masks.reshape(-1, 1, size, size)


def occlusion_drop_map(
    encoder: Encoder, x: torch.Tensor, z_cond: torch.Tensor, base: torch.Tensor, masks: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """Drops base - cos(f(occluded x), z_cond) for every mask; x [3, H, W], z_cond [D] -> [K*K]."""
    fill = encoder.baseline_pixel[0]  # [3, 1, 1]
    drops = []
    for i in range(0, masks.shape[0], batch_size):
        m = masks[i : i + batch_size]  # [b, 1, H, W]
        occluded = torch.where(m, fill, x)  # [b, 3, H, W]
        drops.append(base - cosine(encoder(occluded), z_cond[None]))
    return torch.cat(drops)


@register_method(
    "conditional_occlusion", pair_family="crop_aug", family="occlusion", defaults={"window": None, "stride": None},
    cost="2*K^2 + 2 forwards (K = (size - window) // stride + 1), no backward", scale=window_scaler("conditional_occlusion"),
    passes=lambda p, size: Passes(2 * n_windows(p, size) + 2),
)
def conditional_occlusion(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, torch.Tensor]:
    """H1[i,j] = b0 - cos(f(O_ij(x1)), f(x2)); H2 likewise with x2 occluded; maps [B, K, K]."""
    size = x1.shape[-1]
    window, stride = int(params["window"]), int(params["stride"])
    k = (size - window) // stride + 1
    masks = occlusion_masks(size, window, stride, x1.device)
    out1, out2 = [], []
    with torch.inference_mode():
        z1, z2 = encoder(x1), encoder(x2)  # [B, D], each side embedded once
        base = cosine(z1, z2)  # [B]
        for b in range(x1.shape[0]):
            out1.append(occlusion_drop_map(encoder, x1[b], z2[b], base[b], masks, ctx.batch_size).view(k, k))
            out2.append(occlusion_drop_map(encoder, x2[b], z1[b], base[b], masks, ctx.batch_size).view(k, k))
    return torch.stack(out1), torch.stack(out2)
