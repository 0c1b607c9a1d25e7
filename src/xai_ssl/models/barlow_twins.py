"""Barlow Twins ResNet-50 from the full training checkpoint (``checkpoint.pth``), with its 8192-d projector.

Format (``methods-sammani.md`` §1.3, ``peers-and-checkpoints.md`` B.3): ``{'epoch', 'model', 'optimizer'}``;
``'model'`` is the DistributedDataParallel state dict, every key prefixed ``module.``:

* ``backbone.*``: torchvision resnet50 keys (``zero_init_residual=True``, ``fc = Identity``, so no fc keys);
* ``projector.{0,3,6}.weight``: Linear without bias 2048 -> 8192 -> 8192 -> 8192;
  ``projector.{1,4}.*``: BatchNorm1d(8192) (ReLU modules at 2 and 5 have no keys);
* ``bn.{running_mean,running_var,num_batches_tracked}``: BatchNorm1d(8192, affine=False) used only in the
  loss — loaded (the file must have it) but not part of the encoder.

Encoder: trunk = resnet50 children up to layer4; embedding = the projector output (third Linear, no loss BN),
8192-d; ImageNet mean/std input normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from xai_ssl.models.checkpoints import load_strict, read_torch_file, require_dict_keys, strip_prefix
from xai_ssl.models.encoder import IMAGENET_MEAN, IMAGENET_STD, Encoder
from xai_ssl.models.torchvision_resnet import resnet_trunk, torchvision_resnet

FORMAT = "barlow_twins (full training checkpoint {'model'})"
PROJECTOR_DIMS = (8192, 8192, 8192)


def projector(dims: Sequence[int] = PROJECTOR_DIMS, c_in: int = 2048) -> nn.Sequential:
    """Linear -> BN -> ReLU -> Linear -> BN -> ReLU -> Linear (no biases), as in Barlow Twins."""
    sizes = [c_in, *dims]
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 2):
        layers += [nn.Linear(sizes[i], sizes[i + 1], bias=False), nn.BatchNorm1d(sizes[i + 1]), nn.ReLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
    return nn.Sequential(*layers)


class BarlowTwinsNet(nn.Module):
    """The training module's parameter tree: ``backbone``, ``projector``, ``bn`` (the loss BN)."""

    def __init__(self, dims: Sequence[int] = PROJECTOR_DIMS) -> None:
        super().__init__()
        self.backbone = torchvision_resnet("resnet50", zero_init_residual=True)
        self.backbone.fc = nn.Identity()
        self.projector = projector(dims)
        self.bn = nn.BatchNorm1d(dims[-1], affine=False)


def _encoder(net: BarlowTwinsNet) -> Encoder:
    return Encoder(resnet_trunk(net.backbone), net.projector, IMAGENET_MEAN, IMAGENET_STD).eval()


def build_barlow_twins_encoder(projector_dims: Sequence[int] = PROJECTOR_DIMS) -> Encoder:
    """Randomly initialised Barlow Twins encoder (ResNet-50 trunk, projector head)."""
    return _encoder(BarlowTwinsNet(tuple(projector_dims)))


def load_barlow_twins(path: Path | str, projector_dims: Sequence[int] = PROJECTOR_DIMS) -> Encoder:
    """Load the full training checkpoint strictly (``module.`` stripped); eval mode."""
    payload = require_dict_keys(read_torch_file(path, FORMAT), ("model",), path, FORMAT)
    state = strip_prefix(payload["model"], "module.", path, FORMAT)
    with torch.device("meta"):
        net = BarlowTwinsNet(tuple(projector_dims))
    load_strict(net, state, path, FORMAT, "'model'")
    return _encoder(net)
