"""Input x gradient of the similarity (Sammani et al. §3.6), in model-input space, and its guided "(G)" variant."""

from __future__ import annotations

from typing import Any

import torch

from xai_ssl.engine import cosine
from xai_ssl.methods.base import MethodContext, Passes, register_method, relu_if_guided
from xai_ssl.methods.guided import guided_relu
from xai_ssl.models.encoder import Encoder


def input_gradients(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, guided: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients dcos(f(x1), f(x2))/dx_k in pixel space, both [B, 3, H, W] (one backward; guided ReLUs if asked)."""
    with torch.enable_grad(), guided_relu(encoder, enabled=guided):
        x1 = x1.detach().requires_grad_(True)
        x2 = x2.detach().requires_grad_(True)
        score = cosine(encoder(x1), encoder(x2))  # [B]
        return torch.autograd.grad(score.sum(), [x1, x2])


def times_input(encoder: Encoder, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """max_c |x ⊙ g| in model-input space: x_n ⊙ dS/dx_n = (x - baseline) ⊙ dS/dx; [B, 3, H, W] -> [B, H, W]."""
    return ((x - encoder.baseline_pixel) * grad).abs().amax(dim=1)


@register_method(
    "input_x_gradient_g", pair_family="interpolation", family="gradient", defaults={"guided": True}, cost="2 forwards + 1 backward (guided ReLUs)",
    applies=relu_if_guided, passes=lambda p, size: Passes(2, 2),
)
@register_method(
    "input_x_gradient", pair_family="interpolation", family="gradient", defaults={"guided": False}, cost="2 forwards + 1 backward", applies=relu_if_guided,
    passes=lambda p, size: Passes(2, 2),
)
def input_x_gradient(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, torch.Tensor]:
    """S_k = max_c |x_k ⊙ ∂cos/∂x_k| (both maps [B, H, W] from one backward); guided backprop if params['guided']."""
    g1, g2 = input_gradients(encoder, x1, x2, guided=bool(params.get("guided", False)))
    return times_input(encoder, x1, g1), times_input(encoder, x2, g2)
