"""torchvision ResNets (resnet18/34/50/101/152): the trunk used by Barlow Twins and SimSiam, and plain encoders.

A torchvision ResNet state dict (``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight`` .. ``layer4.*``, and
``fc.weight``/``fc.bias`` or no ``fc`` at all, as in Barlow Twins' backbone-only ``resnet50.pth``) loads as a
plain encoder for baselines: trunk = conv1 .. layer4, embedding = the pooled features (head = identity),
ImageNet mean/std input normalisation (optional).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    import torchvision

from xai_ssl.models.checkpoints import CheckpointError, load_strict, read_torch_file
from xai_ssl.models.encoder import IMAGENET_MEAN, IMAGENET_STD, Encoder

FORMAT = "torchvision_resnet (plain state dict)"
VARIANTS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def torchvision_resnet(variant: str, **kwargs: object) -> torchvision.models.ResNet:
    """A randomly initialised torchvision ResNet (no download)."""
    import torchvision  # imported when a ResNet is built: ~2 s (it pulls torch._dynamo) that other jobs skip

    if variant not in VARIANTS:
        raise ValueError(f"torchvision ResNet variant must be one of {VARIANTS}, got {variant!r}")
    return getattr(torchvision.models, variant)(weights=None, **kwargs)


def resnet_trunk(net: torchvision.models.ResNet) -> nn.Sequential:
    """conv1, bn1, relu, maxpool, layer1 .. layer4 (the children before avgpool and fc)."""
    return nn.Sequential(*list(net.children())[:-2])


def _mean_std(normalise: bool) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    return (IMAGENET_MEAN, IMAGENET_STD) if normalise else (None, None)


def build_torchvision_resnet_encoder(variant: str = "resnet50", normalise: bool = True) -> Encoder:
    """Randomly initialised plain encoder: trunk of ``variant``, identity head (pooled features)."""
    return Encoder(resnet_trunk(torchvision_resnet(variant)), nn.Identity(), *_mean_std(normalise)).eval()


def load_torchvision_resnet(path: Path | str, variant: str = "resnet50", normalise: bool = True) -> Encoder:
    """Load a torchvision ResNet state dict strictly (with both fc keys or none; fc is dropped)."""
    state = read_torch_file(path, FORMAT)
    fmt = f"{FORMAT}, {variant}"
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(f"{path} (format {fmt}): expected a state dict, got {type(state).__name__}")
    with torch.device("meta"):
        net = torchvision_resnet(variant)
    if "fc.weight" not in state and "fc.bias" not in state:
        net.fc = nn.Identity()  # backbone-only file (e.g. Barlow Twins' resnet50.pth)
    load_strict(net, state, path, fmt)
    return Encoder(resnet_trunk(net), nn.Identity(), *_mean_std(normalise)).eval()
