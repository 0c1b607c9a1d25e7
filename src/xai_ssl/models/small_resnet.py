"""Small ResNets for the embedded default and the survey's ResNet-18 SimCLR."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xai_ssl.models.encoder import IMAGENET_MEAN, IMAGENET_STD, Encoder


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity or 1x1 projection shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, c_in, H, W] -> [B, c_out, H/stride, W/stride]."""
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu2(y + self.shortcut(x))


def projection_head(c_in: int, hidden: int, out: int) -> nn.Sequential:
    """SimCLR projection head: Linear -> BN -> ReLU -> Linear -> BN (no bias, as in SimCLR)."""
    return nn.Sequential(
        nn.Linear(c_in, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, out, bias=False),
        nn.BatchNorm1d(out),
    )


def build_small_resnet(
    width: int = 16, embedding_dim: int = 64, hidden_dim: int = 128, normalise: bool = True, strides: Sequence[int] = (1, 2, 2, 2)
) -> Encoder:
    """A ResNet with one basic block per stage (widths width * 1, 2, 4, ...; ``strides`` per stage) and a SimCLR head.

    The default (4 stages, strides 1, 2, 2, 2) gives [B, 8*width, 8, 8] feature maps at 64 px input; strides
    2, 2, 2, 1 give the same map size at about half the cost (the first stage runs at half resolution).
    """
    strides = [int(s) for s in strides]
    if not strides or any(s not in (1, 2) for s in strides):
        raise ValueError(f"small_resnet: strides must be a non-empty list of 1s and 2s, got {strides}")
    layers: list[nn.Module] = [
        nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
    ]
    c_in = width
    for i, stride in enumerate(strides):
        c = width * 2**i
        layers.append(BasicBlock(c_in, c, stride))
        c_in = c
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if normalise else (None, None)
    return Encoder(nn.Sequential(*layers), projection_head(c_in, hidden_dim, embedding_dim), mean, std)


def build_resnet18(embedding_dim: int = 128, hidden_dim: int = 512, normalise: bool = True) -> Encoder:
    """Randomly initialised torchvision ResNet-18 trunk with a 512->512->128 SimCLR head (the survey's model)."""
    import torchvision  # imported when built: other models' jobs skip its ~2 s import

    net = torchvision.models.resnet18(weights=None)
    trunk = nn.Sequential(*list(net.children())[:-2])  # conv1 .. layer4
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if normalise else (None, None)
    return Encoder(trunk, projection_head(512, hidden_dim, embedding_dim), mean, std)
