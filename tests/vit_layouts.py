"""Synthetic checkpoint files in the real DINO, DINOv2 and timm layouts (small dims), and a plain ViT forward.

The key lists are transcribed from the published code, independently of the loaders:

* DINO ``vision_transformer.py`` (facebookresearch/dino): ``cls_token`` [1, 1, C], ``pos_embed`` [1, 1 + N, C],
  ``patch_embed.proj`` (conv p x p), ``blocks.{i}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``norm``;
  ``DINOHead``: ``mlp.{0,2,4}`` Linear (+ BatchNorm1d with use_bn), ``last_layer.weight_g`` [out, 1] and
  ``last_layer.weight_v`` [out, bottleneck]; ``main_dino.py`` saves ``{'student', 'teacher', 'optimizer',
  'epoch', 'args', 'dino_loss'}``, the student DDP-wrapped (``module.``), the teacher only with batch norm.
* DINOv2 ``vision_transformer.py``: DINO's keys plus ``mask_token`` [1, C], ``blocks.{i}.ls{1,2}.gamma`` [C] and
  with registers ``register_tokens`` [1, R, C] (added after the position embedding, without one).
* torchvision's ResNet (DINO's ResNet-50 backbone; timm's ResNet has the same keys).

Real dims would make the files large; the dims are small (``TINY``), the names and the nesting are real.
:func:`vit_forward` is a plain re-implementation of those models' forward pass (no timm) used as the oracle.
"""

from __future__ import annotations

import argparse
import math
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision

TINY = {"dim": 32, "depth": 2, "heads": 2, "patch": 8, "side": 32, "mlp": 4}
TIMM_KW = {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 8}  # model_kwargs of the tiny timm ViT
HEAD = {"hidden": 48, "bottleneck": 16, "out": 40}
RESNET_LAYERS, RESNET_WIDTH = [1, 1, 1, 1], 16  # Bottleneck ResNet "50" cut to one block per stage, narrow inner width


