"""SimCLRv2 ResNet-50 (selective kernel 0, width 1x or 2x): module tree, loader and the TF -> PyTorch conversion.

Sources (see ``methods-sammani.md`` §1.2 and ``peers-and-checkpoints.md`` B.3): Google publishes only
TensorFlow checkpoints (``gs://simclr-checkpoints/simclrv2/pretrained/r50_{1x,2x}_sk0``); Sammani et al.
used them converted to PyTorch with the EMA weights. The converted file is
``torch.save({'resnet': state_dict, 'head': state_dict})`` with these keys (width w, mid widths 64w..512w):

* stem ``net.0``: ``net.0.0.weight`` (7x7/2 conv), ``net.0.1.0.*`` (BN, then ReLU), max-pool 3/2 pad 1;
* stages ``net.1`` .. ``net.4`` with ``blocks.{k}`` ([3, 4, 6, 3] bottlenecks): ``net.0.weight`` (1x1),
  ``net.1.0.*`` (BN+ReLU), ``net.2.weight`` (3x3, carries the stride), ``net.3.0.*``, ``net.4.weight``
  (1x1 expand), ``net.5.0.*`` (BN, no ReLU); the first block of a stage also has
  ``projection.shortcut.weight`` (1x1, stride) and ``projection.bn.0.*``; output = ReLU(shortcut + branch),
  applied functionally (no ``nn.ReLU`` module: guided backprop leaves it vanilla, as in the reference);
* ``fc.weight`` [1000, 2048w], ``fc.bias``: the supervised linear head, present in the file and dropped;
* head ``layers.0..7``: Linear (no bias) C->C, BN1d, ReLU, Linear C->C, BN1d, ReLU, Linear C->128, BN1d(128)
  whose beta is 0 (TF ``center=False``).

The module tree below is written from that key list so that ``load_state_dict(strict=True)`` works on a
real converted file. Inputs are RGB in [0, 1] **without** mean/std normalisation (TF SimCLR convention);
the embedding is the 128-d head output.

The conversion (:func:`tf_variables_to_state_dicts`) is written from the TF variable names: conv kernels
HWIO -> OIHW; the ``conv2d[_N]`` and ``batch_normalization[_N]`` variables under
``[ema_model/]base_model/`` are taken in the numeric order of their suffix (the order TF created them);
gamma/beta/moving_mean/moving_variance -> weight/bias/running_mean/running_var;
``head_contrastive/nl_{i}/dense/kernel`` -> ``layers.{3i}.weight`` (transposed) and
``nl_{i}/batch_normalization/*`` -> ``layers.{3i+1}.*``; ``head_supervised/linear_layer/dense/*`` -> ``fc``;
``Momentum`` slots are ignored. It is a pure function of a ``{name: numpy array}`` dict, so it is tested
without TensorFlow; only :func:`read_tf_variables` needs TensorFlow (optional extra ``xai-ssl[tf]``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xai_ssl.io.atomic import atomic_path
from xai_ssl.models.checkpoints import CheckpointError, load_strict, read_torch_file, require_dict_keys
from xai_ssl.models.encoder import Encoder

log = logging.getLogger(__name__)

FORMAT = "simclrv2 (converted {'resnet', 'head'})"
BLOCKS = (3, 4, 6, 3)
MID_WIDTHS = (64, 128, 256, 512)
EXPANSION = 4
EMBEDDING_DIM = 128
BN_EPS = 1e-5
WIDTHS = (1, 2)
TF_CHECKPOINT_NAME = "model.ckpt-250228"  # file prefix of the published pretrained checkpoints


def _bn(c: int, relu: bool) -> nn.Sequential:
    """BatchNorm at index 0 (keys ``<name>.0.*``), optionally followed by a ReLU module."""
    layers: list[nn.Module] = [nn.BatchNorm2d(c, eps=BN_EPS)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Projection(nn.Module):
    """1x1 strided shortcut convolution and its BN (keys ``shortcut.weight``, ``bn.0.*``)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False)
        self.bn = _bn(c_out, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, c_in, H, W] -> [B, c_out, H/stride, W/stride]."""
        return self.bn(self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 expand, each with BN; output = relu(shortcut + branch) (functional ReLU)."""

    def __init__(self, c_in: int, mid: int, stride: int, project: bool) -> None:
        super().__init__()
        c_out = EXPANSION * mid
        self.projection = Projection(c_in, c_out, stride) if project else None
        self.net = nn.Sequential(
            nn.Conv2d(c_in, mid, 1, 1, bias=False),
            _bn(mid, relu=True),
            nn.Conv2d(mid, mid, 3, stride, 1, bias=False),
            _bn(mid, relu=True),
            nn.Conv2d(mid, c_out, 1, 1, bias=False),
            _bn(c_out, relu=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, c_in, H, W] -> [B, 4*mid, H/stride, W/stride]."""
        shortcut = x if self.projection is None else self.projection(x)
        return F.relu(shortcut + self.net(x))


class Stage(nn.Module):
    """A residual stage: ``blocks`` (keys ``blocks.{k}.*``); the first block projects and carries the stride."""

    def __init__(self, c_in: int, mid: int, n_blocks: int, stride: int) -> None:
        super().__init__()
        blocks = [Bottleneck(c_in, mid, stride, project=True)]
        blocks += [Bottleneck(EXPANSION * mid, mid, 1, project=False) for _ in range(n_blocks - 1)]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the blocks in order."""
        return self.blocks(x)


class SimCLRv2ResNet(nn.Module):
    """The ``'resnet'`` part of a converted file: ``net`` (stem + 4 stages) and the supervised ``fc``."""

    def __init__(self, width: int = 1, n_classes: int = 1000) -> None:
        super().__init__()
        if width not in WIDTHS:
            raise ValueError(f"SimCLRv2: width must be one of {WIDTHS}, got {width!r}")
        c = 64 * width
        stem = nn.Sequential(nn.Conv2d(3, c, 7, 2, 3, bias=False), _bn(c, relu=True), nn.MaxPool2d(3, 2, 1))
        stages: list[nn.Module] = [stem]
        for i, (n, mid) in enumerate(zip(BLOCKS, MID_WIDTHS, strict=True)):
            stages.append(Stage(c, mid * width, n, 1 if i == 0 else 2))
            c = EXPANSION * mid * width
        self.net = nn.Sequential(*stages)
        self.fc = nn.Linear(c, n_classes)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps [B, 2048w, H/32, W/32] of the last stage."""
        return self.net(x)


class ContrastiveHead(nn.Module):
    """The ``'head'`` part: ``layers`` = 3-layer MLP with BN, no Linear bias; output 128-d."""

    def __init__(self, c: int, out_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(c, c, bias=False),
            nn.BatchNorm1d(c, eps=BN_EPS),
            nn.ReLU(),
            nn.Linear(c, c, bias=False),
            nn.BatchNorm1d(c, eps=BN_EPS),
            nn.ReLU(),
            nn.Linear(c, out_dim, bias=False),
            nn.BatchNorm1d(out_dim, eps=BN_EPS),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """[B, C] pooled features -> [B, 128] embedding."""
        return self.layers(h)


def _encoder(resnet: SimCLRv2ResNet, head: ContrastiveHead) -> Encoder:
    """Trunk = ``resnet.net`` (stem + stages), head = ``head.layers``; no input normalisation."""
    return Encoder(resnet.net, head.layers, mean=None, std=None).eval()


def build_simclrv2_encoder(width: int = 1) -> Encoder:
    """Randomly initialised SimCLRv2 ResNet-50 (sk0) encoder of the given width (1 or 2)."""
    resnet = SimCLRv2ResNet(width)
    return _encoder(resnet, ContrastiveHead(resnet.out_channels))


def load_simclrv2(path: Path | str, width: int = 1) -> Encoder:
    """Load a converted ``{'resnet', 'head'}`` file strictly (fc is checked, then dropped); eval mode."""
    payload = require_dict_keys(read_torch_file(path, FORMAT), ("resnet", "head"), path, FORMAT)
    with torch.device("meta"):  # shapes only; the file's tensors are assigned
        resnet = SimCLRv2ResNet(width)
        head = ContrastiveHead(resnet.out_channels)
    load_strict(resnet, payload["resnet"], path, f"{FORMAT}, width {width}x", "'resnet'")
    load_strict(head, payload["head"], path, f"{FORMAT}, width {width}x", "'head'")
    return _encoder(resnet, head)


# ------------------------------------------------------------------------------------------------
# TensorFlow -> PyTorch conversion
# ------------------------------------------------------------------------------------------------


def tf_layer_order(width: int = 1) -> list[tuple[str, str]]:
    """(conv weight key, BN key prefix) of the 'resnet' state dict in the order TF created the layers.

    Stem first; then per block: the projection shortcut and its BN (first block of a stage), then the
    three conv/BN pairs of the branch. ``conv2d_N`` / ``batch_normalization_N`` number N is the position
    in this list.
    """
    order = [("net.0.0.weight", "net.0.1.0")]
    for s, n in enumerate(BLOCKS, start=1):
        for k in range(n):
            b = f"net.{s}.blocks.{k}"
            if k == 0:
                order.append((f"{b}.projection.shortcut.weight", f"{b}.projection.bn.0"))
            order += [(f"{b}.net.0.weight", f"{b}.net.1.0"), (f"{b}.net.2.weight", f"{b}.net.3.0"), (f"{b}.net.4.weight", f"{b}.net.5.0")]
    return order


def _numbered(variables: Mapping[str, np.ndarray], prefix: str, layer: str, suffixes: tuple[str, ...]) -> dict[int, dict[str, np.ndarray]]:
    """{N: {suffix: array}} of variables ``<prefix><layer>[_N]/<suffix>`` (no suffix number = 0)."""
    pattern = re.compile(rf"^{re.escape(prefix)}{layer}(?:_(\d+))?/({'|'.join(suffixes)})$")
    found: dict[int, dict[str, np.ndarray]] = {}
    for name, value in variables.items():
        m = pattern.match(name)
        if m:
            found.setdefault(int(m.group(1) or 0), {})[m.group(2)] = np.asarray(value)
    return found


def _tensor(value: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))


def _assign(target: dict[str, torch.Tensor], key: str, value: torch.Tensor, expected: Mapping[str, torch.Tensor], source: str) -> None:
    if tuple(value.shape) != tuple(expected[key].shape):
        raise CheckpointError(f"TF variable {source} {list(value.shape)} does not fit {key} {list(expected[key].shape)}")
    target[key] = value


def tf_variables_to_state_dicts(variables: Mapping[str, np.ndarray], width: int = 1, ema: bool = True) -> dict[str, dict[str, torch.Tensor]]:
    """Map SimCLRv2 TF checkpoint variables {name: array} to the converted ``{'resnet', 'head'}`` state dicts.

    ``ema=True`` reads ``ema_model/base_model/`` and ``ema_model/head_contrastive/`` (the EMA weights
    Sammani et al. use); the supervised head is read from ``ema_model/head_supervised/`` when present,
    else from ``head_supervised/`` (it is dropped by the loader either way). Raises CheckpointError when
    a variable is missing, surplus or of the wrong shape.
    """
    variables = {k: v for k, v in variables.items() if "Momentum" not in k.split("/")}  # optimizer slots
    root = "ema_model/" if ema else ""
    base, head_prefix = f"{root}base_model/", f"{root}head_contrastive/"
    with torch.device("meta"):  # reference shapes without allocating memory
        ref_resnet = SimCLRv2ResNet(width).state_dict()
        ref_head = ContrastiveHead(64 * width * 32).state_dict()
    order = tf_layer_order(width)
    convs = _numbered(variables, base, "conv2d", ("kernel",))
    bns = _numbered(variables, base, "batch_normalization", ("gamma", "beta", "moving_mean", "moving_variance"))
    if sorted(convs) != list(range(len(order))) or sorted(bns) != list(range(len(order))):
        raise CheckpointError(
            f"SimCLRv2 TF checkpoint (width {width}x, ema={ema}): expected conv2d and batch_normalization 0..{len(order) - 1} "
            f"under {base!r}, found {len(convs)} conv2d and {len(bns)} batch_normalization variables"
        )
    resnet: dict[str, torch.Tensor] = {}
    for n, (conv_key, bn_key) in enumerate(order):
        suffix = "" if n == 0 else f"_{n}"
        _assign(resnet, conv_key, _tensor(convs[n]["kernel"]).permute(3, 2, 0, 1).contiguous(), ref_resnet, f"{base}conv2d{suffix}/kernel")
        bn = bns[n]
        missing = [s for s in ("gamma", "beta", "moving_mean", "moving_variance") if s not in bn]
        if missing:
            raise CheckpointError(f"SimCLRv2 TF checkpoint: {base}batch_normalization{suffix} lacks {missing}")
        for tf_name, pt_name in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"), ("moving_variance", "running_var")):
            _assign(resnet, f"{bn_key}.{pt_name}", _tensor(bn[tf_name]), ref_resnet, f"{base}batch_normalization{suffix}/{tf_name}")
        resnet[f"{bn_key}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    sup = f"{root}head_supervised/linear_layer/dense/"
    if f"{sup}kernel" not in variables:
        sup = "head_supervised/linear_layer/dense/"
    if f"{sup}kernel" not in variables or f"{sup}bias" not in variables:
        raise CheckpointError(f"SimCLRv2 TF checkpoint: supervised head {sup}{{kernel,bias}} not found")
    _assign(resnet, "fc.weight", _tensor(variables[f"{sup}kernel"]).t().contiguous(), ref_resnet, f"{sup}kernel")
    _assign(resnet, "fc.bias", _tensor(variables[f"{sup}bias"]), ref_resnet, f"{sup}bias")

    head: dict[str, torch.Tensor] = {}
    for i in range(3):
        nl = f"{head_prefix}nl_{i}/"
        if f"{nl}dense/kernel" not in variables:
            raise CheckpointError(f"SimCLRv2 TF checkpoint: {nl}dense/kernel not found")
        _assign(head, f"layers.{3 * i}.weight", _tensor(variables[f"{nl}dense/kernel"]).t().contiguous(), ref_head, f"{nl}dense/kernel")
        bn_key = f"layers.{3 * i + 1}"
        for tf_name, pt_name in (("gamma", "weight"), ("moving_mean", "running_mean"), ("moving_variance", "running_var")):
            name = f"{nl}batch_normalization/{tf_name}"
            if name not in variables:
                raise CheckpointError(f"SimCLRv2 TF checkpoint: {name} not found")
            _assign(head, f"{bn_key}.{pt_name}", _tensor(variables[name]), ref_head, name)
        beta = f"{nl}batch_normalization/beta"
        if beta in variables:
            _assign(head, f"{bn_key}.bias", _tensor(variables[beta]), ref_head, beta)
        elif i == 2:  # the last BN has no beta (TF center=False): it stays 0
            head[f"{bn_key}.bias"] = torch.zeros(ref_head[f"{bn_key}.bias"].shape)
        else:
            raise CheckpointError(f"SimCLRv2 TF checkpoint: {beta} not found")
        head[f"{bn_key}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    # surplus variables of the converted scopes mean a different architecture (e.g. selective kernels)
    used_prefixes = (f"{base}conv2d", f"{base}batch_normalization")
    surplus = [k for k in variables if k.startswith(base) and not k.startswith(used_prefixes)]
    surplus += [k for k in variables if k.startswith(head_prefix) and not re.match(rf"^{re.escape(head_prefix)}nl_[0-2]/", k)]
    if surplus:
        raise CheckpointError(f"SimCLRv2 TF checkpoint (width {width}x, sk0): unexpected variables {sorted(surplus)[:5]} (selective-kernel model?)")
    return {"resnet": resnet, "head": head}


def read_tf_variables(prefix: Path | str) -> dict[str, np.ndarray]:
    """All variables of a TF checkpoint (``<dir>/model.ckpt-250228``) as numpy arrays; needs TensorFlow."""
    try:
        import tensorflow as tf  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ImportError(
            "converting the SimCLRv2 TensorFlow checkpoint needs TensorFlow: pip install -e '.[tf]' "
            "(tensorflow-cpu), or convert elsewhere and place the converted file by hand"
        ) from exc
    reader = tf.train.load_checkpoint(str(prefix))
    return {name: np.asarray(reader.get_tensor(name)) for name in reader.get_variable_to_shape_map()}


def convert_tf_checkpoint(
    prefix: Path | str,
    out_path: Path | str,
    width: int = 1,
    ema: bool = True,
    reader: Callable[[Path | str], Mapping[str, np.ndarray]] = read_tf_variables,
) -> None:
    """Convert a SimCLRv2 TF checkpoint to ``{'resnet', 'head'}`` at ``out_path`` and check it loads strictly."""
    variables = reader(prefix)
    log.info("read %d TF variables from %s", len(variables), prefix)
    state = tf_variables_to_state_dicts(variables, width, ema)
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        torch.save(state, tmp)
        load_simclrv2(tmp, width)  # the converted file must load strictly before it is accepted
    log.info("wrote %s (%d resnet + %d head tensors)", out_path, len(state["resnet"]), len(state["head"]))
