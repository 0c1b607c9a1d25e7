"""RELAX (Wickstrøm et al., IJCV 2023, arXiv 2112.10161; survey spec §3): similarity of masked copies of x1.

The explained pair is crop_aug, but RELAX is a single-image method: map1 explains x1 (n_maps = 1).
s_n = cos(f(x1 ⊙ m_n), f(x1)) ("target: self", the spec and RELAX); "target: pair" compares with
f(x2) instead. Masked pixels take the colour that is zero in model-input space (x ⊙ m in normalised
space, as RELAX). Importance R = Σ_n m_n s_n / Σ_n m_n; uncertainty = the frequency-weighted variance
U / (W - 1) with U = Σ_n m_n (s_n - R)², W = Σ_n m_n (the project's Welford estimator, here in closed
form from the sums of m·s, m·s² and m accumulated over batches of masks). ``output`` picks the map:
importance, uncertainty, or u_relax = R ⊙ 1[U ≤ median U].
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from xai_ssl.engine import cosine
from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.models.encoder import Encoder

OUTPUTS = ("importance", "uncertainty", "u_relax")
TARGETS = ("self", "pair")
W_EPS = 1e-10  # initial weight of the project's running estimator


def _scale(params: dict[str, Any], size: int) -> dict[str, Any]:
    """Shift padding ⌊G/2⌋ = 3 px at 224 px, scaled to the image size when left at null; choices checked."""
    out = dict(params)
    if out["shift"] is None:
        out["shift"] = int(round(3 * size / 224))
    if out["output"] not in OUTPUTS or out["target"] not in TARGETS:
        raise ValueError(f"relax: output must be one of {OUTPUTS} and target one of {TARGETS}")
    if not 0 <= int(out["shift"]) < size:
        raise ValueError(f"relax: shift {out['shift']} must be in [0, {size})")
    return out




def draw_grids(n: int, cells: int, p: float, shift: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep-grids [n, 1, G, G] (1 = keep, P = p) and integer shifts [n, 2] in {0..2*shift}, drawn on the CPU."""
    grids = (torch.rand(n, 1, cells, cells, generator=gen) < p).float()
    shifts = torch.randint(0, 2 * shift + 1, (n, 2), generator=gen)
    return grids, shifts


def build_masks(grids: torch.Tensor, shifts: torch.Tensor, size: int, shift: int) -> torch.Tensor:
    """Soft masks [n, 1, size, size]: bilinear up-sampling to the image size, reflect padding, shifted crop."""
    up = F.interpolate(grids, size=(size, size), mode="bilinear", align_corners=False)  # [n, 1, S, S]
    if shift > 0:
        up = F.pad(up, (shift, shift, shift, shift), mode="reflect")  # [n, 1, S+2s, S+2s]
    rows = [up[i, :, int(sy) : int(sy) + size, int(sx) : int(sx) + size] for i, (sx, sy) in enumerate(shifts.tolist())]
    return torch.stack(rows)


def relax_sums(
    encoder: Encoder, x: torch.Tensor, z_ref: torch.Tensor, grids: torch.Tensor, shifts: torch.Tensor, shift: int, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Σ m, Σ m·s, Σ m·s² over all masks (float64 [S, S]); x [3, S, S], z_ref [D]."""
    size = x.shape[-1]
    fill = encoder.baseline_pixel[0].to(x.dtype)  # [3, 1, 1]
    acc = torch.zeros(3, size, size, dtype=torch.float64, device=x.device)
    for i in range(0, grids.shape[0], batch_size):
        m = build_masks(grids[i : i + batch_size].to(x.device, x.dtype), shifts[i : i + batch_size], size, shift)  # [b, 1, S, S]
        s = cosine(encoder(fill + m * (x - fill)), z_ref[None]).double()  # [b]
        m64 = m[:, 0].double()  # [b, S, S]
        acc[0] += m64.sum(0)
        acc[1] += torch.einsum("b,bhw->hw", s, m64)
        acc[2] += torch.einsum("b,bhw->hw", s * s, m64)
    return acc[0], acc[1], acc[2]


def relax_maps(w: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor) -> dict[str, torch.Tensor]:
    """Importance, uncertainty and U-RELAX from the sums (as the project's running estimator, W from 1e-10)."""
    w = w + W_EPS
    importance = s1 / w
    u = (s2 - s1 * importance).clamp(min=0)  # Σ m (s - R)²
    uncertainty = u / (w - 1)
    return {
        "importance": importance,
        "uncertainty": uncertainty,
        "u_relax": importance * (uncertainty <= uncertainty.flatten().median()).to(importance.dtype),
    }


@register_method(
    "relax", pair_family="crop_aug", family="perturbation", defaults={"num_cells": 7, "p": 0.5, "n_masks": 3000, "shift": None, "target": "self", "output": "importance"},
    n_maps=1, cost="n_masks + 1 forwards per image, no backward", scale=_scale, passes=lambda p, size: Passes(int(p["n_masks"]) + 1),
)
def relax(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, None]:
    """RELAX map of x1 [B, H, W] (importance / uncertainty / u_relax); masks seeded per image."""
    cells, p, n, shift = int(params["num_cells"]), float(params["p"]), int(params["n_masks"]), int(params["shift"])
    out = []
    with torch.inference_mode():
        z_ref = encoder(x1 if params["target"] == "self" else x2)  # [B, D]
        for b in range(x1.shape[0]):
            grids, shifts = draw_grids(n, cells, p, shift, torch.Generator().manual_seed(ctx.seeds[b]))
            sums = relax_sums(encoder, x1[b], z_ref[b], grids, shifts, shift, ctx.batch_size)
            out.append(relax_maps(*sums)[params["output"]].to(x1.dtype))
    return torch.stack(out), None
