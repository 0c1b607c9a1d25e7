"""SimSiam ResNet-50 from the official pre-training checkpoint ``checkpoint_0099.pth.tar``.

Format (``methods-sammani.md`` §1.4, ``peers-and-checkpoints.md`` B.3): ``{'epoch', 'arch', 'state_dict',
'optimizer'}``; ``state_dict`` keys carry ``module.`` (DistributedDataParallel):

* ``encoder.*``: torchvision resnet50 whose ``fc`` is the 3-layer projector: ``fc.{0,3}.weight``
  (2048x2048, no bias), ``fc.{1,4}.*`` (BN1d), ``fc.6.{weight,bias}`` (2048x2048), ``fc.7.{running_mean,
  running_var,num_batches_tracked}`` (BatchNorm1d(2048, affine=False));
* ``predictor.0.weight`` (512x2048, no bias), ``predictor.1.*`` (BN1d 512), ``predictor.3.{weight,bias}``
  (2048x512).

Embedding: the **predictor output** p = predictor(projector(pool(trunk(x)))), 2048-d, as the reference code
explains (its default ``run_head=True``); our CAM methods use the same head, so unlike the reference they
do not skip the projector. ImageNet mean/std input normalisation.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from xai_ssl.models.checkpoints import load_strict, read_torch_file, require_dict_keys, strip_prefix
from xai_ssl.models.encoder import IMAGENET_MEAN, IMAGENET_STD, Encoder
from xai_ssl.models.torchvision_resnet import resnet_trunk, torchvision_resnet

FORMAT = "simsiam (checkpoint_0099.pth.tar {'state_dict'})"
DIM, PRED_DIM, PREV_DIM = 2048, 512, 2048


class SimSiamNet(nn.Module):
    """The training module's parameter tree: ``encoder`` (resnet50, fc = projector) and ``predictor``."""

    def __init__(self, dim: int = DIM, pred_dim: int = PRED_DIM) -> None:
        super().__init__()
        self.encoder = torchvision_resnet("resnet50", zero_init_residual=True)
        self.encoder.fc = nn.Sequential(
            nn.Linear(PREV_DIM, PREV_DIM, bias=False),
            nn.BatchNorm1d(PREV_DIM),
            nn.ReLU(),
            nn.Linear(PREV_DIM, PREV_DIM, bias=False),
            nn.BatchNorm1d(PREV_DIM),
            nn.ReLU(),
            nn.Linear(PREV_DIM, dim),
            nn.BatchNorm1d(dim, affine=False),
        )
        self.predictor = nn.Sequential(
            nn.Linear(dim, pred_dim, bias=False),
            nn.BatchNorm1d(pred_dim),
            nn.ReLU(),
            nn.Linear(pred_dim, dim),
        )


def _encoder(net: SimSiamNet) -> Encoder:
    head = nn.Sequential(OrderedDict(projector=net.encoder.fc, predictor=net.predictor))
    return Encoder(resnet_trunk(net.encoder), head, IMAGENET_MEAN, IMAGENET_STD).eval()


def build_simsiam_encoder(dim: int = DIM, pred_dim: int = PRED_DIM) -> Encoder:
    """Randomly initialised SimSiam encoder (ResNet-50 trunk, head = projector then predictor)."""
    return _encoder(SimSiamNet(dim, pred_dim))


def load_simsiam(path: Path | str) -> Encoder:
    """Load the pre-training checkpoint strictly (``module.`` stripped); eval mode."""
    payload = require_dict_keys(read_torch_file(path, FORMAT), ("state_dict",), path, FORMAT)
    state = strip_prefix(payload["state_dict"], "module.", path, FORMAT)
    with torch.device("meta"):
        net = SimSiamNet()
    load_strict(net, state, path, FORMAT, "'state_dict'")
    return _encoder(net)
