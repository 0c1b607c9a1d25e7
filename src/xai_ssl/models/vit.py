"""Vision Transformers (timm ``VisionTransformer``) in the common encoder format.

Feature map (what the CAM methods, Interaction-CAM, embedded Grad-CAM and VDSN use): the **patch tokens
entering the last block** — the tokens its attention mixes — reshaped row-major to the patch grid
[B, C, H/p, W/p]; the class and register tokens are dropped from the map. This is the layer the ViT
recipe of pytorch-grad-cam explains (``blocks[-1].norm1``, Gildenblat, jacobgil/pytorch-grad-cam, "Vision
Transformers" tutorial), taken before the block's LayerNorm so that the residual stream is the variable.
The patch tokens *leaving* the last block would be useless for the ``cls`` embedding: the class token's
last update attends over the block's input, so its gradient with respect to the output patch tokens is 0.

``embed_features(a)`` runs the last block on [prefix tokens; a], the final norm and the readout. The prefix
(class and register) tokens belong to the image the grid came from: the trunk keeps them for the grids it
returned (keyed by the grid's storage, shape and strides, so ``a.detach()`` and ``a.requires_grad_()`` of a
returned grid find them; a small LRU), and ``embed_features`` refuses a grid it did not produce. Through
``Encoder.features`` they are constants (detached): CAM gradients are partial derivatives with respect to
the patch tokens. ``trunk(xn)`` keeps their graph (gradients reach the image through them too) and
``forward`` never uses the store: ``forward(x) == embed_features(features(x))`` bit for bit.

Readouts (``embedding``): ``cls`` the normalised class token (DINO's backbone output); ``pooled`` the mean
of the normalised patch tokens (timm's ``avg`` pool, DINOv2's patch-token mean); ``classifier`` timm's own
head on its native pooling (a classification layer in the file). A projection head (e.g. DINO's) is the
encoder's ``head`` module, applied after the readout.

The model is built with ``dynamic_img_size`` (position embeddings resampled to the input's grid, bicubic,
as DINO's ``interpolate_pos_encoding``) and ``dynamic_img_pad`` (sides that are not a multiple of the patch
are padded; only feature visualisation's octaves need it — explained images must be multiples, which the
config validation checks).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from xai_ssl.models.encoder import Encoder

READOUTS = ("cls", "pooled", "classifier")


class PrefixStore:
    """LRU map from a patch grid (storage pointer, offset, shape, strides, device) to its prefix tokens [B, P, C]."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    @staticmethod
    def key(a: torch.Tensor) -> tuple[Any, ...]:
        """Identity of the memory a tensor views (equal for ``a``, ``a.detach()``, ``a.requires_grad_()``)."""
        return (a.untyped_storage().data_ptr(), a.storage_offset(), tuple(a.shape), tuple(a.stride()), str(a.device))

    def put(self, grid: torch.Tensor, prefix: torch.Tensor) -> None:
        """Remember ``prefix`` for ``grid`` (the grid is held, so its memory cannot be reused by another tensor)."""
        k = self.key(grid)
        self._entries[k] = (grid.detach(), prefix)
        self._entries.move_to_end(k)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def get(self, a: torch.Tensor) -> torch.Tensor | None:
        """The prefix tokens of grid ``a`` (None when ``a`` was not returned by the trunk, or was evicted)."""
        hit = self._entries.get(self.key(a))
        if hit is None:
            return None
        self._entries.move_to_end(self.key(a))
        prefix = hit[1]
        if prefix.grad_fn is not None:  # a graph is needed once (trunk output embedded); do not keep it alive
            del self._entries[self.key(a)]
        return prefix

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def __deepcopy__(self, memo: dict[int, Any]) -> PrefixStore:
        return PrefixStore(self.size)


