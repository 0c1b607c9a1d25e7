"""VDSN, Visualizing Deep Similarity Networks (Stylianou, Souvenir & Pless, WACV 2019; survey spec §9).

Single-image method on the crop_aug pair: map1 explains x1 (n_maps = 1) against its most similar
reference image y: the reference image (``ctx.corpus``: training split centre views, ``corpus_size``)
with the highest cosine of embeddings f, the explicand itself excluded. With feature maps A at the
feature layer (``encoder.features``, the layer our encoders pool; the project used intermediate
convs), pooled features f_x = mean_i A_x[i], f_y likewise, the cosine decomposes exactly:
cos(f_x, f_y) = Σ_i map_x[i], map_x[i] = ⟨A_x[i], f_y⟩ / (P ‖f_x‖ ‖f_y‖) (= Σ_j S[i, j] of the
paper), computed in float64. ``vdsn_maps`` also gives the retrieved image's map (not stored: it
explains another image). Maps at feature resolution [B, h, w], not normalised. Quirk of the project
(off by default): ``invert: true`` min–max normalises and inverts (h ← max h − h), highlighting the
least similar positions.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.models.encoder import Encoder


def vdsn_maps(a_x: torch.Tensor, a_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Similarity maps of x and y [B, h, w] from feature maps [B, C, h, w]; each sums to cos(f_x, f_y)."""
    a_x, a_y = a_x.double(), a_y.double()
    f_x, f_y = a_x.mean(dim=(2, 3)), a_y.mean(dim=(2, 3))  # [B, C]
    p_x, p_y = a_x.shape[2] * a_x.shape[3], a_y.shape[2] * a_y.shape[3]
    denom = f_x.norm(dim=1).clamp(min=1e-12) * f_y.norm(dim=1).clamp(min=1e-12)  # [B]
    map_x = torch.einsum("bchw,bc->bhw", a_x, f_y) / (p_x * denom[:, None, None])
    map_y = torch.einsum("bchw,bc->bhw", a_y, f_x) / (p_y * denom[:, None, None])
    return map_x, map_y


def retrieve(units: torch.Tensor, keep: torch.Tensor, e: torch.Tensor) -> int:
    """Index of the most cosine-similar kept reference (unit embeddings [R, D], keep [R], e [D])."""
    sims = units @ F.normalize(e, dim=0, eps=1e-8)
    sims = sims.masked_fill(~keep.to(sims.device), float("-inf"))
    if not bool(keep.any()):
        raise ValueError("vdsn: empty reference set")
    return int(torch.argmax(sims))


def invert_map(h: torch.Tensor) -> torch.Tensor:
    """The project's post-processing: min–max normalise each map [B, h, w] to [0, 1], then max − h."""
    flat = h.flatten(1)
    lo = flat.min(1).values[:, None, None]
    norm = (h - lo) / (flat.max(1).values[:, None, None] - lo).clamp(min=1e-12)
    return norm.flatten(1).max(1).values[:, None, None] - norm


@register_method(
    "vdsn", pair_family="crop_aug", family="cam", defaults={"corpus_size": 10000, "invert": False}, n_maps=1,
    cost="2 forwards per image (explicand, retrieved image), no backward; once per job: corpus_size forwards (database)", needs_corpus=True,
    passes=lambda p, size: Passes(2, 0, int(p["corpus_size"])),
)
def vdsn(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, None]:
    """map_x1 [B, h, w] against the most similar reference image (sums to the cosine of pooled features)."""
    corpus = ctx.corpus
    if corpus is None:
        raise ValueError("vdsn: needs a reference set (ctx.corpus); the workflow loads it from the dataset index")
    dev, dt = x1.device, x1.dtype
    units = F.normalize(corpus.embeddings(encoder, dev, dt, ctx.batch_size), dim=1, eps=1e-8)  # [R, D]
    ids = ctx.image_ids or [None] * x1.shape[0]
    with torch.inference_mode():
        a_x = encoder.features(x1)  # [B, C, h, w]
        e = encoder.embed_features(a_x)  # [B, D]
        picks = [retrieve(units, corpus.keep(ids[b]), e[b]) for b in range(x1.shape[0])]
        y = corpus.images[picks].to(dev, dt) / 255  # [B, 3, H, W]
        map_x, _ = vdsn_maps(a_x, encoder.features(y))
    out = invert_map(map_x) if params["invert"] else map_x
    return out.to(dt), None
