"""Grad-CAM for a similarity score (Sammani et al. §3.4)."""

from __future__ import annotations

from typing import Any

import torch

from xai_ssl.engine import cosine
from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.models.encoder import Encoder


def feature_gradients(encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Feature maps A_k [B, C, h, w] and gradients dcos(z1, z2)/dA_k of both views (one backward)."""
    with torch.enable_grad():
        a1 = encoder.features(x1).detach().requires_grad_(True)
        a2 = encoder.features(x2).detach().requires_grad_(True)
        score = cosine(encoder.embed_features(a1), encoder.embed_features(a2))  # [B]; pairs are independent in eval mode
        g1, g2 = torch.autograd.grad(score.sum(), [a1, a2])
    return a1.detach(), a2.detach(), g1, g2


@register_method("gradcam", pair_family="crop_aug", family="cam", defaults={}, cost="2 forwards + 1 backward through the head",
                 passes=lambda p, size: Passes(2))
def gradcam(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, torch.Tensor]:
    """CAM_k = sum_c A_k * max(dcos/dA_k, 0): raw maps [B, h, w] at feature resolution, not normalised."""
    a1, a2, g1, g2 = feature_gradients(encoder, x1, x2)
    return (a1 * g1.clamp(min=0)).sum(1), (a2 * g2.clamp(min=0)).sum(1)
