"""Feature visualisation (Sammani et al. §3.11): octave gradient ascent ("deep dream") guided by the other view.

Not a map method: registered with ``kind="image"`` (the workflow writes images, no scores). For a pair
(x1, x2) it starts from noise 0.01*U[0, 1) (seeded per image by ctx.seeds[b]; x1 itself is not used,
as in the reference) and makes the truncated trunk phi respond like it does to the condition x2:

* phi = the first ``up_until`` children of the encoder's trunk, applied after its input normalisation.
  Default (null): 5 for torchvision-style trunks (conv1, bn1, relu, maxpool, layer1, ...: up to layer1,
  as the reference for Barlow Twins / SimSiam) and 4 for 5-child trunks (stem + 4 stages, i.e. SimCLRv2
  and small_resnet: stem + stages 1-3, as the reference for SimCLRv2). For a Vision Transformer
  ``up_until`` counts blocks: phi = patch embedding, position embedding and the first ``up_until`` blocks,
  as the patch-token grid (default: a quarter of the blocks, 3 of ViT-S's 12); octave sides that are not a
  multiple of the patch are padded (timm's dynamic padding).
* objective ``score``: cos(vec phi(v), vec phi(c)); ``feature``: <phi(v), phi(c)> / |phi(c)| (the
  gradient of the reference's ema=0 feature maximisation); minus l2_weight*|v|_2 when ``reg_l2``
  (null = on for models without input normalisation, i.e. SimCLRv2, as the reference) and minus
  tv_weight * squared-L2 total variation.
* octaves: the noise and x2 are zoomed down by ``octave_scale`` (bilinear, corners aligned = scipy
  zoom order 1) up to ``octaves`` times, stopping before an octave side < ``min_octave_size``; from
  the smallest octave up, ``iterations`` ascent steps on base + detail, detail carried up bilinearly.
* step: gradient blurred with a Gaussian (sigma_i = 2 (i + 1) / iterations + 0.5, truncate 4, symmetric
  borders = scipy gaussian_filter1d), v += lr / mean|g| * g, v clipped to [0, 1] in pixel space (the
  reference clips in model-input space, spec §6.11; TV and L2 here act on pixel-space images).

Returns (dreamed image, detail = dreamed - initial noise), both [B, 3, H, W].
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.models.encoder import Encoder

OBJECTIVES = ("score", "feature")


def default_up_until(encoder: Encoder) -> int:
    """Spec default cut: 5 for torchvision trunks (>= 8 children), else 4 (stem + 3 stages); the encoder's own
    default when it defines one (ViTs: a quarter of the blocks; timm CNNs: the rule above on their stages)."""
    own = getattr(encoder, "default_up_until", None)
    if callable(own):
        return int(own())
    n = len(list(encoder.trunk.children()))
    return 5 if n >= 8 else min(4, n)


def truncated_trunk(encoder: Encoder, up_until: int) -> nn.Module:
    """The first ``up_until`` children of the encoder's trunk (an encoder may define its own cut: ViTs count blocks)."""
    own = getattr(encoder, "truncated_trunk", None)
    if callable(own):
        return own(up_until)
    children = list(encoder.trunk.children())
    if not 1 <= up_until <= len(children):
        raise ValueError(f"feature_visualisation: up_until must be in 1..{len(children)} for this trunk, got {up_until}")
    return nn.Sequential(*children[:up_until])


def octave_sizes(size: int, octaves: int, scale: float, min_size: int) -> list[int]:
    """Octave sides, largest first: round(side / scale) repeatedly, at most ``octaves``, none < ``min_size``."""
    sizes = [size]
    while len(sizes) < octaves and round(sizes[-1] / scale) >= min_size:
        sizes.append(round(sizes[-1] / scale))
    return sizes


def dream_passes(params: dict[str, Any], size: int) -> Passes:
    """Passes of the truncated trunk as (octave side / size)² images: ``iterations`` forward+backward and one
    condition forward per octave (an upper bound: the truncated trunk is cheaper than a whole one)."""
    sides = octave_sizes(size, int(params["octaves"]), float(params["octave_scale"]), int(params["min_octave_size"]))
    area = sum((s / size) ** 2 for s in sides)
    return Passes(area * (int(params["iterations"]) + 1), area * int(params["iterations"]))


def resize(x: torch.Tensor, side: int) -> torch.Tensor:
    """Bilinear resize [B, C, H, W] -> [B, C, side, side] with corners aligned (scipy zoom, order 1)."""
    if x.shape[-1] == side and x.shape[-2] == side:
        return x
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=True)