class VitTrunk(nn.Module):
    """Model-input images [B, 3, H, W] -> patch tokens entering the last block, as a grid [B, C, H/p, W/p]."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.store = PrefixStore()
        self.detach_prefix = False  # set by VitEncoder.features for the duration of one call

    @property
    def num_prefix(self) -> int:
        """Class + register tokens in front of the patch tokens."""
        return int(self.model.num_prefix_tokens)

    def embed_tokens(self, xn: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Tokens before the first block [B, P + N, C] and the patch grid (h, w), as timm's forward_features."""
        m = self.model
        x = m.patch_embed(xn)  # [B, h, w, C] (dynamic_img_size) or [B, N, C]
        if x.ndim == 4:
            grid = (int(x.shape[1]), int(x.shape[2]))
        else:
            grid = tuple(int(g) for g in m.patch_embed.grid_size)  # type: ignore[assignment]
        x = m._pos_embed(x)
        x = m.patch_drop(x)
        x = m.norm_pre(x)
        return x, grid  # type: ignore[return-value]

    def tokens_before_last(self, xn: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Tokens entering the last block [B, P + N, C] and the patch grid (h, w)."""
        t, grid = self.embed_tokens(xn)
        for blk in self.model.blocks[:-1]:
            t = blk(t)
        return t, grid

    def to_grid(self, t: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Patch tokens of t [B, P + N, C] as a grid [B, C, h, w] (row-major, prefix dropped)."""
        p = self.num_prefix
        return t[:, p:].transpose(1, 2).reshape(t.shape[0], t.shape[2], grid[0], grid[1])

    def forward(self, xn: torch.Tensor) -> torch.Tensor:
        """Grid of the patch tokens entering the last block [B, C, h, w]; their prefix tokens are remembered."""
        t, grid = self.tokens_before_last(xn)
        a = self.to_grid(t, grid)
        prefix = t[:, : self.num_prefix]
        self.store.put(a, prefix.detach() if self.detach_prefix else prefix)
        return a


class VitEncoder(Encoder):
    """A timm VisionTransformer as an Encoder: feature map = patch-token grid entering the last block."""

    def __init__(
        self,
        model: nn.Module,
        readout: str = "cls",
        head: nn.Module | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        if readout not in READOUTS:
            raise ValueError(f"VitEncoder: readout must be one of {READOUTS}, got {readout!r}")
        if readout == "cls" and getattr(model, "cls_token", None) is None:
            raise ValueError("VitEncoder: readout 'cls' needs a class token; this model has none (use 'pooled')")
        if readout in ("cls", "pooled") and getattr(model, "attn_pool", None) is not None:
            raise ValueError("VitEncoder: this model pools with an attention pool; use readout 'classifier'")
        super().__init__(VitTrunk(model), head if head is not None else nn.Identity(), mean, std)
        self.readout = readout

    # ---- structure -------------------------------------------------------------------------------

    @property
    def vit(self) -> nn.Module:
        """The timm VisionTransformer."""
        return self.trunk.model

    @property
    def num_prefix(self) -> int:
        """Class + register tokens."""
        return self.trunk.num_prefix

    @property
    def has_class_token(self) -> bool:
        """True when token 0 is a class token."""
        return getattr(self.vit, "cls_token", None) is not None

    @property
    def patch_size(self) -> int:
        """Side of a patch in pixels."""
        return int(self.vit.patch_embed.patch_size[0])

    @property
    def depth(self) -> int:
        """Number of transformer blocks."""
        return len(self.vit.blocks)

    # ---- the encoder contract ---------------------------------------------------------------------

    def set_speed(self, channels_last: bool = False, autocast: str = "none") -> Encoder:
        """Autocast as for CNNs; channels-last is recorded but a ViT's tokens have no channels-last layout."""
        super().set_speed(False, autocast)
        self.channels_last = bool(channels_last)
        return self

    def _autocast(self) -> Any:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.input_mean.device.type, dtype=self.autocast_dtype)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Patch-token grid entering the last block [B, C, H/p, W/p] of images [B, 3, H, W] in [0, 1]."""
        xn = self.normalise(x)
        self.trunk.detach_prefix = True
        try:
            with self._autocast():
                a = self.trunk(xn)
            if a.dtype != torch.float32 and self.autocast_dtype is not None:
                prefix = self.trunk.store.get(a)
                a = a.float()
                self.trunk.store.put(a, prefix.float())  # type: ignore[union-attr]
        finally:
            self.trunk.detach_prefix = False
        return a

    def prefix_for(self, a: torch.Tensor) -> torch.Tensor:
        """The prefix tokens [B, P, C] of a grid returned by ``features`` / ``trunk``; a clear error otherwise."""
        prefix = self.trunk.store.get(a)
        if prefix is None:
            raise ValueError(
                "VitEncoder.embed_features: this patch grid was not returned by this encoder's features() or trunk "
                "(or a later call evicted it); a ViT's embedding also needs the image's class/register tokens, "
                "so pass the grid features() returned (a.detach() / a.requires_grad_() of it are fine)"
            )
        return prefix.to(a.dtype)

    def readout_tokens(self, t: torch.Tensor) -> torch.Tensor:
        """Embedding before the head [B, D'] from the final tokens [B, P + N, C] (final norm applied here)."""
        m = self.vit
        t = m.norm(t)
        if self.readout == "classifier":
            return m.forward_head(t)
        x = m.pool(t, pool_type="token" if self.readout == "cls" else "avg")
        return m.head_drop(m.fc_norm(x))

    def embed_tokens(self, t: torch.Tensor) -> torch.Tensor:
        """Embedding [B, D] from the tokens entering the last block [B, P + N, C]."""
        with self._autocast():
            z = self.head(self.readout_tokens(self.vit.blocks[-1](t)))
        return z.float() if self.autocast_dtype is not None else z

    def embed_features(self, a: torch.Tensor) -> torch.Tensor:
        """Embedding [B, D] from a grid [B, C, h, w] returned by ``features`` (with that image's prefix tokens)."""
        prefix = self.prefix_for(a)
        return self.embed_tokens(torch.cat([prefix, a.flatten(2).transpose(1, 2)], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding [B, D] of images [B, 3, H, W] in [0, 1] (one pass, nothing stored)."""
        with self._autocast():
            t, _ = self.trunk.tokens_before_last(self.normalise(x))
        return self.embed_tokens(t)

    # ---- hooks of feature visualisation and randomisation ----------------------------------------

    def default_up_until(self) -> int:
        """Feature visualisation's default cut in blocks: a quarter of the depth (as layer1 of a 4-stage ResNet)."""
        return max(1, self.depth // 4)

    def truncated_trunk(self, up_until: int) -> nn.Module:
        """Model-input images -> patch-token grid after the first ``up_until`` blocks [B, C, h, w]."""
        if not 1 <= up_until <= self.depth:
            raise ValueError(f"feature_visualisation: up_until counts blocks of this ViT and must be in 1..{self.depth}, got {up_until}")
        return TruncatedVit(self.trunk, up_until)

    def cascade_layers(self) -> list[tuple[str, nn.Module]]:
        """Head, final norm (+ timm's own head), blocks from last to first, patch embedding."""
        m = self.vit
        top = nn.ModuleList([m.norm, m.fc_norm, m.head])
        blocks = [(f"trunk.model.blocks.{i}", m.blocks[i]) for i in reversed(range(len(m.blocks)))]
        return [("head", self.head), ("trunk.model.norm", top), *blocks, ("trunk.model.patch_embed", m.patch_embed)]


class TruncatedVit(nn.Module):
    """The first ``k`` blocks of a ViT trunk: model-input images -> patch-token grid [B, C, h, w]."""

    def __init__(self, trunk: VitTrunk, k: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.k = k

    def forward(self, xn: torch.Tensor) -> torch.Tensor:
        """Patch tokens after block ``k`` as a grid (prefix dropped)."""
        t, grid = self.trunk.embed_tokens(xn)
        for blk in self.trunk.model.blocks[: self.k]:
            t = blk(t)
        return self.trunk.to_grid(t, grid)


@contextlib.contextmanager
def captured_attention(encoder: VitEncoder, blocks: Sequence[int]) -> Iterator[dict[int, torch.Tensor]]:
    """Inside the block, forwards record the attention probabilities [B, heads, T, T] of the given blocks.

    timm's ``Attention`` computes softmax(q k^T * scale) explicitly when ``fused_attn`` is off and passes it
    through ``attn_drop``; a forward hook there records it (the model's own code path, not a re-implementation).
    """
    m = encoder.vit
    found: dict[int, torch.Tensor] = {}
    saved: list[tuple[nn.Module, bool]] = []
    handles = []
    try:
        for i in blocks:
            attn = m.blocks[i].attn
            if not hasattr(attn, "attn_drop") or not hasattr(attn, "fused_attn"):
                raise ValueError(f"block {i}: attention module {type(attn).__name__} does not expose its attention weights")
            saved.append((attn, attn.fused_attn))
            attn.fused_attn = False

            def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor, i: int = i) -> None:
                found[i] = inputs[0]

            handles.append(attn.attn_drop.register_forward_hook(hook))
        yield found
    finally:
        for h in handles:
            h.remove()
        for attn, fused in saved:
            attn.fused_attn = fused


def block_attentions(encoder: VitEncoder, x: torch.Tensor, blocks: Sequence[int]) -> dict[int, torch.Tensor]:
    """Attention probabilities [B, heads, T, T] (rows = queries) of the given blocks for images x [B, 3, H, W]."""
    with captured_attention(encoder, blocks) as found, torch.inference_mode():
        encoder(x)
    missing = [i for i in blocks if i not in found]
    if missing:
        raise ValueError(f"no attention weights recorded for block(s) {missing}")
    return {i: found[i].float() for i in blocks}
