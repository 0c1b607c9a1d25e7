"""Pairwise occlusion (Sammani et al. §3.3): random erasings of both views, softmax-weighted similarity drops.

The rectangles follow the sampling of torchvision's ``RandomErasing(p=1, scale, ratio, value=0)``
(area fraction ~ U[scale], aspect ~ log-U[ratio], up to 10 tries to fit, uniform position; no erasing
when no try fits), re-implemented here, vectorised over the N samples, with one seeded generator per
image (ctx.seeds[b]): all tries of x1's N rectangles are drawn first, then x2's. The erase value is 0
in model-input space (``encoder.baseline_pixel``).

Deviation (spec §6.13): the reference credits the pixels whose channel sum is exactly 0 after erasing,
which also catches pixels that were already at the model-input zero. Our default credits the rectangle
itself (``erased_pixels: rectangle``); ``erased_pixels: zero_sum`` reproduces the reference quirk.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from xai_ssl.engine import cosine
from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.models.encoder import Encoder

N_TRIES = 10  # torchvision RandomErasing.get_params


def erase_rectangles(
    n: int, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float], g: torch.Generator
) -> torch.Tensor:
    """N RandomErasing rectangles as int64 [N, 4] = (top, left, h, w); h = w = 0 where no try fits."""
    area = height * width
    target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(n, N_TRIES, generator=g, dtype=torch.float64))
    log_r = (math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * torch.rand(n, N_TRIES, generator=g, dtype=torch.float64))
    aspect = torch.exp(log_r)  # [N, T]
    h = torch.round(torch.sqrt(target * aspect)).long()  # [N, T]
    w = torch.round(torch.sqrt(target / aspect)).long()
    u_top = torch.rand(n, N_TRIES, generator=g, dtype=torch.float64)
    u_left = torch.rand(n, N_TRIES, generator=g, dtype=torch.float64)
    top = torch.floor(u_top * (height - h + 1)).long()
    left = torch.floor(u_left * (width - w + 1)).long()
    valid = (h < height) & (w < width) & (h > 0) & (w > 0)  # [N, T]
    first = valid.long().argmax(dim=1, keepdim=True)  # index of the first fitting try
    rect = torch.stack([t.gather(1, first)[:, 0] for t in (top, left, h, w)], dim=1)  # [N, 4]
    return torch.where(valid.any(dim=1, keepdim=True), rect, torch.zeros_like(rect))


def rectangle_masks(rects: torch.Tensor, height: int, width: int, device: torch.device) -> torch.Tensor:
    """Boolean masks [N, 1, H, W], True inside each (top, left, h, w) rectangle."""
    rects = rects.to(device)
    rows, cols = torch.arange(height, device=device), torch.arange(width, device=device)
    in_r = (rows[None] >= rects[:, :1]) & (rows[None] < rects[:, :1] + rects[:, 2:3])  # [N, H]
    in_c = (cols[None] >= rects[:, 1:2]) & (cols[None] < rects[:, 1:2] + rects[:, 3:4])  # [N, W]
    return (in_r[:, :, None] & in_c[:, None, :])[:, None]


def pairwise_maps(
    encoder: Encoder,
    x1: torch.Tensor,
    x2: torch.Tensor,
    base: torch.Tensor,
    m1: torch.Tensor,
    m2: torch.Tensor,
    erased_pixels: str,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps [H, W] of one pair x_k [3, H, W] from erase masks m_k [N, 1, H, W] (base = cos(f(x1), f(x2)))."""
    fill = encoder.baseline_pixel[0]  # [3, 1, 1]
    e1 = torch.where(m1, fill, x1)  # [N, 3, H, W]
    e2 = torch.where(m2, fill, x2)
    per_forward = max(1, batch_size // 2)
    drops, n1, n2 = [], [], []
    for i in range(0, e1.shape[0], per_forward):
        b = e1[i : i + per_forward].shape[0]
        z = encoder(torch.cat([e1[i : i + per_forward], e2[i : i + per_forward]]))  # [2b, D]
        drops.append(base - cosine(z[:b], z[b:]))
        n1.append(z[:b].norm(dim=1))
        n2.append(z[b:].norm(dim=1))
    weights = torch.softmax(torch.cat(drops), dim=0)  # [N], temperature 1
    to_first = torch.cat(n1) < torch.cat(n2)  # [N]: credit the view whose embedding norm is lower
    if erased_pixels == "zero_sum":  # reference quirk: every pixel at the model-input zero counts
        m1 = (encoder.normalise(e1).sum(dim=1, keepdim=True) == 0)
        m2 = (encoder.normalise(e2).sum(dim=1, keepdim=True) == 0)
    w1 = torch.where(to_first, weights, torch.zeros_like(weights)).view(-1, 1, 1, 1)
    w2 = torch.where(to_first, torch.zeros_like(weights), weights).view(-1, 1, 1, 1)
    a1 = (w1 * m1.to(weights.dtype)).sum(dim=(0, 1))  # [H, W]
    a2 = (w2 * m2.to(weights.dtype)).sum(dim=(0, 1))
    return a1 / (a1.max() + 1e-9), a2 / (a2.max() + 1e-9)


@register_method(
    "pairwise_occlusion", pair_family="crop_aug", family="occlusion", defaults={"n_erases": 100, "scale": [0.1, 0.3], "ratio": [1.0, 1.5], "erased_pixels": "rectangle"},
    cost="2*n_erases + 2 forwards per pair, no backward", passes=lambda p, size: Passes(2 * int(p["n_erases"]) + 2),
)
def pairwise_occlusion(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, torch.Tensor]:
    """A_k = sum_n softmax(b0 - cos(f(e1_n), f(e2_n)))_n * [erased in e_k,n] over samples credited to k; / max."""
    n = int(params["n_erases"])
    scale = (float(params["scale"][0]), float(params["scale"][1]))
    ratio = (float(params["ratio"][0]), float(params["ratio"][1]))
    erased = str(params["erased_pixels"])
    if erased not in ("rectangle", "zero_sum"):
        raise ValueError(f"pairwise_occlusion: erased_pixels must be 'rectangle' or 'zero_sum', got {erased!r}")
    if len(ctx.seeds) != x1.shape[0]:
        raise ValueError(f"pairwise_occlusion: needs one seed per image (got {len(ctx.seeds)} for {x1.shape[0]})")
    _, _, height, width = x1.shape
    out1, out2 = [], []
    with torch.inference_mode():
        base = cosine(encoder(x1), encoder(x2))  # [B]
        for b in range(x1.shape[0]):
            g = torch.Generator().manual_seed(int(ctx.seeds[b]))
            r1 = erase_rectangles(n, height, width, scale, ratio, g)  # [N, 4]
            r2 = erase_rectangles(n, height, width, scale, ratio, g)
            m1 = rectangle_masks(r1, height, width, x1.device)  # [N, 1, H, W]
            m2 = rectangle_masks(r2, height, width, x1.device)
            a1, a2 = pairwise_maps(encoder, x1[b], x2[b], base[b], m1, m2, erased, ctx.batch_size)
            out1.append(a1)
            out2.append(a2)
    return torch.stack(out1), torch.stack(out2)
