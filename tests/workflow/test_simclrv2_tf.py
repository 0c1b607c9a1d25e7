"""SimCLRv2 TF -> PyTorch conversion on checkpoints written by TensorFlow, checked against TensorFlow's forward.

TensorFlow writes TF1-format checkpoints (``tf.compat.v1.train.Saver``, V2 ``.index`` + ``.data``) with the
variable names and shapes of the published ``r50_1x_sk0`` and ``r50_2x_sk0`` (trained and EMA copies,
optimizer slots, both heads; random values, non-trivial batch norm), see ``simclrv2_tf_reference.py``. The
real Snakemake rules convert them (``convert_simclrv2``) and prepare the encoders (``prepare_model``); the
loaded encoders must reproduce TensorFlow's trunk output and 128-d embedding on the same images to 1e-4
(relative to the largest output value).

Needs TensorFlow (the ``[tf]`` extra), which the main environment does not have: the module skips without it,
unless ``XAI_SSL_REQUIRE_TF=1`` (set by ``.ci/tf-test``, which builds the TensorFlow environment and runs
only this file); see ``docs/checkpoints-tf.md``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

# xai_ssl (torch, torchvision, triton) before TensorFlow: with tensorflow-cpu 2.20 loaded first, importing
# triton (torch._dynamo, pulled in by torchvision) segfaults. The library's converter imports TF lazily, after.
from workflow_runner import TINY_CONFIG, copy_code, snakemake

from xai_ssl.models.registry import load_encoder
from xai_ssl.models.simclrv2 import convert_tf_checkpoint, load_simclrv2

try:
    import tensorflow as tf
except ImportError:
    if os.environ.get("XAI_SSL_REQUIRE_TF") == "1":
        raise
    pytest.skip(
        "TensorFlow is not installed: the TF conversion test runs in its own environment "
        "(bash .ci/tf-test, or see docs/checkpoints-tf.md)",
        allow_module_level=True,
    )

from simclrv2_tf_reference import TFCheckpoint, write_checkpoint  # needs TensorFlow

pytestmark = [pytest.mark.tf, pytest.mark.integration]

TOLERANCE = 1e-4  # max |PyTorch - TF| relative to max |TF| of the compared output
URL = "https://storage.googleapis.com/simclr-checkpoints/simclrv2/pretrained/r50_{w}x_sk0"


def _images(seed: int, size: int) -> np.ndarray:
    """Two random images [2, 3, size, size] in [0, 1] (the SimCLRv2 input range, no normalisation)."""
    return np.random.default_rng(seed).random((2, 3, size, size), dtype=np.float32)


# 66 px: the stem output (33 px) is odd, where TF's SAME max-pool pads one pixel on each side like PyTorch's
# MaxPool2d(3, 2, 1); 64 px: even (32 px), where TF pads only the bottom/right (see test_even_sizes_...).
INPUTS = {"odd": _images(1, 66), "even": _images(2, 64)}


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[int, TFCheckpoint]]]:
    """TF checkpoints of both widths placed where the workflow expects them, converted and prepared by the rules.

    The 2 GB of checkpoints are removed afterwards.
    """
    root = tmp_path_factory.mktemp("simclrv2_tf")
    code = copy_code(root / "code")
    work = root / "work"
    cfg = copy.deepcopy(TINY_CONFIG)
    checkpoints = {}
    for w in (1, 2):
        cfg["models"][f"simclrv2_{w}x"] = {
            "source": "simclrv2",
            "width": w,
            "ema": True,
            "url": URL.format(w=w),
            "checkpoint": f"resources/checkpoints/simclrv2/r50_{w}x_sk0_ema.pth",
        }
        tf_dir = work / "resources" / "checkpoints" / "simclrv2" / "tf" / f"r50_{w}x_sk0"
        checkpoints[w] = write_checkpoint(tf_dir, w, INPUTS, seed=10 + w)
        for extra in (tf_dir / "checkpoint", tf_dir / "model.ckpt-250228.meta"):  # download_simclrv2_tf fetches only .index and .data
            extra.unlink()
    (work / "config").mkdir(parents=True)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, code, "results/models/simclrv2_1x/source.json", "results/models/simclrv2_2x/source.json")
    log = proc.stdout + proc.stderr
    assert "rule download_simclrv2_tf:" not in log, "the TF files were placed by hand: nothing is downloaded"
    assert "rule convert_simclrv2:" in log and "rule prepare_model:" in log
    yield work, checkpoints
    shutil.rmtree(root, ignore_errors=True)


def _max_rel_diff(ours: torch.Tensor, ref: np.ndarray) -> float:
    """max |ours - ref| / max |ref|."""
    ref_t = torch.from_numpy(ref)
    assert ours.shape == ref_t.shape, (ours.shape, ref_t.shape)
    return float((ours - ref_t).abs().max() / ref_t.abs().max())


def _compare(encoder: nn.Module, outputs: dict[str, np.ndarray], copy_name: str, images: np.ndarray) -> dict[str, float]:
    x = torch.from_numpy(images)
    with torch.no_grad():
        features = encoder.features(x)
        z = encoder(x)
    return {
        "features": _max_rel_diff(features, outputs[f"features_{copy_name}"]),
        "embedding": _max_rel_diff(z, outputs[f"embedding_{copy_name}"]),
    }


# ----------------------------------------------------------------------------------------------
# the file TensorFlow wrote has the published names and shapes (spec: peers-and-checkpoints.md B.3)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2])
def test_tf_file_has_the_published_names_and_shapes(converted: tuple[Path, dict[int, TFCheckpoint]], width: int) -> None:
    _, checkpoints = converted
    prefix = checkpoints[width].prefix
    assert prefix.name == "model.ckpt-250228" and prefix.with_name(prefix.name + ".data-00000-of-00001").is_file()
    shapes = dict(tf.train.list_variables(str(prefix)))  # read back by TensorFlow's own reader
    w = width
    for scope in ("base_model/", "ema_model/base_model/"):
        convs = sorted(k for k in shapes if k.startswith(f"{scope}conv2d") and k.endswith("/kernel") and "Momentum" not in k)
        assert len(convs) == 53  # 1 stem + 16 blocks x 3 + 4 projections
        assert shapes[f"{scope}conv2d/kernel"] == [7, 7, 3, 64 * w]  # HWIO
        assert shapes[f"{scope}conv2d_1/kernel"] == [1, 1, 64 * w, 256 * w]  # first projection shortcut
        assert shapes[f"{scope}conv2d_2/kernel"] == [1, 1, 64 * w, 64 * w]  # then the first branch conv
        assert shapes[f"{scope}conv2d_52/kernel"] == [1, 1, 512 * w, 2048 * w]
        assert shapes[f"{scope}batch_normalization_52/moving_variance"] == [2048 * w]
    for scope in ("head_contrastive/", "ema_model/head_contrastive/"):
        assert shapes[f"{scope}nl_0/dense/kernel"] == [2048 * w, 2048 * w]
        assert shapes[f"{scope}nl_2/dense/kernel"] == [2048 * w, 128]
        assert f"{scope}nl_2/batch_normalization/beta" not in shapes and f"{scope}nl_1/batch_normalization/beta" in shapes
    assert shapes["head_supervised/linear_layer/dense/kernel"] == [2048 * w, 1000]
    assert shapes["base_model/conv2d/kernel/Momentum"] == [7, 7, 3, 64 * w] and "global_step" in shapes


# ----------------------------------------------------------------------------------------------
# converted by the real rules, the encoders reproduce TensorFlow's forward
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2])
def test_rule_converted_encoder_matches_tensorflow(converted: tuple[Path, dict[int, TFCheckpoint]], width: int) -> None:
    work, checkpoints = converted
    encoder = load_encoder(work / f"results/models/simclrv2_{width}x/encoder.pt")
    info = json.loads((work / f"results/models/simclrv2_{width}x/source.json").read_text())
    assert info["embedding_dim"] == 128 and info["trunk_channels"] == 2048 * width
    diffs = _compare(encoder, checkpoints[width].outputs["odd"], "ema", INPUTS["odd"])
    print(f"width {width}x, EMA, 66 px: max relative difference to TF {diffs}")
    assert max(diffs.values()) < TOLERANCE, f"width {width}x, EMA weights: PyTorch differs from TF by {diffs} (relative)"
    # the converted file itself: {'resnet', 'head'}, recorded digest beside it
    ckpt = work / f"resources/checkpoints/simclrv2/r50_{width}x_sk0_ema.pth"
    assert set(torch.load(ckpt, map_location="cpu", weights_only=True)) == {"resnet", "head"}
    assert ckpt.with_name(ckpt.name + ".sha256").is_file()


def test_conversion_without_ema_reads_the_trained_weights(converted: tuple[Path, dict[int, TFCheckpoint]], tmp_path: Path) -> None:
    _, checkpoints = converted
    out = tmp_path / "r50_1x_sk0.pth"
    convert_tf_checkpoint(checkpoints[1].prefix, out, width=1, ema=False)  # the real TF reader
    diffs = _compare(load_simclrv2(out, 1), checkpoints[1].outputs["odd"], "plain", INPUTS["odd"])
    print(f"width 1x, trained weights, 66 px: max relative difference to TF {diffs}")
    assert max(diffs.values()) < TOLERANCE, f"ema=False: PyTorch differs from TF's trained weights by {diffs}"


class TFSameMaxPool(nn.Module):
    """TF ``max_pool(3, 2, 'SAME')``: pads max(0, (ceil(n/2)-1)*2 + 3 - n) per axis, the odd one at the end."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for n in (x.shape[-1], x.shape[-2]):  # F.pad order: W then H
            total = max(0, (math.ceil(n / 2) - 1) * 2 + 3 - n)
            pads += [total // 2, total - total // 2]
        return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, 2)


