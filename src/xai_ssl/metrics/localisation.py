"""Localisation metrics against ground-truth masks: pointing game, top-k intersection, relevance rank
accuracy and relevance mass accuracy — the survey's metrics (``methods-survey.md`` §7; Quantus v0.4.1
semantics, re-implemented here).

The map of the first view (``map1``) is scored against the label mask of that view (``mask1`` of the
pairs file, passed as ``MetricContext.masks`` [B, H, W]). Two ground truths are scored:

* ``obj``: the object, every block (label > 0) — what the survey used;
* ``arm``: the class-relevant blocks (labels ``class_blocks``, default 7, 8 = the movable right arm
  pair of Two4Two, §2 "finer ground truth", not used by the survey).

Maps at feature resolution are up-sampled to the mask size (bilinear, align_corners=False, as the
insertion/deletion metric does) before scoring; with ``abs`` the absolute map is scored (Quantus
default: signed). With a = the map (n = H·W pixels) and s = the binary ground truth:

* ``PG``  pointing game: 1 if any pixel attaining max(a) lies in s, else 0 (every arg-max counts; the
  index is taken on the flattened map, fixing the survey's row/column bug, §10 item 3).
* ``TKI`` top-k intersection (Theiner et al. 2021): |T_k ∩ s| / k, T_k = the k largest values of a.
  ``top_k`` null = 1000 at 128×128 (the survey's k on Two4Two's native size, 6.1 % of the pixels),
  scaled with the image area.
* ``RRA`` relevance rank accuracy (Arras et al. 2022): |T_K ∩ s| / K with K = |s|.
* ``RMA`` relevance mass accuracy (Arras et al. 2022): Σ_{p∈s} a⁺_p / Σ_p a⁺_p on the positive part
  a⁺ = max(a, 0) (NA when a has no positive mass).

Ties (our decision; Quantus' argsort breaks them by pixel order): T_k is the tie-aware expectation
over a random order of equal values — all pixels above the k-th largest value v count fully, the
pixels equal to v count by the fraction of them that fit. A constant map therefore scores the chance
level |s| / n in TKI and RRA.

NA: no masks (ImageNet, image folders), an empty ground truth (e.g. no arm pixel in the view), or a
non-finite map. Cost: no forward or backward pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from xai_ssl.engine import MethodContext
from xai_ssl.metrics.base import MetricResult, register_metric
from xai_ssl.models.encoder import Encoder

TOP_K_AT_128 = 1000  # the survey's k (Quantus TopKIntersection) on 128 x 128 maps
SCORES = ("PG", "TKI", "RRA", "RMA")
TRUTHS = ("obj", "arm")
COLUMNS = tuple(f"{s}_{t}" for t in TRUTHS for s in SCORES)


def _check(params: dict[str, Any], size: int) -> dict[str, Any]:
    """Validate the parameters; top_k null = 1000 at 128 px scaled with the image area."""
    out = dict(params)
    k = out["top_k"]
    out["top_k"] = max(1, int(round(TOP_K_AT_128 * size * size / 128**2))) if k is None else int(k)
    if out["top_k"] < 1:
        raise ValueError(f"localisation: top_k must be >= 1, got {k!r}")
    out["class_blocks"] = [int(b) for b in out["class_blocks"]]
    if not out["class_blocks"] or min(out["class_blocks"]) < 1:
        raise ValueError(f"localisation: class_blocks must be non-empty labels >= 1, got {out['class_blocks']!r}")
    out["abs"] = bool(out["abs"])
    return out




def upsample_to(m: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (align_corners=False) of maps [B, h, w] to [B, *shape] in float64."""
    m = m.to(torch.float64)
    if tuple(m.shape[-2:]) == tuple(shape):
        return m
    return F.interpolate(m[:, None], size=shape, mode="bilinear", align_corners=False)[:, 0]


def pointing_game(a: torch.Tensor, s: torch.Tensor) -> float:
    """1.0 if any arg-max pixel of map a [H, W] lies in mask s [H, W] (bool), else 0.0; NA for an empty s."""
    if not bool(s.any()):
        return float("nan")
    flat = a.flatten()
    hits = (flat == flat.max()) & s.flatten()  # flattened indices: no (row, col) mix-up
    return float(bool(hits.any()))


