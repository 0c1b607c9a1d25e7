"""Encoder wrapper, NT-Xent loss, SimCLR training and the checkpoint format."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from xai_ssl.models import Encoder, build_architecture, load_encoder, save_encoder
from xai_ssl.models.encoder import IMAGENET_MEAN, IMAGENET_STD
from xai_ssl.models.registry import CheckpointError
from xai_ssl.models.simclr_training import SimCLRParams, nt_xent_loss, train_simclr

CPU = torch.device("cpu")
ARCH_PARAMS = {"width": 4, "embedding_dim": 8, "hidden_dim": 16}


def tiny(seed: int = 0) -> Encoder:
    torch.manual_seed(seed)
    return build_architecture("small_resnet", **ARCH_PARAMS)


# --------------------------------------------------------------------------------------------
# NT-Xent
# --------------------------------------------------------------------------------------------


def nt_xent_reference(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """Loop over the 2N anchors; softmax over the 2N - 1 other embeddings; positive = the other view."""
    z = torch.cat([z1, z2]).double()
    n2 = z.shape[0]
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        pos = (i + n) % n2
        sims = {j: float(z[i] @ z[j] / (z[i].norm() * z[j].norm())) / tau for j in range(n2) if j != i}
        denom = sum(math.exp(v) for v in sims.values())
        total += -math.log(math.exp(sims[pos]) / denom)
    return total / n2


@pytest.mark.parametrize("tau", [0.5, 0.1, 1.0])
def test_nt_xent_matches_direct_computation(tau: float) -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    got = float(nt_xent_loss(z1, z2, tau))
    assert got == pytest.approx(nt_xent_reference(z1, z2, tau), rel=1e-5)
    # symmetric in the two views, invariant to the embedding scale
    assert float(nt_xent_loss(z2, z1, tau)) == pytest.approx(got, rel=1e-5)
    assert float(nt_xent_loss(3 * z1, 0.5 * z2, tau)) == pytest.approx(got, rel=1e-5)


def test_nt_xent_aligned_views_lower_than_random() -> None:
    g = torch.Generator().manual_seed(1)
    n, d, tau = 8, 16, 0.5
    aligned = torch.eye(n, d) * 10  # orthogonal, well separated, views identical
    rnd1, rnd2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    low = float(nt_xent_loss(aligned, aligned, tau))
    high = float(nt_xent_loss(rnd1, rnd2, tau))
    assert low < high - 1.0
    # aligned, orthogonal: each anchor sees exp(2) for the positive and exp(0) for 2N - 2 negatives
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + (2 * n - 2)))
    assert low == pytest.approx(expected, rel=1e-5)
    # gradients flow to both views
    a, b = rnd1.clone().requires_grad_(True), rnd2.clone().requires_grad_(True)
    nt_xent_loss(a, b, tau).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------
# SimCLR training
# --------------------------------------------------------------------------------------------


def train_once(seed: int) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]]:
    images = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(123))
    enc = tiny(0)
    params = SimCLRParams(epochs=2, batch_size=8, lr=1e-3, temperature=0.5, crop_scale=(0.3, 1.0))
    history = train_simclr(enc, images, params, seed=seed, device=CPU, progress=False)
    assert not enc.training  # left in eval mode
    return {k: v.clone() for k, v in enc.state_dict().items()}, history


def test_train_simclr_runs_and_is_deterministic() -> None:
    before = {k: v.clone() for k, v in tiny(0).state_dict().items()}
    s1, h1 = train_once(seed=0)
    s2, h2 = train_once(seed=0)
    s3, _ = train_once(seed=1)
    assert [r["epoch"] for r in h1] == [1, 2]
    for r in h1:
        assert math.isfinite(r["loss"]) and r["loss"] > 0
        assert set(r) >= {"epoch", "loss", "lr"}
    assert h1[-1]["lr"] < 1e-3  # cosine schedule decays the learning rate
    assert h1 == h2
    assert s1.keys() == s2.keys()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert any(not torch.equal(s1[k], s3[k]) for k in s1 if s1[k].is_floating_point())
    assert any(not torch.equal(s1[k], before[k]) for k in s1 if s1[k].is_floating_point())  # it trained


def test_train_simclr_needs_two_images() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        train_simclr(tiny(), torch.rand(1, 3, 16, 16), SimCLRParams(epochs=1), seed=0, device=CPU, progress=False)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def randomise_bn(enc: Encoder) -> Encoder:
    """Give BatchNorm non-default running statistics so the round trip checks the buffers too."""
    g = torch.Generator().manual_seed(5)
    for mod in enc.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=g) - 0.5)
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
    return enc.eval()


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    enc = randomise_bn(tiny(3))
    path = tmp_path / "sub" / "encoder.pt"
    save_encoder(enc, path, "small_resnet", ARCH_PARAMS, extra={"epochs": 2})
    assert path.is_file() and not path.with_name(path.name + ".tmp").exists()
    loaded = load_encoder(path)
    assert not loaded.training
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(enc(x), loaded(x))
    assert loaded.normalised and torch.equal(loaded.baseline_pixel, enc.baseline_pixel)
    # a different initialisation gives different embeddings (the comparison above is not vacuous)
    with torch.no_grad():
        assert not torch.allclose(randomise_bn(tiny(4))(x), enc(x))


def _corrupt(path: Path, fn) -> None:
    payload = torch.load(path, weights_only=True)
    fn(payload)
    torch.save(payload, path)


def test_checkpoint_renamed_key_refused(tmp_path: Path) -> None:
    path = tmp_path / "renamed.pt"
    save_encoder(tiny(), path, "small_resnet", ARCH_PARAMS)

    def rename(p: dict) -> None:
        key = next(iter(p["state_dict"]))
        p["state_dict"]["renamed." + key] = p["state_dict"].pop(key)

    _corrupt(path, rename)
    with pytest.raises(CheckpointError) as err:
        load_encoder(path)
    assert str(path) in str(err.value)
    assert "renamed." in str(err.value)


def test_checkpoint_missing_key_refused(tmp_path: Path) -> None:
    path = tmp_path / "missing.pt"
    save_encoder(tiny(), path, "small_resnet", ARCH_PARAMS)
    _corrupt(path, lambda p: p["state_dict"].pop(sorted(p["state_dict"])[-1]))
    with pytest.raises(CheckpointError, match="missing"):
        load_encoder(path)


def test_checkpoint_wrong_shape_refused(tmp_path: Path) -> None:
    path = tmp_path / "shape.pt"
    save_encoder(tiny(), path, "small_resnet", ARCH_PARAMS)

    def reshape(p: dict) -> None:
        key = next(k for k, v in p["state_dict"].items() if v.ndim == 4)
        p["state_dict"][key] = torch.zeros(1, 1, 1, 1)

    _corrupt(path, reshape)
    with pytest.raises(CheckpointError) as err:
        load_encoder(path)
    assert str(path) in str(err.value)


def test_checkpoint_wrong_arch_params_refused(tmp_path: Path) -> None:
    """A checkpoint whose arch_params do not fit its weights (e.g. another width) is refused."""
    path = tmp_path / "arch.pt"
    save_encoder(tiny(), path, "small_resnet", {**ARCH_PARAMS, "width": 8})
    with pytest.raises(CheckpointError) as err:
        load_encoder(path)
    assert str(path) in str(err.value)


def test_checkpoint_missing_and_non_torch_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError) as err:
        load_encoder(missing)
    assert str(missing) in str(err.value)
    text = tmp_path / "text.pt"
    text.write_text("this is not a checkpoint\n")
    with pytest.raises(CheckpointError) as err:
        load_encoder(text)
    assert str(text) in str(err.value)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)  # a torch file, but not our format
    with pytest.raises(CheckpointError, match="format"):
        load_encoder(other)


# --------------------------------------------------------------------------------------------
# Encoder normalisation
# --------------------------------------------------------------------------------------------


def test_encoder_normalisation_and_baseline() -> None:
    enc = tiny()
    assert enc.normalised
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(enc.baseline_pixel, mean)
    baseline = enc.baseline_pixel.expand(2, 3, 5, 5)
    assert enc.normalise(baseline).abs().max() < 1e-7
    x = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(enc.normalise(x), (x - mean) / std)
    # features() applies the normalisation itself
    with torch.no_grad():
        torch.testing.assert_close(enc.features(x), enc.trunk((x - mean) / std))
        torch.testing.assert_close(enc(x), enc.head(enc.trunk((x - mean) / std).mean(dim=(2, 3))))

    torch.manual_seed(0)
    raw = build_architecture("small_resnet", **ARCH_PARAMS, normalise=False)
    assert not raw.normalised
    assert torch.equal(raw.baseline_pixel, torch.zeros(1, 3, 1, 1))
    assert torch.equal(raw.normalise(x), x)
    with pytest.raises(ValueError, match="mean and std"):
        Encoder(nn.Identity(), nn.Identity(), mean=IMAGENET_MEAN)


def test_architectures_registry() -> None:
    with pytest.raises(KeyError, match="small_resnet"):
        build_architecture("resnet1000")
    enc = tiny()
    with torch.no_grad():
        a = enc.eval().features(torch.rand(1, 3, 64, 64))
    assert a.shape == (1, 32, 8, 8)  # 8 * width channels, 64 / 8 px
    assert (a >= 0).all()  # the trunk ends in a ReLU (Grad-CAM relies on A >= 0)


@pytest.mark.parametrize(("strides", "side", "channels"), [((1, 2, 2, 2), 6, 32), ((2, 2, 2, 1), 6, 32), ((2, 2, 1, 1), 12, 32), ((2, 2), 12, 8)])
def test_small_resnet_strides_set_the_feature_map(strides: tuple[int, ...], side: int, channels: int) -> None:
    """48 px input: the side is 48 / prod(strides), the channels width * 2^(stages - 1)."""
    from xai_ssl.models.small_resnet import build_small_resnet

    enc = build_small_resnet(width=4, embedding_dim=8, hidden_dim=16, strides=strides).eval()
    with torch.no_grad():
        assert tuple(enc.features(torch.rand(2, 3, 48, 48)).shape) == (2, channels, side, side)
    with pytest.raises(ValueError, match="strides must be a non-empty list of 1s and 2s"):
        build_small_resnet(width=4, strides=(3, 1))
