"""Insertion and deletion, simultaneous (SI, SD) and conditional (CI, CD) — Sammani et al. §4.1.

Every map is upsampled (bilinear) to the image size and ranked once (stable, descending).
Step i replaces the pixels ranked [i*p, (i+1)*p) (all channels): deletion sets them to zero in
model-input space, insertion copies them from the image into a Gaussian-blurred start. The
curve is the cosine similarity after each step (s_0 before any change); the score is the
normalised trapezoid AUC. Curve images are built on the device and embedded in batches; the
condition of a conditional curve is embedded once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from xai_ssl.engine import MethodContext, cosine
from xai_ssl.metrics.base import MetricResult, register_metric
from xai_ssl.models.encoder import Encoder


def _scale(params: dict[str, Any], size: int) -> dict[str, Any]:
    """224 px per step and blur 11 / sigma 5 at 224 px, scaled to the image size when left at null."""
    out = dict(params)
    if out["pixels_per_step"] is None:
        out["pixels_per_step"] = size
    if out["blur_kernel"] is None:
        out["blur_kernel"] = 2 * int(11 * size / 224 / 2) + 1
    if out["blur_sigma"] is None:
        out["blur_sigma"] = 5.0 * size / 224
    if out["pixels_per_step"] < 1 or out["pixels_per_step"] > size * size:
        raise ValueError(f"insertion_deletion: pixels_per_step must be in [1, {size * size}], got {out['pixels_per_step']}")
    k = int(out["blur_kernel"])
    if k < 1 or k % 2 == 0 or k // 2 >= size:  # torchvision's gaussian_blur: odd kernels, reflect padding < the image side
        raise ValueError(f"insertion_deletion: blur_kernel must be odd and at most {2 * size - 1} at {size} px (torchvision's gaussian_blur), got {k}")
    return out




def upsample_map(m: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of maps [B, h, w] to [B, size, size] (no-op when already that size)."""
    if m.shape[-1] == size and m.shape[-2] == size:
        return m.float()
    return F.interpolate(m[:, None].float(), size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def pixel_ranks(m: torch.Tensor) -> torch.Tensor:
    """Rank position of every pixel of [H, W] in descending order of the map (stable: ties by index) -> [H*W]."""
    flat = m.flatten()
    order = torch.argsort(flat, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(flat.numel(), device=flat.device)
    return ranks


def n_steps(n_pixels: int, pixels_per_step: int) -> int:
    """Number of steps T (the curve has T + 1 points)."""
    return math.ceil(n_pixels / pixels_per_step)


def step_images(start: torch.Tensor, target: torch.Tensor, ranks: torch.Tensor, steps: torch.Tensor, pps: int) -> torch.Tensor:
    """Images after ``steps`` [b] steps: pixels ranked < step*pps come from target; [3, H, W] -> [b, 3, H, W]."""
    h, w = start.shape[-2:]
    replaced = (ranks[None, :] < steps[:, None] * pps).view(-1, 1, h, w)  # [b, 1, H, W]
    return torch.where(replaced, target, start)


@torch.inference_mode()
def embed_step_stream(
    encoder: Encoder, sources: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], total: int, pps: int, batch_size: int
) -> list[torch.Tensor]:
    """Embeddings of steps 0..total of every (start, target, ranks) source, in full batches across sources -> [total+1, D] each.

    The steps of all sources form one stream cut into batches of ``batch_size`` images, so a batch may
    hold the last steps of one curve and the first of the next: only the very last batch is partial.
    """
    per = total + 1
    n_items = len(sources) * per
    device = sources[0][0].device
    pieces: list[list[torch.Tensor]] = [[] for _ in sources]
    for lo in range(0, n_items, batch_size):
        hi = min(lo + batch_size, n_items)
        runs = []  # (source index, step range) of the curves this batch touches
        i = lo
        while i < hi:
            src, step = divmod(i, per)
            end = min(hi, (src + 1) * per)
            runs.append((src, torch.arange(step, step + end - i, device=device)))
            i = end
        imgs = torch.cat([step_images(*sources[src], steps, pps) for src, steps in runs])  # [<=batch_size, 3, H, W]
        z = encoder(imgs)  # [<=batch_size, D]
        offset = 0
        for src, steps in runs:
            pieces[src].append(z[offset : offset + len(steps)])
            offset += len(steps)
    return [torch.cat(p) for p in pieces]


@torch.inference_mode()
def conditional_curve(
    encoder: Encoder, start: torch.Tensor, target: torch.Tensor, ranks: torch.Tensor, z_cond: torch.Tensor, pps: int, batch_size: int
) -> torch.Tensor:
    """s_i = cos(f(x^(i)), z_cond) for i = 0..T; z_cond [D] is the condition, embedded once -> [T+1]."""
    (z,) = embed_step_stream(encoder, [(start, target, ranks)], n_steps(ranks.numel(), pps), pps, batch_size)
    return cosine(z, z_cond[None])


@torch.inference_mode()
def simultaneous_curve(
    encoder: Encoder,
    start1: torch.Tensor,
    target1: torch.Tensor,
    ranks1: torch.Tensor,
    start2: torch.Tensor,
    target2: torch.Tensor,
    ranks2: torch.Tensor,
    pps: int,
    batch_size: int,
) -> torch.Tensor:
    """s_i = cos(f(x1^(i)), f(x2^(i))), both images perturbed by their own maps -> [T+1]."""
    sources = [(start1, target1, ranks1), (start2, target2, ranks2)]
    za, zb = embed_step_stream(encoder, sources, n_steps(ranks1.numel(), pps), pps, batch_size)
    return cosine(za, zb)


def auc(curve: np.ndarray) -> np.ndarray:
    """Normalised trapezoid AUC over the last axis: (sum s_i - s_0/2 - s_T/2) / T."""
    curve = np.asarray(curve, dtype=np.float64)
    t = curve.shape[-1] - 1
    return (curve.sum(-1) - curve[..., 0] / 2 - curve[..., -1] / 2) / t


@register_metric(
    "insertion_deletion",
    defaults={"pixels_per_step": None, "blur_kernel": None, "blur_sigma": None},
    directions={"SI": "↑", "SD": "↓", "CI": "↑", "CD": "↓"},
    scale=_scale,
)
def insertion_deletion(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, map1: torch.Tensor, map2: torch.Tensor | None, params: dict[str, Any], ctx: MethodContext
) -> MetricResult:
    """SI, SD (both maps) and CI, CD (each direction, then their mean) for pairs [B, 3, H, W] and maps [B, h, w]."""
    size = x1.shape[-1]
    pps, bs = int(params["pixels_per_step"]), ctx.batch_size
    k, sigma = int(params["blur_kernel"]), float(params["blur_sigma"])
    fill = encoder.baseline_pixel[0].expand_as(x1[0])  # [3, H, W], zero in model-input space
    views = [x1, x2] if map2 is not None else [x1]
    maps = [map1, map2] if map2 is not None else [map1]
    with torch.inference_mode():
        z1, z2 = encoder(x1), encoder(x2)  # conditions, embedded once
    conds = [z2, z1]
    total = n_steps(size * size, pps)
    # Every curve of every image of the chunk is one source of the step stream: full batches throughout.
    sources: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    jobs: list[tuple[str, int, Any]] = []  # (curve name, image, condition [D] or index of the partner source)
    for b in range(x1.shape[0]):
        ranks = [pixel_ranks(upsample_map(m[b : b + 1], size)[0]) for m in maps]
        blurred = [TF.gaussian_blur(v[b], [k, k], [sigma, sigma]) for v in views]
        for j, (v, r) in enumerate(zip(views, ranks)):
            sources.append((v[b], fill, r))
            jobs.append((f"CD_{j + 1}", b, conds[j][b]))
            sources.append((blurred[j], v[b], r))
            jobs.append((f"CI_{j + 1}", b, conds[j][b]))
        if map2 is not None:
            for name, (s1, t1), (s2, t2) in (("SD", (x1[b], fill), (x2[b], fill)), ("SI", (blurred[0], x1[b]), (blurred[1], x2[b]))):
                sources += [(s1, t1, ranks[0]), (s2, t2, ranks[1])]
                jobs += [(name, b, len(sources) - 1), ("", b, None)]
    with torch.inference_mode():
        z = embed_step_stream(encoder, sources, total, pps, bs)
        curves: dict[str, list[np.ndarray]] = {}
        for i, (name, _, cond) in enumerate(jobs):
            if not name:
                continue  # second view of a simultaneous curve, used with its first
            other = z[cond] if isinstance(cond, int) else cond[None]
            curves.setdefault(name, []).append(cosine(z[i], other).cpu().numpy())
    stacked = {name: np.stack(c) for name, c in curves.items()}
    scores = {name: auc(c) for name, c in stacked.items()}
    n = x1.shape[0]
    for prefix in ("CI", "CD"):
        parts = [scores[f"{prefix}_{j + 1}"] for j in range(len(views))]
        scores[prefix] = np.mean(parts, axis=0)
    for name in ("SI", "SD"):
        scores.setdefault(name, np.full(n, np.nan))
    return scores, stacked
