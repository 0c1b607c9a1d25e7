"""Averaged Transforms (Sammani et al. §3.8): gradients averaged along the path from x to a photometric view t(x).

The method explains the "interpolation" pair (m_0, m_9) = (x, 0.1·x + 0.9·x_t) (pairs.py); x_t is recovered
as (m_9 − 0.1·m_0) / 0.9 and the path is m_j = λ_j·x + (1 − λ_j)·x_t, λ_j = 1 − 0.1·j, j = 0..9 (λ = 0 is
not on the path; m_0 and m_9 are used exactly as given). Interpolation commutes with the encoder's affine
normalisation, so mixing in pixel space equals mixing in model-input space.

(N): independent N(0, σ²) noise on m_1..m_8 in model-input space, σ = noise_level / (max − min of m_0 in
model-input space), seeded by ctx.seeds[b] (see smooth_grad.py). (G): guided ReLUs (guided.py).
Note: max-sensitivity re-runs the method with fresh per-sample seeds, so the (N) noise is redrawn there,
whereas the reference keeps the noise frozen (§4.3).
"""

from __future__ import annotations

from typing import Any

import torch

from xai_ssl.engine import cosine
from xai_ssl.methods.base import MethodContext, Passes, register_method, relu_if_guided
from xai_ssl.methods.guided import guided_relu
from xai_ssl.methods.input_x_gradient import times_input
from xai_ssl.methods.smooth_grad import image_seed, model_input_noise, noise_sigma
from xai_ssl.models.encoder import Encoder

N_STEPS = 9  # m_1 .. m_9, each paired with m_0


def interpolants(m0: torch.Tensor, m9: torch.Tensor) -> torch.Tensor:
    """The path m_1..m_9 [9, 3, H, W] from the pair (m_0, m_9) [3, H, W]; m_9 is returned exactly as given."""
    xt = (m9 - 0.1 * m0) / 0.9  # [3, H, W]
    lam = 1 - 0.1 * torch.arange(1, N_STEPS, dtype=m0.dtype, device=m0.device)  # [8]: 0.9 .. 0.2
    mid = lam.view(-1, 1, 1, 1) * m0[None] + (1 - lam).view(-1, 1, 1, 1) * xt[None]  # [8, 3, H, W]
    return torch.cat([mid, m9[None]])


def path_gradients(
    encoder: Encoder, m0: torch.Tensor, path: torch.Tensor, guided: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean_j ∂s_j/∂m_0, mean_j ∂s_j/∂m_j) with s_j = cos(f(m_0), f(m_j)); m0 [n, 3, H, W], path [n, J, 3, H, W].

    All n·J similarities go through one backward pass. Plain gradients are additive, so m_0 is embedded once
    per image and its gradient is the sum over j; guided backprop clamps each incoming gradient (not additive),
    so there m_0 is repeated once per j and every a_j has its own graph.
    """
    n, j = path.shape[:2]
    with torch.enable_grad(), guided_relu(encoder, enabled=guided):
        a = (m0.repeat_interleave(j, dim=0) if guided else m0).detach().requires_grad_(True)  # [n*J or n, 3, H, W]
        p = path.detach().requires_grad_(True)
        z0 = encoder(a)  # [n*J or n, D]
        zj = encoder(p.flatten(0, 1))  # [n*J, D]
        s = cosine(z0 if guided else z0.repeat_interleave(j, dim=0), zj)  # [n*J]
        ga, gp = torch.autograd.grad(s.sum(), [a, p])
    ga = ga.view(n, j, *ga.shape[1:]).mean(1) if guided else ga / j
    return ga, gp.mean(1)


def _check(params: dict[str, Any], size: int) -> dict[str, Any]:
    """Validate noise_level >= 0."""
    if float(params["noise_level"]) < 0:
        raise ValueError(f"avg_transforms: noise_level must be >= 0, got {params['noise_level']!r}")
    return dict(params)


_COST = "10 forwards (m_0 once, m_1..m_9) + one backward through them, batched over images"
_COST_G = "18 forwards (m_0 once per j, m_1..m_9) + one backward through them (guided ReLUs), batched over images"
def _passes(params: dict[str, Any], size: int) -> Passes:
    """m_1..m_9 and m_0 (once, or once per step when guided) go forward and backward."""
    n = 2 * N_STEPS if params["guided"] else N_STEPS + 1
    return Passes(n, n)


_VARIANTS = {
    "avg_transforms": (False, False),
    "avg_transforms_g": (True, False),
    "avg_transforms_n": (False, True),
    "avg_transforms_gn": (True, True),
}


def avg_transforms(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, torch.Tensor]:
    """S_1 = max_c |m_0 ⊙ mean_j a_j|, S_2 = max_c |m_9 ⊙ mean_j b_j| for pairs (m_0, m_9) [B, 3, H, W]; maps [B, H, W]."""
    guided, noisy = bool(params["guided"]), bool(params["add_noise"])
    sigma = noise_sigma(encoder, x1, float(params["noise_level"]))  # [B]
    paths = []
    for b in range(x1.shape[0]):
        path = interpolants(x1[b], x2[b])  # [9, 3, H, W]
        if noisy:
            noise = model_input_noise(encoder, N_STEPS - 1, x1[b], float(sigma[b]), image_seed(ctx, b, "avg_transforms"))
            path = torch.cat([path[:-1] + noise, path[-1:]])  # m_1..m_8 only
        paths.append(path)
    path_all = torch.stack(paths)  # [B, 9, 3, H, W]
    chunk = max(1, ctx.batch_size // (2 * N_STEPS if guided else N_STEPS + 1))  # images per forward/backward
    ga, gb = [], []
    for s in range(0, x1.shape[0], chunk):
        a, p = path_gradients(encoder, x1[s : s + chunk], path_all[s : s + chunk], guided)
        ga.append(a)
        gb.append(p)
    g1, g2 = torch.cat(ga), torch.cat(gb)
    return times_input(encoder, x1, g1), times_input(encoder, x2, g2)


for _name, (_guided, _noise) in _VARIANTS.items():
    register_method(
        _name,
        pair_family="interpolation", family="gradient",
        defaults={"guided": _guided, "add_noise": _noise, "noise_level": 0.15},
        cost=_COST_G if _guided else _COST,
        scale=_check, applies=relu_if_guided,
        passes=_passes,
    )(avg_transforms)