def dino_vit_shapes(dim: int = 32, depth: int = 2, patch: int = 8, side: int = 32, mlp: int = 4) -> OrderedDict:
    """Key -> shape of a DINO ViT backbone (``dino_deitsmall16_pretrain.pth`` naming)."""
    n = (side // patch) ** 2
    s: OrderedDict = OrderedDict()
    s["cls_token"] = (1, 1, dim)
    s["pos_embed"] = (1, n + 1, dim)
    s["patch_embed.proj.weight"] = (dim, 3, patch, patch)
    s["patch_embed.proj.bias"] = (dim,)
    for i in range(depth):
        b = f"blocks.{i}"
        s[f"{b}.norm1.weight"], s[f"{b}.norm1.bias"] = (dim,), (dim,)
        s[f"{b}.attn.qkv.weight"], s[f"{b}.attn.qkv.bias"] = (3 * dim, dim), (3 * dim,)
        s[f"{b}.attn.proj.weight"], s[f"{b}.attn.proj.bias"] = (dim, dim), (dim,)
        s[f"{b}.norm2.weight"], s[f"{b}.norm2.bias"] = (dim,), (dim,)
        s[f"{b}.mlp.fc1.weight"], s[f"{b}.mlp.fc1.bias"] = (mlp * dim, dim), (mlp * dim,)
        s[f"{b}.mlp.fc2.weight"], s[f"{b}.mlp.fc2.bias"] = (dim, mlp * dim), (dim,)
    s["norm.weight"], s["norm.bias"] = (dim,), (dim,)
    return s


def dinov2_vit_shapes(dim: int = 32, depth: int = 2, patch: int = 8, side: int = 32, mlp: int = 4, registers: int = 0) -> OrderedDict:
    """Key -> shape of an original DINOv2 ViT (``dinov2_vits14_pretrain.pth`` naming, block_chunks=0)."""
    n = (side // patch) ** 2
    s: OrderedDict = OrderedDict()
    s["cls_token"] = (1, 1, dim)
    s["pos_embed"] = (1, n + 1, dim)
    if registers:
        s["register_tokens"] = (1, registers, dim)
    s["mask_token"] = (1, dim)
    s["patch_embed.proj.weight"] = (dim, 3, patch, patch)
    s["patch_embed.proj.bias"] = (dim,)
    for i in range(depth):
        b = f"blocks.{i}"
        s[f"{b}.norm1.weight"], s[f"{b}.norm1.bias"] = (dim,), (dim,)
        s[f"{b}.attn.qkv.weight"], s[f"{b}.attn.qkv.bias"] = (3 * dim, dim), (3 * dim,)
        s[f"{b}.attn.proj.weight"], s[f"{b}.attn.proj.bias"] = (dim, dim), (dim,)
        s[f"{b}.ls1.gamma"] = (dim,)
        s[f"{b}.norm2.weight"], s[f"{b}.norm2.bias"] = (dim,), (dim,)
        s[f"{b}.mlp.fc1.weight"], s[f"{b}.mlp.fc1.bias"] = (mlp * dim, dim), (mlp * dim,)
        s[f"{b}.mlp.fc2.weight"], s[f"{b}.mlp.fc2.bias"] = (dim, mlp * dim), (dim,)
        s[f"{b}.ls2.gamma"] = (dim,)
    s["norm.weight"], s["norm.bias"] = (dim,), (dim,)
    return s


def dino_head_shapes(in_dim: int, hidden: int = 48, bottleneck: int = 16, out: int = 40, nlayers: int = 3, bn: bool = False) -> OrderedDict:
    """Key -> shape of DINO's ``DINOHead`` (Linear [BN] GELU ... Linear, then the weight-normalised last layer)."""
    s: OrderedDict = OrderedDict()
    dims = [in_dim] + [hidden] * (nlayers - 1) + [bottleneck]
    i = 0
    for k in range(nlayers):
        s[f"mlp.{i}.weight"], s[f"mlp.{i}.bias"] = (dims[k + 1], dims[k]), (dims[k + 1],)
        i += 1
        if k < nlayers - 1:
            if bn:
                c = dims[k + 1]
                s[f"mlp.{i}.weight"], s[f"mlp.{i}.bias"] = (c,), (c,)
                s[f"mlp.{i}.running_mean"], s[f"mlp.{i}.running_var"], s[f"mlp.{i}.num_batches_tracked"] = (c,), (c,), ()
                i += 1
            i += 1  # GELU
    s["last_layer.weight_g"] = (out, 1)
    s["last_layer.weight_v"] = (out, bottleneck)
    return s


def resnet_shapes() -> OrderedDict:
    """Key -> shape of the cut-down torchvision Bottleneck ResNet (no fc, as DINO's backbone)."""
    net = torchvision.models.ResNet(torchvision.models.resnet.Bottleneck, RESNET_LAYERS, width_per_group=RESNET_WIDTH)
    return OrderedDict((k, tuple(v.shape)) for k, v in net.state_dict().items() if not k.startswith("fc."))


def random_state(shapes: OrderedDict, seed: int) -> OrderedDict:
    """Seeded random tensors: norm weights near 1, layer scales near 0.5, BN statistics identity-like, matrices ~ 1.5/sqrt(fan_in)."""
    g = torch.Generator().manual_seed(seed)
    out: OrderedDict = OrderedDict()
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(0, dtype=torch.long)
        elif k.endswith(("running_var", "weight_g")):
            out[k] = 1.0 + 0.1 * torch.rand(shape, generator=g)
        elif k.endswith(".gamma"):
            out[k] = 0.5 + 0.1 * torch.randn(shape, generator=g)
        elif k.endswith(".weight") and len(shape) == 1:  # LayerNorm / BatchNorm
            out[k] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif k.endswith((".bias", "running_mean")):
            out[k] = 0.1 * torch.randn(shape, generator=g)
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
            out[k] = 1.5 * torch.randn(shape, generator=g) / math.sqrt(max(1, fan_in))
    return out


def prefixed(state: OrderedDict, prefix: str) -> OrderedDict:
    """Every key with ``prefix`` in front."""
    return OrderedDict((prefix + k, v) for k, v in state.items())


def write_dino_full(path: Path, backbone_shapes: OrderedDict, in_dim: int, seed: int, teacher_ddp: bool, bn_head: bool = False) -> dict:
    """A DINO training checkpoint; returns {'student': (backbone, head), 'teacher': (backbone, head)} states."""
    head_shapes = dino_head_shapes(in_dim, HEAD["hidden"], HEAD["bottleneck"], HEAD["out"], bn=bn_head)
    parts = {}
    for k, name in enumerate(("student", "teacher")):
        parts[name] = (random_state(backbone_shapes, seed + 10 * k), random_state(head_shapes, seed + 10 * k + 1))
    student = prefixed(OrderedDict([*prefixed(parts["student"][0], "backbone.").items(), *prefixed(parts["student"][1], "head.").items()]), "module.")
    teacher = OrderedDict([*prefixed(parts["teacher"][0], "backbone.").items(), *prefixed(parts["teacher"][1], "head.").items()])
    if teacher_ddp:
        teacher = prefixed(teacher, "module.")
    args = argparse.Namespace(arch="vit_small", patch_size=16, out_dim=HEAD["out"], norm_last_layer=True, use_bn_in_head=bn_head,
                              lr=0.0005, local_crops_scale=(0.05, 0.4), data_path="/path/to/imagenet/train", output_dir=".")
    payload = {
        "student": student,
        "teacher": teacher,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.0, "weight_decay": 0.04, "params": [0, 1]}]},
        "epoch": 100,
        "args": args,
        "dino_loss": {"center": torch.zeros(1, HEAD["out"])},
    }
    torch.save(payload, path)
    return parts


