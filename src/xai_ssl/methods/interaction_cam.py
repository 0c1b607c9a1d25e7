"""Interaction-CAM (Sammani et al. §3.5, NeurIPS version): Grad-CAM weighted by the joint channel descriptor.

CAM_k = iota * sum_c J_c * A_k[c] * max(dcos/dA_k[c], 0) with J = q1 * q2, q_k a pooled channel
descriptor of A_k (mean, max, or self-attention pooling with unscaled dot products) and iota the
invariance scalar 1 - mean_d |minmax(z1)_d - minmax(z2)_d| (``invariance: false`` drops it, as the
TIP-2023 version does). Registered as interaction_cam_mean / _max / _sa (default reduction per name).
"""

from __future__ import annotations

from typing import Any

import torch

from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.methods.gradcam import feature_gradients
from xai_ssl.models.encoder import Encoder

REDUCTIONS = ("mean", "max", "sa")


def pooled_descriptor(a: torch.Tensor, reduction: str) -> torch.Tensor:
    """Channel descriptor q [B, C] of feature maps a [B, C, h, w]."""
    if reduction == "mean":
        return a.mean(dim=(2, 3))
    if reduction == "max":
        return a.amax(dim=(2, 3))
    if reduction in ("sa", "attn"):
        tokens = a.flatten(2).transpose(1, 2)  # [B, hw, C], row-major positions
        query = tokens.mean(dim=1, keepdim=True)  # [B, 1, C]
        alpha = torch.softmax((tokens * query).sum(-1), dim=1)  # [B, hw], no 1/sqrt(C) scaling
        return (alpha[..., None] * tokens).sum(dim=1)  # [B, C]
    raise ValueError(f"interaction_cam: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def invariance_factor(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """iota [B] = 1 - mean_d |z1~ - z2~| with z~ the per-embedding min-max normalisation of z [B, D]."""

    def minmax(z: torch.Tensor) -> torch.Tensor:
        lo, hi = z.amin(dim=1, keepdim=True), z.amax(dim=1, keepdim=True)
        return (z - lo) / (hi - lo)

    return 1 - (minmax(z1) - minmax(z2)).abs().mean(dim=1)


def interaction_cam(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw maps [B, h, w] at feature resolution (one forward/backward for both views)."""
    a1, a2, g1, g2 = feature_gradients(encoder, x1, x2)  # [B, C, h, w] each
    joint = pooled_descriptor(a1, str(params["reduction"])) * pooled_descriptor(a2, str(params["reduction"]))  # [B, C]
    scale = joint[:, :, None, None]
    if params["invariance"]:
        with torch.inference_mode():
            iota = invariance_factor(encoder.embed_features(a1), encoder.embed_features(a2))  # [B]
        scale = scale * iota[:, None, None, None]
    return (scale * a1 * g1.clamp(min=0)).sum(1), (scale * a2 * g2.clamp(min=0)).sum(1)


for _reduction in REDUCTIONS:
    register_method(
        f"interaction_cam_{_reduction}",
        pair_family="crop_aug", family="cam",
        defaults={"reduction": _reduction, "invariance": True},
        cost="2 forwards + 1 backward through the head (+ 2 head forwards for iota)",
        passes=lambda p, size: Passes(2),
    )(interaction_cam)
