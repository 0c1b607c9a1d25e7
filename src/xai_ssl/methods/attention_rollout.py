"""Attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020, §3).

Single-image method on the crop_aug pair: map1 explains x1 (n_maps = 1). Per block l the heads' attention
probabilities are fused (``head_fusion``: ``mean`` as in the paper; ``max`` / ``min`` as in jacobgil/vit-explain)
into W_l [T, T]; the residual connection is added as A_l = 0.5 W_l + 0.5 I (rows renormalised to sum to 1,
which changes nothing for ``mean``), and the rollout is R = A_L A_{L-1} ... A_1 (computed in float64). The
map is the class token's row of R over the patch tokens (class and register columns dropped), reshaped
row-major to the patch grid [B, h, w].

The probabilities are those of timm's own attention code (explicit path, recorded by
:func:`xai_ssl.models.vit.block_attentions`). Defined for Vision Transformers with a class token.
"""

from __future__ import annotations

from typing import Any

import torch

from xai_ssl.methods.base import MethodContext, Passes, register_method, vit_with_class_token
from xai_ssl.methods.vit_attention import class_token_rows, patch_grid, require_vit
from xai_ssl.models.encoder import Encoder
from xai_ssl.models.vit import block_attentions

FUSIONS = ("mean", "max", "min")


def _check(params: dict[str, Any], size: int) -> dict[str, Any]:
    """Validate head_fusion."""
    if params["head_fusion"] not in FUSIONS:
        raise ValueError(f"attention_rollout: head_fusion must be one of {FUSIONS}, got {params['head_fusion']!r}")
    return dict(params)


def fuse_heads(att: torch.Tensor, how: str) -> torch.Tensor:
    """[B, heads, T, T] -> [B, T, T]."""
    if how == "mean":
        return att.mean(dim=1)
    if how == "max":
        return att.amax(dim=1)
    return att.amin(dim=1)


def rollout(attentions: list[torch.Tensor], how: str = "mean") -> torch.Tensor:
    """R = A_L ... A_1 with A_l = rownorm(0.5 fuse(W_l) + 0.5 I), float64 [B, T, T]; attentions first block first."""
    out: torch.Tensor | None = None
    for att in attentions:
        w = fuse_heads(att.double(), how)  # [B, T, T]
        a = 0.5 * w + 0.5 * torch.eye(w.shape[-1], dtype=w.dtype, device=w.device)
        a = a / a.sum(dim=-1, keepdim=True)
        out = a if out is None else a @ out
    assert out is not None
    return out


@register_method(
    "attention_rollout",
    pair_family="crop_aug", family="attention",
    defaults={"head_fusion": "mean"},
    n_maps=1,
    cost="1 forward, every block's attention computed unfused, + depth products of [T, T] matrices per image (no backward)",
    scale=_check, applies=vit_with_class_token,
    passes=lambda p, size: Passes(1),  # the first view only
)
def attention_rollout(encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext) -> tuple[torch.Tensor, None]:
    """Class-token row of the attention rollout over the patches [B, h, w]."""
    enc = require_vit(encoder, "attention_rollout")
    blocks = list(range(enc.depth))
    found = block_attentions(enc, x1, blocks)
    r = rollout([found[i] for i in blocks], str(params["head_fusion"]))  # [B, T, T]
    return class_token_rows(r, enc, patch_grid(enc, x1)).to(x1.dtype), None