def pyramid(x: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """Successive zooms of x [B, C, H, W] to each side in ``sizes`` (largest first)."""
    out = [x]
    for side in sizes[1:]:
        out.append(resize(out[-1], side))
    return out


def gaussian_blur_hw(x: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """1-D Gaussian blur along H then W of [B, C, H, W], symmetric ('reflect' in scipy) borders."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()  # [2r+1]
    for dim in (2, 3):
        n = x.shape[dim]
        idx = torch.arange(-radius, n + radius, device=x.device) % (2 * n)
        idx = torch.where(idx >= n, 2 * n - 1 - idx, idx)  # symmetric reflection, any radius
        windows = x.index_select(dim, idx).unfold(dim, 2 * radius + 1, 1)  # [..., n, ..., 2r+1]
        x = (windows * kernel).sum(-1)
    return x


def total_variation(v: torch.Tensor) -> torch.Tensor:
    """Squared-L2 total variation [B] of images [B, C, H, W]."""
    dh = (v[..., 1:, :] - v[..., :-1, :]).pow(2).sum(dim=(1, 2, 3))
    dw = (v[..., 1:] - v[..., :-1]).pow(2).sum(dim=(1, 2, 3))
    return dh + dw


def dream_objective(
    phi: nn.Module, encoder: Encoder, v: torch.Tensor, cond_feat: torch.Tensor, params: dict[str, Any]
) -> torch.Tensor:
    """Objective [B] of images v [B, 3, h, w] in [0, 1] given the condition's features [B, C', h', w']."""
    f = phi(encoder.normalise(v)).flatten(1)  # [B, C'h'w']
    c = cond_feat.flatten(1)
    if params["objective"] == "score":
        o = F.cosine_similarity(f, c, dim=1, eps=1e-8)
    else:
        o = (f * c).sum(1) / c.norm(dim=1).clamp(min=1e-12)
    if params["reg_l2"]:
        o = o - float(params["l2_weight"]) * v.flatten(1).norm(dim=1)
    return o - float(params["tv_weight"]) * total_variation(v)


def dream(
    phi: nn.Module, encoder: Encoder, v: torch.Tensor, cond_feat: torch.Tensor, params: dict[str, Any]
) -> torch.Tensor:
    """``iterations`` blurred, normalised gradient-ascent steps on v [B, 3, h, w]; returns the new v."""
    iterations, lr = int(params["iterations"]), float(params["lr"])
    for i in range(iterations):
        v = v.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(dream_objective(phi, encoder, v, cond_feat, params).sum(), [v])
        g = gaussian_blur_hw(g, 2.0 * (i + 1) / iterations + 0.5)
        step = lr / g.abs().mean(dim=(1, 2, 3), keepdim=True).clamp(min=1e-20)  # [B, 1, 1, 1]
        v = (v.detach() + step * g).clamp(0.0, 1.0)
    return v.detach()


def resolve_runtime(encoder: Encoder, params: dict[str, Any]) -> dict[str, Any]:
    """Fill the model-dependent nulls (up_until, reg_l2) and check the objective."""
    out = dict(params)
    if out["up_until"] is None:
        out["up_until"] = default_up_until(encoder)
    if out["reg_l2"] is None:
        out["reg_l2"] = not encoder.normalised
    if out["objective"] not in OBJECTIVES:
        raise ValueError(f"feature_visualisation: objective must be one of {OBJECTIVES}, got {out['objective']!r}")
    return out


def initial_images(shape: tuple[int, ...], seeds: list[int], scale: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Noise scale * U[0, 1) [B, 3, H, W], one seeded generator per image."""
    noise = [torch.rand(shape, generator=torch.Generator().manual_seed(int(s)), dtype=torch.float64) for s in seeds]
    return (scale * torch.stack(noise)).to(dtype=dtype, device=device)


@register_method(
    "feature_visualisation",
    pair_family="crop_aug", family="other",
    defaults={
        "up_until": None,
        "objective": "score",
        "reg_l2": None,
        "l2_weight": 1e-3,
        "tv_weight": 1e-3,
        "octaves": 10,
        "octave_scale": 1.4,
        "min_octave_size": 8,
        "iterations": 20,
        "lr": 0.01,
        "init_scale": 0.01,
    },
    n_maps=0,
    cost="octaves*iterations forward+backward passes of the truncated trunk + octaves condition forwards",
    kind="image",
    passes=dream_passes,
)
def feature_visualisation(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dreamed images and details [B, 3, H, W] toward the truncated-trunk features of x2."""
    if len(ctx.seeds) != x1.shape[0]:
        raise ValueError(f"feature_visualisation: needs one seed per image (got {len(ctx.seeds)} for {x1.shape[0]})")
    p = resolve_runtime(encoder, params)
    phi = truncated_trunk(encoder, int(p["up_until"]))
    sizes = octave_sizes(x1.shape[-1], int(p["octaves"]), float(p["octave_scale"]), int(p["min_octave_size"]))
    dreamed, details = [], []
    for start in range(0, x1.shape[0], max(1, ctx.batch_size)):
        cond = x2[start : start + ctx.batch_size]  # [b, 3, H, W]
        base = initial_images(tuple(cond.shape[1:]), ctx.seeds[start : start + ctx.batch_size], float(p["init_scale"]), cond.dtype, cond.device)
        bases, conds = pyramid(base, sizes), pyramid(cond, sizes)
        detail = torch.zeros_like(bases[-1])
        with torch.enable_grad():
            for octave_base, octave_cond in zip(reversed(bases), reversed(conds)):
                detail = resize(detail, octave_base.shape[-1])
                with torch.no_grad():
                    cond_feat = phi(encoder.normalise(octave_cond))  # [b, C', h', w']
                v = dream(phi, encoder, octave_base + detail, cond_feat, p)
                detail = v - octave_base
        dreamed.append(v)
        details.append(detail)
    return torch.cat(dreamed), torch.cat(details)
