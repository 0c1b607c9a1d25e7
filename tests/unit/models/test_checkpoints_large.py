"""The two big formats at their real sizes: SimCLRv2 ResNet-50 2x (~130 M parameters) and Barlow Twins with its
8192-8192-8192 projector (~176 M parameters). Each file is built once (module fixtures) and freed afterwards."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch

from checkpoint_layouts import simclrv2_shapes, write_barlow_twins, write_simclrv2
from xai_ssl.models.encoder import IMAGENET_MEAN, IMAGENET_STD
from xai_ssl.models.registry import CheckpointError, load_pretrained

X = torch.rand((2, 3, 64, 64), generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def simclrv2_2x(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("simclrv2_2x") / "r50_2x_sk0_ema.pth"
    write_simclrv2(path, width=2, seed=3)
    gc.collect()
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def barlow_twins(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("barlow_twins") / "checkpoint.pth"
    write_barlow_twins(path, seed=4)
    gc.collect()
    yield path
    path.unlink()


def test_simclrv2_2x(simclrv2_2x: Path) -> None:
    resnet, head = simclrv2_shapes(2)
    assert resnet["fc.weight"] == (1000, 4096) and head["layers.0.weight"] == (4096, 4096)
    enc, arch, params = load_pretrained("simclrv2", simclrv2_2x, width=2)
    assert (arch, params) == ("simclrv2_resnet50", {"width": 2})
    assert enc.normalise(X) is X and not enc.normalised
    with torch.no_grad():
        a = enc.features(X)
        z = enc.embed_features(a)
    assert a.shape == (2, 4096, 2, 2) and z.shape == (2, 128) and torch.isfinite(z).all()
    raw = torch.load(simclrv2_2x, weights_only=True, mmap=True)
    torch.testing.assert_close(enc.trunk[3].blocks[5].net[2].weight, raw["resnet"]["net.3.blocks.5.net.2.weight"])


def test_simclrv2_2x_as_1x_is_refused(simclrv2_2x: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        load_pretrained("simclrv2", simclrv2_2x, width=1)
    assert str(simclrv2_2x) in str(err.value) and "width 1x" in str(err.value) and "wrong shape" in str(err.value)


def test_barlow_twins(barlow_twins: Path) -> None:
    enc, arch, params = load_pretrained("barlow_twins", barlow_twins)
    assert (arch, params) == ("barlow_twins_resnet50", {})
    assert enc.normalised
    torch.testing.assert_close(enc.input_mean.flatten(), torch.tensor(IMAGENET_MEAN))
    torch.testing.assert_close(enc.input_std.flatten(), torch.tensor(IMAGENET_STD))
    with torch.no_grad():
        a = enc.features(X)
        z = enc.embed_features(a)
        # the embedding is the third Linear's output: no loss BN after it
        ref = enc.head[:6](a.mean(dim=(2, 3))) @ enc.head[6].weight.t()
    assert a.shape == (2, 2048, 2, 2) and z.shape == (2, 8192)
    torch.testing.assert_close(z, ref)
    assert len(enc.head) == 7 and not any(isinstance(m, torch.nn.BatchNorm1d) and not m.affine for m in enc.head.modules())
    raw = torch.load(barlow_twins, weights_only=True, mmap=True)["model"]
    torch.testing.assert_close(enc.head[6].weight, raw["module.projector.6.weight"])
    torch.testing.assert_close(enc.trunk[7][2].conv3.weight, raw["module.backbone.layer4.2.conv3.weight"])


def test_barlow_twins_bad_files_are_refused(barlow_twins: Path, tmp_path: Path) -> None:
    payload = torch.load(barlow_twins, weights_only=True, mmap=True)
    model = dict(payload["model"])
    del model["module.bn.running_var"]
    model["module.projector.3.weight"] = torch.zeros(8, 8)
    bad = tmp_path / "bad.pth"
    torch.save({"epoch": 1, "model": model}, bad)
    with pytest.raises(CheckpointError) as err:
        load_pretrained("barlow_twins", bad)
    msg = str(err.value)
    assert str(bad) in msg and "barlow_twins" in msg and "missing key(s) ['bn.running_var']" in msg
    assert "projector.3.weight: file [8, 8] vs expected [8192, 8192]" in msg
    torch.save({"epoch": 1, "state_dict": model}, bad)
    with pytest.raises(CheckpointError, match=r"top-level key\(s\) \['model'\] missing"):
        load_pretrained("barlow_twins", bad)
