"""Embedded Grad-CAM (the survey project's own method, spec §8), with its zero-gradient defect fixed.

Single-image method on the crop_aug pair: map1 explains x1 (n_maps = 1). A database of reference
images (``ctx.corpus``: training split centre views, ``corpus_size`` of them) stores per image y its
embedding f(y) and channel weights w(y)_c = mean_{h,w} ∂T/∂A_c(y) at the feature layer
(``encoder.features``, our CAM layer; the project hooked intermediate convs). The explicand x gets
w̄ = mean of w over its k nearest database entries (Euclidean distance of embeddings, the explicand
itself excluded) and heat = mean_c(w̄_c · A_c(x)), no ReLU unless ``relu`` (the project omitted it).
Maps are raw, at feature resolution [B, h, w] (the project min–max normalised and resized them).

Fix (spec §8, §10 item 10, §12): the project took T = the model's training loss; for SimCLR this was
NT-Xent over one positive pair, identically 0, so all stored weights were 0. Here T is the
similarity target of the spec's corrected mode, T(y) = ⟨f(y), f(ỹ)⟩ at ỹ = y with the first factor
held fixed (LFFI's auxiliary scalar), i.e. ∂T/∂A = J_A(y)ᵀ f(y): non-zero whenever f(y) ≠ 0, and a
gradient of the embedding (not of a loss) so the weights explain f. Database: 1 forward + 1 backward
per entry, once per job and encoder (cached on the corpus).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.methods.corpus import Corpus
from xai_ssl.models.encoder import Encoder


def database_weights(encoder: Encoder, chunks: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings [R, D] and channel weights [R, C] = mean_{h,w} ∂⟨sg f(y), f(y)⟩/∂A(y) of image chunks [b, 3, H, W]."""
    embs, weights = [], []
    for y in chunks:
        with torch.enable_grad():
            a = encoder.features(y).detach().requires_grad_(True)  # [b, C, h, w]
            z = encoder.embed_features(a)  # [b, D]; rows are independent in eval mode
            (g,) = torch.autograd.grad((z * z.detach()).sum(), [a])
        embs.append(z.detach())
        weights.append(g.mean(dim=(2, 3)))  # [b, C]
    return torch.cat(embs), torch.cat(weights)


def neighbour_weights(corpus: Corpus, embs: torch.Tensor, weights: torch.Tensor, e: torch.Tensor, k: int, image_id: str | None) -> torch.Tensor:
    """Mean weights [C] of the k database entries nearest to embedding e [D] (Euclidean), without the explicand."""
    keep = torch.nonzero(corpus.keep(image_id)).flatten().to(embs.device)
    if keep.numel() == 0:
        raise ValueError(f"embedded_gradcam: empty database for image {image_id!r}")
    dist = torch.linalg.vector_norm(embs[keep] - e[None], dim=1)  # [R']
    nearest = keep[torch.topk(dist, min(k, keep.numel()), largest=False).indices]
    return weights[nearest].mean(0)


@register_method(
    "embedded_gradcam", pair_family="crop_aug", family="cam", defaults={"corpus_size": 1000, "k": 15, "relu": False}, n_maps=1,
    cost="1 forward per image; once per job: corpus_size forwards + backwards (database)", needs_corpus=True,
    passes=lambda p, size: Passes(1, 0, int(p["corpus_size"])),  # the database's backward stops at the features
)
def embedded_gradcam(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, None]:
    """heat = mean_c(w̄_c A_c(x1)), w̄ from the k nearest database images; [B, h, w]."""
    corpus = ctx.corpus
    if corpus is None:
        raise ValueError("embedded_gradcam: needs a database (ctx.corpus); the workflow loads it from the dataset index")
    dev, dt = x1.device, x1.dtype
    embs, weights = corpus.cached(encoder, ("egc-db", str(dev), dt), lambda: database_weights(encoder, corpus.chunks(dev, dt, ctx.batch_size)))
    ids = ctx.image_ids or [None] * x1.shape[0]
    with torch.inference_mode():
        a = encoder.features(x1)  # [B, C, h, w]
        e = encoder.embed_features(a)  # [B, D]
        w = torch.stack([neighbour_weights(corpus, embs, weights, e[b], int(params["k"]), ids[b]) for b in range(x1.shape[0])])  # [B, C]
        heat = (w[:, :, None, None] * a).mean(1)  # [B, h, w]
    return (heat.clamp(min=0) if params["relu"] else heat), None
