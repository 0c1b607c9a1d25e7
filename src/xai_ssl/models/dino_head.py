"""DINO's projection head (Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021).

Layout of ``head.*`` in DINO's training checkpoints (facebookresearch/dino ``vision_transformer.py:DINOHead``):
``mlp`` is a Sequential of Linear layers (``mlp.{i}.weight``/``bias``), each but the last followed by an
optional BatchNorm1d (``use_bn_in_head``) and a GELU; the last Linear projects to the bottleneck (256). The
output is L2-normalised and fed to ``last_layer``, a bias-free Linear under weight normalisation stored as
``last_layer.weight_g`` [out, 1] and ``last_layer.weight_v`` [out, bottleneck] (weight = g * v / ||v||, the
norm taken per output row). With a single layer, ``mlp`` is one Linear (``mlp.weight``/``bias``).

The structure is read from the keys (:func:`head_spec`), so a file with other widths or depths loads
strictly all the same; the spec (a JSON-able list) is what the prepared encoder is rebuilt from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class WeightNormLinear(nn.Module):
    """Bias-free Linear with weight = g * v / ||v|| per output row (``torch.nn.utils.weight_norm``'s keys)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(c_out, 1))
        self.weight_v = nn.Parameter(torch.empty(c_out, c_in))
        nn.init.trunc_normal_(self.weight_v, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, c_in] -> [B, c_out]."""
        w = self.weight_v * (self.weight_g / self.weight_v.norm(dim=1, keepdim=True))
        return F.linear(x, w)


class DinoHead(nn.Module):
    """mlp -> L2 normalisation -> weight-normalised last layer (the embedding DINO's loss compares)."""

    def __init__(self, spec: Sequence[Sequence[Any]]) -> None:
        super().__init__()
        layers = [list(s) for s in spec]
        last = layers[-1]
        if last[0] != "last_layer":
            raise ValueError(f"DINO head spec must end with ('last_layer', bottleneck, out_dim), got {last}")
        body = layers[:-1]
        if len(body) == 1 and body[0][0] == "linear_flat":
            self.mlp: nn.Module = nn.Linear(int(body[0][1]), int(body[0][2]))
        else:
            modules: list[nn.Module] = []
            for kind, *dims in body:
                if kind == "linear":
                    modules.append(nn.Linear(int(dims[0]), int(dims[1])))
                elif kind == "bn":
                    modules.append(nn.BatchNorm1d(int(dims[0])))
                elif kind == "gelu":
                    modules.append(nn.GELU())
                else:
                    raise ValueError(f"DINO head spec: unknown layer {kind!r}")
            self.mlp = nn.Sequential(*modules)
        self.last_layer = WeightNormLinear(int(last[1]), int(last[2]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone embedding [B, C] -> prototype scores [B, out_dim]."""
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))


_INDEXED = re.compile(r"^mlp\.(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)$")


def head_spec(state: Mapping[str, torch.Tensor]) -> list[list[Any]]:
    """The layer list of a DINO head from its state dict (keys without the ``head.`` prefix).

    Indices of ``mlp`` with a 2-D weight are Linear layers, with running statistics BatchNorm1d; the
    indices in between (no keys) are the GELUs. Raises ValueError when the keys do not form a DINO head.
    """
    if "last_layer.weight_v" not in state or "last_layer.weight_g" not in state:
        raise ValueError("no last_layer.weight_g / last_layer.weight_v (the weight-normalised DINO last layer)")
    v = state["last_layer.weight_v"]
    if "mlp.weight" in state:
        w = state["mlp.weight"]
        return [["linear_flat", int(w.shape[1]), int(w.shape[0])], ["last_layer", int(v.shape[1]), int(v.shape[0])]]
    kinds: dict[int, str] = {}
    dims: dict[int, list[int]] = {}
    for key, t in state.items():
        m = _INDEXED.match(key)
        if m is None:
            continue
        i = int(m.group(1))
        if m.group(2) == "weight" and t.ndim == 2:
            kinds[i], dims[i] = "linear", [int(t.shape[1]), int(t.shape[0])]
        elif m.group(2) == "running_mean":
            kinds[i], dims[i] = "bn", [int(t.shape[0])]
    if not kinds:
        raise ValueError("no mlp.{i}.weight keys (the DINO head's MLP)")
    spec: list[list[Any]] = []
    for i in range(max(kinds) + 1):
        spec.append([kinds[i], *dims[i]] if i in kinds else ["gelu"])
    spec.append(["last_layer", int(v.shape[1]), int(v.shape[0])])
    return spec


def spec_has_gelu(spec: Sequence[Sequence[Any]]) -> bool:
    """True when the head has GELU activations (every multi-layer DINO head does)."""
    return any(s[0] == "gelu" for s in spec)
