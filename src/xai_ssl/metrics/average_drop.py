"""Average drop and increase in confidence: SAD, SIC (simultaneous), CAD, CID (conditional) — Sammani et al. §4.2.

Adapted from Grad-CAM++'s "Average Drop %" and "Increase in Confidence" (Chattopadhay et al., WACV 2018)
to a similarity score. Each map is upsampled (bilinear, as for insertion/deletion) to the image size and min-max normalised,
ê = (e - min e) / (max e - min e) in [0, 1]; the masked image is ê ⊙ x in MODEL-INPUT space. The
encoder normalises internally and takes pixels in [0, 1], so in pixel space that is
``baseline + ê * (x - baseline)`` with ``baseline = encoder.baseline_pixel`` (zero in model-input space).

* simultaneous: B = cos(f(x1), f(x2)), M = cos(f(x̃1), f(x̃2))  (two-map methods only; NA otherwise)
* conditional, direction k: B = cos(f(x_k), f(c)), M = cos(f(x̃_k), f(c)) with c the other, intact view
* drop = max(0, B - M) / B;  increase = 1[M > B]; reported as fractions (not %), mean over images.

Decisions (the spec leaves them open):

* **B <= 0**: the ratio (B - M) / B is meaningless for a non-positive base similarity, so the drop is
  NA for that image (and the image is counted: the ``ADI_B`` column shows B, and the aggregate tables
  count NA cells). The increase indicator needs no division and is still reported.
* **constant map** (max e = min e): ê is set to ``constant_map`` everywhere (default 0, i.e. the masked
  image is the baseline: a map that ranks nothing keeps nothing). 0 matches the eps-regularised
  min-max of common CAM code and our display normalisation; 1 would give a constant map a zero drop.
  ``ADI_constant_maps`` counts the constant maps of an image (0, 1 or 2).

All images are embedded in batches of ``ctx.batch_size`` without gradients; the unmasked views (the
conditions) are embedded once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from xai_ssl.engine import MethodContext, cosine, embed_batched
from xai_ssl.metrics.base import MetricResult, register_metric
from xai_ssl.models.encoder import Encoder


def _check(params: dict[str, Any], size: int) -> dict[str, Any]:
    out = dict(params)
    if float(out["constant_map"]) not in (0.0, 1.0):
        raise ValueError(f"average_drop_increase: constant_map must be 0 or 1, got {out['constant_map']!r}")
    out["constant_map"] = float(out["constant_map"])
    return out




def minmax_normalise(m: torch.Tensor, constant: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-map min-max to [0, 1] of maps [B, H, W]; constant maps become ``constant``. Returns (ê, is_constant [B])."""
    flat = m.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    const = hi <= lo
    span = torch.where(const, torch.ones_like(hi), hi - lo)
    out = (m - lo[:, None, None]) / span[:, None, None]
    out = torch.where(const[:, None, None], torch.full_like(out, constant), out)
    return out, const


def upsample(m: torch.Tensor, size: int, dtype: torch.dtype) -> torch.Tensor:
    """Bilinear resize of maps [B, h, w] to [B, size, size] in ``dtype`` (as ``upsample_map``, without the float32 cast)."""
    m = m.to(dtype)
    if m.shape[-2:] == (size, size):
        return m
    return F.interpolate(m[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def masked_images(encoder: Encoder, x: torch.Tensor, m: torch.Tensor, constant: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """ê ⊙ x in model-input space, as pixels: baseline + ê (x - baseline); x [B, 3, H, W], raw maps [B, h, w]."""
    e, const = minmax_normalise(upsample(m, x.shape[-1], x.dtype), constant)
    base = encoder.baseline_pixel.to(x.dtype)
    return base + e[:, None] * (x - base), const


def drop_increase(b: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """drop = max(0, B - M) / B (NA where B <= 0) and increase = 1[M > B], element-wise."""
    b, m = np.asarray(b, dtype=np.float64), np.asarray(m, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        drop = np.where(b > 0, np.maximum(0.0, b - m) / np.where(b > 0, b, 1.0), np.nan)
    return drop, (m > b).astype(np.float64)


@register_metric("average_drop_increase", defaults={"constant_map": 0.0}, directions={"SAD": "↓", "SIC": "↑", "CAD": "↓", "CID": "↑"}, scale=_check)
def average_drop_increase(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, map1: torch.Tensor, map2: torch.Tensor | None, params: dict[str, Any], ctx: MethodContext
) -> MetricResult:
    """Per-image SAD, SIC (NA for single-map methods), CAD, CID (mean of both directions; ``_1``/``_2`` stored).

    Also returned: ``ADI_B`` (base similarity), ``ADI_M_S``/``ADI_M_1``/``ADI_M_2`` (masked
    similarities) and ``ADI_constant_maps``.
    """
    n, bs, constant = x1.shape[0], ctx.batch_size, float(params["constant_map"])
    xt1, c1 = masked_images(encoder, x1, map1, constant)
    parts = [x1, x2, xt1]
    n_const = c1.long()
    if map2 is not None:
        xt2, c2 = masked_images(encoder, x2, map2, constant)
        parts.append(xt2)
        n_const = n_const + c2.long()
    z = embed_batched(encoder, torch.cat(parts), bs)  # conditions and masked images, one batched pass
    z1, z2, zt1 = z[:n], z[n : 2 * n], z[2 * n : 3 * n]
    base = cosine(z1, z2).double().cpu().numpy()
    out: dict[str, np.ndarray] = {"ADI_B": base}
    m1 = cosine(zt1, z2).double().cpu().numpy()  # direction 1: x1 masked, x2 the condition
    out["ADI_M_1"] = m1
    out["CAD_1"], out["CID_1"] = drop_increase(base, m1)
    if map2 is not None:
        zt2 = z[3 * n :]
        m2 = cosine(z1, zt2).double().cpu().numpy()  # direction 2: x2 masked, x1 the condition
        ms = cosine(zt1, zt2).double().cpu().numpy()
        out["ADI_M_2"], out["ADI_M_S"] = m2, ms
        out["CAD_2"], out["CID_2"] = drop_increase(base, m2)
        out["SAD"], out["SIC"] = drop_increase(base, ms)
        # mean of the two directions; NA when a direction's drop is NA (both share B, so both are NA together)
        out["CAD"] = (out["CAD_1"] + out["CAD_2"]) / 2
        out["CID"] = (out["CID_1"] + out["CID_2"]) / 2
    else:
        out["SAD"], out["SIC"] = np.full(n, np.nan), np.full(n, np.nan)
        out["CAD"], out["CID"] = out["CAD_1"].copy(), out["CID_1"].copy()
    out["ADI_constant_maps"] = n_const.cpu().numpy().astype(np.float64)
    return out, {}