def test_even_sizes_differ_from_tensorflow_only_by_the_max_pool_padding(converted: tuple[Path, dict[int, TFCheckpoint]]) -> None:
    """At even stem sizes (224 px input: 112 px) TF's SAME max-pool pads bottom/right only, PyTorch's pads both
    sides (the converted reference layout, README "Pretrained checkpoints"). Swapping in TF's pool closes the gap."""
    work, checkpoints = converted
    encoder = load_encoder(work / "results/models/simclrv2_1x/encoder.pt")
    outputs = checkpoints[1].outputs["even"]
    as_converted = _compare(encoder, outputs, "ema", INPUTS["even"])
    assert as_converted["embedding"] > 100 * TOLERANCE, f"PyTorch's symmetric max-pool now matches TF SAME at even sizes: {as_converted}; update README"
    stem = encoder.trunk[0]
    assert isinstance(stem[2], nn.MaxPool2d) and stem[2].padding == 1
    stem[2] = TFSameMaxPool()
    tf_pool = _compare(encoder, outputs, "ema", INPUTS["even"])
    print(f"width 1x, 64 px: as converted {as_converted}, with TF's SAME max-pool {tf_pool}")
    assert max(tf_pool.values()) < TOLERANCE, f"with TF's SAME max-pool, PyTorch still differs from TF by {tf_pool}"
