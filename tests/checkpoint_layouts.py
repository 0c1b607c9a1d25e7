"""Synthetic checkpoint files with the real key layouts and shapes of ``peers-and-checkpoints.md`` B.3.

The key lists are transcribed from the spec here, independently of the loaders' module trees, so a loader
whose module names drift from the real files fails these tests. Weights are random (seeded) with BN in an
identity-like state, so forward passes stay finite; files are written in the real container formats
(nested dicts, ``module.`` prefixes, ``optimizer`` / ``epoch`` entries).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torchvision

Shapes = "OrderedDict[str, tuple[int, ...]]"


def _bn(out: OrderedDict, prefix: str, c: int, affine: bool = True) -> None:
    if affine:
        out[f"{prefix}.weight"] = (c,)
        out[f"{prefix}.bias"] = (c,)
    out[f"{prefix}.running_mean"] = (c,)
    out[f"{prefix}.running_var"] = (c,)
    out[f"{prefix}.num_batches_tracked"] = ()


def simclrv2_shapes(width: int) -> tuple[OrderedDict, OrderedDict]:
    """('resnet', 'head') key -> shape of a converted r50_{width}x_sk0 file."""
    r: OrderedDict = OrderedDict()
    c = 64 * width
    r["net.0.0.weight"] = (c, 3, 7, 7)
    _bn(r, "net.0.1.0", c)
    for s, (n, mid) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), start=1):
        mid *= width
        out = 4 * mid
        for k in range(n):
            b = f"net.{s}.blocks.{k}"
            c_in = c if k == 0 else out
            if k == 0:
                r[f"{b}.projection.shortcut.weight"] = (out, c_in, 1, 1)
                _bn(r, f"{b}.projection.bn.0", out)
            r[f"{b}.net.0.weight"] = (mid, c_in, 1, 1)
            _bn(r, f"{b}.net.1.0", mid)
            r[f"{b}.net.2.weight"] = (mid, mid, 3, 3)
            _bn(r, f"{b}.net.3.0", mid)
            r[f"{b}.net.4.weight"] = (out, mid, 1, 1)
            _bn(r, f"{b}.net.5.0", out)
        c = out
    r["fc.weight"] = (1000, c)
    r["fc.bias"] = (1000,)
    h: OrderedDict = OrderedDict()
    h["layers.0.weight"] = (c, c)
    _bn(h, "layers.1", c)
    h["layers.3.weight"] = (c, c)
    _bn(h, "layers.4", c)
    h["layers.6.weight"] = (128, c)
    _bn(h, "layers.7", 128)
    return r, h


def torchvision_shapes(variant: str, fc: bool = True) -> OrderedDict:
    """Key -> shape of a torchvision ResNet state dict (from torchvision itself, on the meta device)."""
    with torch.device("meta"):
        sd = getattr(torchvision.models, variant)(weights=None).state_dict()
    return OrderedDict((k, tuple(v.shape)) for k, v in sd.items() if fc or not k.startswith("fc."))


def barlow_twins_shapes(dim: int = 8192) -> OrderedDict:
    """Key -> shape of the 'model' state dict of the Barlow Twins full checkpoint (with ``module.``)."""
    m: OrderedDict = OrderedDict((f"module.backbone.{k}", s) for k, s in torchvision_shapes("resnet50", fc=False).items())
    m["module.projector.0.weight"] = (dim, 2048)
    _bn(m, "module.projector.1", dim)
    m["module.projector.3.weight"] = (dim, dim)
    _bn(m, "module.projector.4", dim)
    m["module.projector.6.weight"] = (dim, dim)
    _bn(m, "module.bn", dim, affine=False)
    return m


def simsiam_shapes() -> OrderedDict:
    """Key -> shape of the 'state_dict' of SimSiam's checkpoint_0099.pth.tar (with ``module.``)."""
    m: OrderedDict = OrderedDict((f"module.encoder.{k}", s) for k, s in torchvision_shapes("resnet50", fc=False).items())
    m["module.encoder.fc.0.weight"] = (2048, 2048)
    _bn(m, "module.encoder.fc.1", 2048)
    m["module.encoder.fc.3.weight"] = (2048, 2048)
    _bn(m, "module.encoder.fc.4", 2048)
    m["module.encoder.fc.6.weight"] = (2048, 2048)
    m["module.encoder.fc.6.bias"] = (2048,)
    _bn(m, "module.encoder.fc.7", 2048, affine=False)
    m["module.predictor.0.weight"] = (512, 2048)
    _bn(m, "module.predictor.1", 512)
    m["module.predictor.3.weight"] = (2048, 512)
    m["module.predictor.3.bias"] = (2048,)
    return m


def fill(shapes: OrderedDict, seed: int = 0) -> OrderedDict:
    """Random tensors: weights ~ N(0, 1/fan_in), BN weight 1 / bias 0 / running mean 0, var 1, counters 0."""
    g = torch.Generator().manual_seed(seed)
    out: OrderedDict = OrderedDict()
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(0, dtype=torch.long)
        elif k.endswith("running_var"):
            out[k] = torch.ones(shape)
        elif k.endswith("running_mean"):
            out[k] = torch.zeros(shape)
        elif len(shape) == 1:  # BN weight / bias, Linear bias
            out[k] = torch.ones(shape) if k.endswith("weight") else 0.01 * torch.randn(shape, generator=g)
        else:
            fan_in = int(np.prod(shape[1:]))
            out[k] = torch.randn(shape, generator=g) / fan_in**0.5
    return out


def dummy_optimizer(n: int = 3) -> dict:
    """A small optimizer state (tensors and Python scalars), as in real training checkpoints."""
    return {"state": {i: {"momentum_buffer": torch.zeros(2)} for i in range(n)}, "param_groups": [{"lr": 0.2, "weight_decay": 1.5e-6, "momentum": 0.9, "params": list(range(n))}]}


def write_simclrv2(path: Path, width: int = 1, seed: int = 0) -> dict:
    r, h = simclrv2_shapes(width)
    payload = {"resnet": fill(r, seed), "head": fill(h, seed + 1)}
    payload["head"]["layers.7.bias"].zero_()  # TF center=False
    torch.save(payload, path)
    return payload


def write_barlow_twins(path: Path, seed: int = 0, dim: int = 8192, optimizer: dict | None = None) -> dict:
    payload = {"epoch": 1000, "model": fill(barlow_twins_shapes(dim), seed), "optimizer": optimizer or dummy_optimizer()}
    torch.save(payload, path)
    return payload


def write_simsiam(path: Path, seed: int = 0) -> dict:
    payload = {"epoch": 100, "arch": "resnet50", "state_dict": fill(simsiam_shapes(), seed), "optimizer": dummy_optimizer()}
    torch.save(payload, path)
    return payload


def write_torchvision(path: Path, variant: str = "resnet18", seed: int = 0, fc: bool = True) -> OrderedDict:
    sd = fill(torchvision_shapes(variant, fc), seed)
    torch.save(sd, path)
    return sd