def topk_intersection(a: torch.Tensor, s: torch.Tensor, k: int) -> float:
    """Tie-aware |T_k ∩ s| / k of map a [H, W] and mask s [H, W] (bool); NA for an empty s."""
    if not bool(s.any()):
        return float("nan")
    flat, sf = a.flatten(), s.flatten()
    k = min(k, flat.numel())
    v = torch.topk(flat, k).values[-1]  # the k-th largest value
    above, equal = flat > v, flat == v
    n_above = int(above.sum())
    inside = float((above & sf).sum()) + (k - n_above) * float((equal & sf).sum()) / float(equal.sum())
    return inside / k


def relevance_rank_accuracy(a: torch.Tensor, s: torch.Tensor) -> float:
    """Tie-aware |T_K ∩ s| / K with K = |s| (Arras et al.); NA for an empty s."""
    return topk_intersection(a, s, int(s.sum())) if bool(s.any()) else float("nan")


def relevance_mass_accuracy(a: torch.Tensor, s: torch.Tensor) -> float:
    """Σ_{p∈s} a⁺_p / Σ_p a⁺_p (Arras et al.); NA for an empty s or a map without positive mass."""
    pos = a.clamp(min=0)
    total = float(pos.sum())
    if not bool(s.any()) or total <= 0:
        return float("nan")
    return float(pos[s].sum()) / total


def ground_truths(labels: torch.Tensor, class_blocks: list[int]) -> dict[str, torch.Tensor]:
    """Binary masks [B, H, W] per ground truth from label masks [B, H, W] (0 = background)."""
    lab = labels.to(torch.int64)
    blocks = torch.tensor(class_blocks, dtype=torch.int64, device=lab.device)
    return {"obj": lab > 0, "arm": torch.isin(lab, blocks)}


def score_maps(maps: torch.Tensor, labels: torch.Tensor, params: dict[str, Any]) -> dict[str, np.ndarray]:
    """All localisation columns [B] for maps [B, h, w] and label masks [B, H, W]."""
    a = upsample_to(maps, tuple(labels.shape[-2:]))  # [B, H, W]
    if params["abs"]:
        a = a.abs()
    truths = ground_truths(labels, params["class_blocks"])
    out = {c: np.full(maps.shape[0], np.nan) for c in COLUMNS}
    for b in range(maps.shape[0]):
        if not bool(torch.isfinite(a[b]).all()):
            continue
        for t, s in truths.items():
            out[f"PG_{t}"][b] = pointing_game(a[b], s[b])
            out[f"TKI_{t}"][b] = topk_intersection(a[b], s[b], params["top_k"])
            out[f"RRA_{t}"][b] = relevance_rank_accuracy(a[b], s[b])
            out[f"RMA_{t}"][b] = relevance_mass_accuracy(a[b], s[b])
    return out


@register_metric("localisation", defaults={"top_k": None, "class_blocks": [7, 8], "abs": False}, directions={c: "↑" for c in COLUMNS}, scale=_check)
def localisation(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, m1: torch.Tensor, m2: torch.Tensor | None, params: dict[str, Any], ctx: MethodContext
) -> MetricResult:
    """PG/TKI/RRA/RMA of map1 [B, h, w] against the object and class-relevant masks of x1 (NA without masks)."""
    masks = getattr(ctx, "masks", None)  # [B, H, W] label masks of x1, or None
    if masks is None:
        return {c: np.full(m1.shape[0], np.nan) for c in COLUMNS}, {}
    out = score_maps(m1.detach().cpu(), torch.as_tensor(masks).cpu(), params)
    has = getattr(ctx, "has_masks", None)  # [B] bool, None = every image has a mask
    if has is not None:
        missing = ~torch.as_tensor(has, dtype=torch.bool).cpu().numpy()
        for c in COLUMNS:
            out[c][missing] = np.nan  # no mask: not scored (an all-zero mask would read as an empty object)
    return out, {}
