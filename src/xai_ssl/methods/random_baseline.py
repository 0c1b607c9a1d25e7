"""Random baseline: seeded uniform noise, one map per view — the score of a map that explains nothing.

Random attributions are the chance reference of explanation benchmarks (OpenXAI's ``RandomBaseline``
control, Agarwal et al., NeurIPS 2022 Datasets and Benchmarks; SHAP's ``explainers.other.Random``, "only
for benchmark comparisons"); the tables test every method against this one (``xai_ssl.significance``).

Seeding: view v of image b draws U[0, 1) [H, W] (float32, on the CPU, so the bytes do not depend on the
device) from ``generator(ctx.seeds[b], "random_baseline", v)``. ``ctx.seeds[b]`` is the per-image seed of
the attribution step (config seed, image id, method key), so the noise is reproducible per image id and
differs between images; the global RNG is never used. Max-sensitivity re-runs methods with fresh seeds per
noise sample, so its MS here is the relative change between two independent noise maps (~0.71 =
sqrt(1/6) / sqrt(1/3)); model randomisation re-runs with the attribution seeds, so RAND = 1 (the map
ignores the model: the value of a map that fails the sanity check).

``random_baseline_interpolation`` is the same noise on the interpolation pairs (x and its photometric view): the
chance reference of the gradient methods, which are scored on those pairs (``significance.RANDOM_BASELINES``).
"""

from __future__ import annotations

from typing import Any

import torch

from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.models.encoder import Encoder
from xai_ssl.seeding import generator


def noise_map(seed: int, view: int, shape: tuple[int, int]) -> torch.Tensor:
    """U[0, 1) map [H, W] (float32, CPU) of one view from the image's seed."""
    return torch.rand(shape, generator=generator(int(seed), "random_baseline", view), dtype=torch.float32)


@register_method(
    "random_baseline_interpolation", pair_family="interpolation", defaults={}, cost="0 forwards", baseline=True, passes=lambda p, size: Passes(0)
)
@register_method("random_baseline", pair_family="crop_aug", defaults={}, cost="0 forwards", baseline=True, passes=lambda p, size: Passes(0))
def random_baseline(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded U[0, 1) maps [B, H, W] at image resolution for each view; the encoder and pixels are not used."""
    if len(ctx.seeds) != x1.shape[0]:
        raise ValueError(f"random_baseline: needs one seed per image (got {len(ctx.seeds)} for {x1.shape[0]})")
    shape = (int(x1.shape[-2]), int(x1.shape[-1]))
    maps = [torch.stack([noise_map(s, view, shape) for s in ctx.seeds]).to(x1.device) for view in (1, 2)]  # 2 x [B, H, W]
    return maps[0], maps[1]
