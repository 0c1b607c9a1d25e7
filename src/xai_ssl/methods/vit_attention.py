"""ViT attention map: the class token's self-attention in the last block (Caron et al., "Emerging Properties in
Self-Supervised Vision Transformers" (DINO), ICCV 2021, Fig. 1 and facebookresearch/dino ``visualize_attention.py``).

Single-image method on the crop_aug pair: map1 explains x1 (n_maps = 1); x2 and the similarity play no
part (the map is a property of the image under this model). For the last block, the attention probabilities
softmax(q k^T / sqrt(d_head)) of the class-token query over the patch keys (class and register keys dropped,
rows not renormalised, as DINO shows them) are reshaped row-major to the patch grid: one map per head
[B, heads, h, w]. The stored map is their mean over heads [B, h, w]; the per-head maps are kept in the
attribution file as the extra dataset ``extra/heads`` [N, heads, h, w] (``MethodContext.extras``).

The probabilities are those of timm's own attention code (its explicit, unfused path, recorded by
:func:`xai_ssl.models.vit.block_attentions`). Defined for Vision Transformers with a class token; refused for
CNNs when the config is validated.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from xai_ssl.methods.base import MethodContext, Passes, register_method, vit_with_class_token
from xai_ssl.models.encoder import Encoder
from xai_ssl.models.vit import VitEncoder, block_attentions


def require_vit(encoder: Encoder, method: str) -> VitEncoder:
    """The encoder as a VitEncoder with a class token, or a clear error."""
    if not isinstance(encoder, VitEncoder) or not encoder.has_class_token:
        raise ValueError(f"{method}: defined for Vision Transformers with a class token, not for {type(encoder).__name__}")
    return encoder


def patch_grid(encoder: VitEncoder, x: torch.Tensor) -> tuple[int, int]:
    """Patch grid (h, w) of images x [B, 3, H, W] (sides padded up to a multiple of the patch)."""
    p = encoder.patch_size
    return math.ceil(x.shape[-2] / p), math.ceil(x.shape[-1] / p)


def class_token_rows(att: torch.Tensor, encoder: VitEncoder, grid: tuple[int, int]) -> torch.Tensor:
    """Class-token query row over the patch keys of attention [B, ..., T, T] -> [B, ..., h, w]."""
    rows = att[..., 0, encoder.num_prefix :]  # [B, ..., N]
    return rows.reshape(*rows.shape[:-1], grid[0], grid[1])


@register_method(
    "vit_attention",
    pair_family="crop_aug", family="attention",
    defaults={},
    n_maps=1,
    cost="1 forward, the last block's attention computed unfused (no backward)",
    applies=vit_with_class_token,
    passes=lambda p, size: Passes(1),  # the first view only
)
def vit_attention(encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext) -> tuple[torch.Tensor, None]:
    """Mean over heads [B, h, w] of the last block's class-token attention to the patches; heads in ctx.extras['heads']."""
    enc = require_vit(encoder, "vit_attention")
    last = enc.depth - 1
    att = block_attentions(enc, x1, [last])[last]  # [B, heads, T, T]
    heads = class_token_rows(att, enc, patch_grid(enc, x1))  # [B, heads, h, w]
    ctx.extras["heads"] = heads
    return heads.mean(dim=1).to(x1.dtype), None
