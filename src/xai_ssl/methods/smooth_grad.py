"""SmoothGrad x input of the similarity (Sammani et al. §3.7; Smilkov et al., "SmoothGrad", 2017), plain and guided.

σ = noise_level / (max x1 − min x1), with the range of x1 taken in MODEL-INPUT space (the reference divides by
the range: σ ≈ 0.15 for [0, 1] inputs, ≈ 0.034 for ImageNet-normalised ones; §6.7). Our encoder normalises
internally, so the noise ε_t ~ N(0, σ²) is drawn in model-input space and added in pixel space as ε_t · std
per channel, which is the same input to the network. The same ε_t is added to both views.
"""

from __future__ import annotations

from typing import Any

import torch

from xai_ssl.methods.base import MethodContext, Passes, register_method, relu_if_guided
from xai_ssl.methods.input_x_gradient import input_gradients, times_input
from xai_ssl.models.encoder import Encoder


def image_seed(ctx: MethodContext, b: int, method: str) -> int:
    """The per-image seed ``ctx.seeds[b]``, or a clear error when the caller gave none."""
    if b >= len(ctx.seeds):
        raise ValueError(f"method {method!r} is stochastic: MethodContext.seeds needs one seed per image (got {len(ctx.seeds)})")
    return int(ctx.seeds[b])


def noise_sigma(encoder: Encoder, x: torch.Tensor, noise_level: float) -> torch.Tensor:
    """σ_b = noise_level / (max − min of x_b in model-input space), [B] for x [B, 3, H, W] (range 0 -> noise_level)."""
    xn = encoder.normalise(x).flatten(1)  # [B, 3*H*W]
    span = xn.amax(1) - xn.amin(1)  # [B]
    return noise_level / torch.where(span > 0, span, torch.ones_like(span))


def model_input_noise(encoder: Encoder, n: int, like: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """n draws of N(0, σ²) in model-input space as pixel-space noise [n, 3, H, W] (· std); drawn on the CPU, seeded."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    eps = torch.randn((n, *like.shape), generator=g, dtype=like.dtype).to(like.device) * sigma  # [n, 3, H, W]
    return eps * encoder.input_std.to(like.device, like.dtype)


def smooth_gradients(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, noise: torch.Tensor, guided: bool, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """mean_t ∂cos(f(x1+ε_t), f(x2+ε_t))/∂(x_k+ε_t) for one pair x [3, H, W] and noise [T, 3, H, W]; both [3, H, W]."""
    sum1 = torch.zeros_like(x1)
    sum2 = torch.zeros_like(x2)
    for s in range(0, noise.shape[0], batch_size):
        eps = noise[s : s + batch_size]  # [t, 3, H, W]
        g1, g2 = input_gradients(encoder, x1[None] + eps, x2[None] + eps, guided=guided)  # samples are independent
        sum1 += g1.sum(0)
        sum2 += g2.sum(0)
    return sum1 / noise.shape[0], sum2 / noise.shape[0]


def _check(params: dict[str, Any], size: int) -> dict[str, Any]:
    """Validate n_samples >= 1 and noise_level >= 0."""
    out = dict(params)
    if int(out["n_samples"]) < 1:
        raise ValueError(f"smooth_grad: n_samples must be >= 1, got {out['n_samples']!r}")
    if float(out["noise_level"]) < 0:
        raise ValueError(f"smooth_grad: noise_level must be >= 0, got {out['noise_level']!r}")
    return out


_COST = "2*n_samples forwards + n_samples backwards (n_samples = 50), batched ctx.batch_size samples at a time"


def _passes(params: dict[str, Any], size: int) -> Passes:
    """Both views of every noisy sample go forward and backward."""
    n = 2 * int(params["n_samples"])
    return Passes(n, n)


@register_method(
    "smooth_grad_g", pair_family="interpolation", family="gradient", defaults={"guided": True, "n_samples": 50, "noise_level": 0.15}, cost=_COST + " (guided ReLUs)",
    scale=_check, applies=relu_if_guided, passes=_passes,
)
@register_method(
    "smooth_grad", pair_family="interpolation", family="gradient", defaults={"guided": False, "n_samples": 50, "noise_level": 0.15}, cost=_COST,
    scale=_check, applies=relu_if_guided, passes=_passes,
)
def smooth_grad(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, torch.Tensor]:
    """S_k = max_c |x_k ⊙ mean_t g_k^t| with the clean x_k in model-input space; maps [B, H, W]; noise seeded by ctx.seeds[b]."""
    n, guided = int(params["n_samples"]), bool(params["guided"])
    sigma = noise_sigma(encoder, x1, float(params["noise_level"]))  # [B]
    out1, out2 = [], []
    for b in range(x1.shape[0]):
        noise = model_input_noise(encoder, n, x1[b], float(sigma[b]), image_seed(ctx, b, "smooth_grad"))
        g1, g2 = smooth_gradients(encoder, x1[b], x2[b], noise, guided, max(1, ctx.batch_size))
        out1.append(times_input(encoder, x1[b : b + 1], g1[None])[0])
        out2.append(times_input(encoder, x2[b : b + 1], g2[None])[0])
    return torch.stack(out1), torch.stack(out2)