# ---------------------------------------------------------------------------------------------
# oracle: the DINO / DINOv2 ViT forward pass written out from the state dict (no timm)


def _ln(x: torch.Tensor, s: dict, key: str) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], s[f"{key}.weight"], s[f"{key}.bias"], eps=1e-6)


def attention_probs(x: torch.Tensor, s: dict, b: str, heads: int) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) [B, heads, T, T] of block ``b`` for its input tokens x [B, T, C] (after norm1)."""
    bsz, t, c = x.shape
    qkv = F.linear(_ln(x, s, f"{b}.norm1"), s[f"{b}.attn.qkv.weight"], s[f"{b}.attn.qkv.bias"])  # [B, T, 3C]
    q, k, _ = qkv.view(bsz, t, 3, heads, c // heads).permute(2, 0, 3, 1, 4)  # [B, h, T, d] each
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // heads), dim=-1)


def block_forward(x: torch.Tensor, s: dict, b: str, heads: int) -> torch.Tensor:
    """x + ls1 * attn(norm1 x); x + ls2 * mlp(norm2 x) (ls = 1 without layer scale)."""
    bsz, t, c = x.shape
    qkv = F.linear(_ln(x, s, f"{b}.norm1"), s[f"{b}.attn.qkv.weight"], s[f"{b}.attn.qkv.bias"])
    v = qkv.view(bsz, t, 3, heads, c // heads).permute(2, 0, 3, 1, 4)[2]
    att = attention_probs(x, s, b, heads)
    y = (att @ v).transpose(1, 2).reshape(bsz, t, c)
    y = F.linear(y, s[f"{b}.attn.proj.weight"], s[f"{b}.attn.proj.bias"])
    x = x + s.get(f"{b}.ls1.gamma", 1.0) * y
    h = F.gelu(F.linear(_ln(x, s, f"{b}.norm2"), s[f"{b}.mlp.fc1.weight"], s[f"{b}.mlp.fc1.bias"]))
    h = F.linear(h, s[f"{b}.mlp.fc2.weight"], s[f"{b}.mlp.fc2.bias"])
    return x + s.get(f"{b}.ls2.gamma", 1.0) * h


def vit_tokens(xn: torch.Tensor, s: dict, patch: int) -> torch.Tensor:
    """Tokens before the first block [B, 1 (+R) + N, C] of model-input images at the checkpoint's native size."""
    x = F.conv2d(xn, s["patch_embed.proj.weight"], s["patch_embed.proj.bias"], stride=patch)  # [B, C, h, w]
    x = x.flatten(2).transpose(1, 2)  # [B, N, C] row-major
    x = torch.cat([s["cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + s["pos_embed"]
    if "register_tokens" in s:  # DINOv2 with registers: inserted after the class token, no position embedding
        x = torch.cat([x[:, :1], s["register_tokens"].expand(x.shape[0], -1, -1), x[:, 1:]], dim=1)
    return x


def vit_forward(xn: torch.Tensor, s: dict, patch: int, heads: int, depth: int, upto: int | None = None) -> torch.Tensor:
    """Tokens after ``upto`` blocks (default all, then the final norm) [B, T, C]."""
    x = vit_tokens(xn, s, patch)
    for i in range(depth if upto is None else upto):
        x = block_forward(x, s, f"blocks.{i}", heads)
    return _ln(x, s, "norm") if upto is None else x


def dino_head_forward(z: torch.Tensor, s: dict) -> torch.Tensor:
    """DINOHead: Linear-GELU-Linear-GELU-Linear (eval-mode BN where present), L2 norm, weight-normalised last layer."""
    i = 0
    while f"mlp.{i}.weight" in s or f"mlp.{i + 1}.weight" in s:
        if f"mlp.{i}.weight" not in s:
            z = F.gelu(z)
        elif f"mlp.{i}.running_mean" in s:
            z = F.batch_norm(z, s[f"mlp.{i}.running_mean"], s[f"mlp.{i}.running_var"], s[f"mlp.{i}.weight"], s[f"mlp.{i}.bias"], False)
        else:
            z = F.linear(z, s[f"mlp.{i}.weight"], s[f"mlp.{i}.bias"])
        i += 1
    z = F.normalize(z, dim=-1)
    v, g = s["last_layer.weight_v"], s["last_layer.weight_g"]
    return z @ (g * v / v.norm(dim=1, keepdim=True)).t()


def torchvision_backbone(state: dict) -> torch.nn.Module:
    """The cut-down torchvision ResNet with ``state`` loaded strictly and fc = Identity (eval mode)."""
    net = torchvision.models.ResNet(torchvision.models.resnet.Bottleneck, RESNET_LAYERS, width_per_group=RESNET_WIDTH)
    net.fc = torch.nn.Identity()
    net.load_state_dict(state, strict=True)
    return net.eval()
