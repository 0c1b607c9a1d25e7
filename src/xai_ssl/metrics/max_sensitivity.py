"""Max-sensitivity MS — Sammani et al. §4.3, after Yeh et al., "On the (In)fidelity and Sensitivity of
Explanations", NeurIPS 2019.

For each image, N noise tensors δ_n ~ U[-r, r]^{3×H×W} (L∞ ball of radius r in MODEL-INPUT space) are
drawn from a generator seeded by ``derive_seed(seed, image_id, "max_sensitivity")``. The same δ_n is
added to both views; our encoder normalises internally, so in pixel space that is δ_n · std per channel
(not clipped). The explained method is re-run on every noisy pair with the same parameters, and

    ρ_k(n) = ||e_k - e_k^{δ_n}||_F / ||e_k||_F        (raw maps at their native resolution)
    MS = (max_n ρ_1(n) + max_n ρ_2(n)) / 2            (single-map methods: max_n ρ_1(n))

Per image the columns MS, MS_1 = max_n ρ_1 and MS_2 = max_n ρ_2 are returned; the tables report the
mean (MS) and the median (MS_median, computed at aggregation) because the ratio has heavy tails.

NA policy: MS is NA for the methods (registry or config names) listed in ``methods_without_ms`` (default: the paper's NA
cells — the three occlusion methods and pixel invariance, too expensive), and for an image whose
clean map has ||e||_F = 0 (the ratio is undefined; Captum divides by 1 instead). A stochastic method
(e.g. Smooth-Grad) gets a fresh seed per noise sample, as the reference code draws fresh internal
noise on every call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xai_ssl.engine import MethodContext, explain_batches, image_seed
from xai_ssl.metrics.base import MetricResult, register_metric, require_method
from xai_ssl.models.encoder import Encoder
from xai_ssl.seeding import generator

PAPER_WITHOUT_MS = ["conditional_occlusion", "context_agnostic_occlusion", "pairwise_occlusion", "pixel_invariance"]


def _check(params: dict[str, Any], size: int) -> dict[str, Any]:
    out = dict(params)
    if not float(out["radius"]) > 0:
        raise ValueError(f"max_sensitivity: radius must be > 0, got {out['radius']!r}")
    if int(out["n_samples"]) < 1:
        raise ValueError(f"max_sensitivity: n_samples must be >= 1, got {out['n_samples']!r}")
    out["radius"], out["n_samples"] = float(out["radius"]), int(out["n_samples"])
    out["methods_without_ms"] = list(out["methods_without_ms"] or [])
    return out




def draw_noise(seed: int, image_id: str, n: int, shape: tuple[int, ...], radius: float) -> torch.Tensor:
    """δ ~ U[-radius, radius] in model-input space, [n, *shape] float32 on the CPU (float64 draw, as numpy's uniform)."""
    g = generator(seed, image_id, "max_sensitivity")
    u = torch.rand((n, *shape), generator=g, dtype=torch.float64)
    return ((2 * u - 1) * radius).float()


def pixel_noise(encoder: Encoder, delta: torch.Tensor) -> torch.Tensor:
    """Model-input-space noise [n, 3, H, W] as pixel-space noise: δ · std per channel (std = 1 without normalisation)."""
    return delta * encoder.input_std.to(delta.device, delta.dtype)


def relative_change(e: torch.Tensor, e_noisy: torch.Tensor) -> np.ndarray:
    """ρ(n) = ||e - e_n||_F / ||e||_F for a clean map e [h, w] and noisy maps [n, h, w] (float64; NA if ||e|| = 0)."""
    e, e_noisy = e.double(), e_noisy.double()
    norm = torch.linalg.norm(e)
    diff = torch.linalg.norm((e_noisy - e[None]).flatten(1), dim=1)
    if float(norm) == 0.0:
        return np.full(e_noisy.shape[0], np.nan)
    return (diff / norm).cpu().numpy()


def noisy_maps(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, delta: torch.Tensor, ctx: Any, b: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The method's maps on (x1 + δ_n, x2 + δ_n) for every n; x [3, H, W], δ [N, 3, H, W] in pixel space."""
    n = delta.shape[0]
    key = ctx.method_key or ctx.method.name
    seeds = [image_seed(ctx.seed, ctx.image_ids[b], key, "max_sensitivity", i) for i in range(n)]
    return explain_batches(
        encoder, ctx.method, x1[None] + delta, x2[None] + delta, ctx.method_params, seeds, [ctx.image_ids[b]] * n, ctx.device, ctx.batch_size,
        corpus=ctx.corpus, to_cpu=False,
    )


@register_metric(
    "max_sensitivity",
    defaults={"radius": 0.2, "n_samples": 10, "methods_without_ms": list(PAPER_WITHOUT_MS)},
    directions={"MS": "↓", "MS_median": "↓"},
    scale=_check,
)
def max_sensitivity(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, map1: torch.Tensor, map2: torch.Tensor | None, params: dict[str, Any], ctx: MethodContext
) -> MetricResult:
    """Per-image MS (mean over the maps of max_n ρ_k), MS_1, MS_2; NA for excluded methods."""
    mctx = require_method(ctx, "max_sensitivity")
    n = x1.shape[0]
    cols = {"MS": np.full(n, np.nan), "MS_1": np.full(n, np.nan)}
    if map2 is not None:
        cols["MS_2"] = np.full(n, np.nan)
    if {mctx.method.name, mctx.method_key} & set(params["methods_without_ms"]):
        return cols, {}
    radius, n_samples = float(params["radius"]), int(params["n_samples"])
    for b in range(n):
        delta = draw_noise(mctx.seed, mctx.image_ids[b], n_samples, tuple(x1.shape[1:]), radius)
        delta = pixel_noise(encoder, delta.to(x1.device)).to(x1.dtype)
        e1, e2 = noisy_maps(encoder, x1[b], x2[b], delta, mctx, b)
        cols["MS_1"][b] = relative_change(map1[b], e1).max()
        maxima = [cols["MS_1"][b]]
        if map2 is not None:
            if e2 is None:
                raise ValueError(f"max_sensitivity: method {mctx.method.name!r} returned no second map on the noisy pair")
            cols["MS_2"][b] = relative_change(map2[b], e2).max()
            maxima.append(cols["MS_2"][b])
        cols["MS"][b] = float(np.mean(maxima))  # NA if either map had ||e|| = 0
    return cols, {}
