"""Pixel invariance (Sammani et al. §3.10): shape, seeding, the surrogate fit and a synthetic localisation case."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import images, tiny_encoder
from xai_ssl.methods import MethodContext, get_method
from xai_ssl.methods.pixel_invariance import (
    fit_surrogate,
    invariance_dataset,
    pixel_invariance_one,
    weights_to_map,
)
from xai_ssl.models.encoder import Encoder

CPU = torch.device("cpu")
SPEC = get_method("pixel_invariance")


def run(enc: nn.Module, x1: torch.Tensor, params: dict, batch_size: int = 16, base: int = 5):
    ctx = MethodContext(device=CPU, batch_size=batch_size, seeds=[base * 100 + b for b in range(x1.shape[0])])
    return SPEC.fn(enc, x1, x1.flip(-1), SPEC.resolve_params(params, x1.shape[-1]), ctx)


def test_registry_and_scaling() -> None:
    assert SPEC.pair_family == "crop_aug" and SPEC.n_maps == 1 and SPEC.cost
    p = SPEC.resolve_params({}, 224)
    assert (p["surrogate_size"], p["blur_kernel"], p["blur_sigma"], p["epochs"], p["n_augmentations"]) == (64, 11, 5.0, 10, 1000)
    q = SPEC.resolve_params({}, 48)
    assert q["surrogate_size"] == 14 and q["blur_kernel"] % 2 == 1 and q["blur_kernel"] // 2 < 14
    with pytest.raises(ValueError, match="blur_kernel"):
        SPEC.resolve_params({"blur_kernel": 4}, 48)


@pytest.mark.parametrize("size", [48, 224])
def test_shape_and_single_map(size: int) -> None:
    enc = tiny_encoder()
    x1 = images(2 if size == 48 else 1, size, seed=1)
    m1, m2 = run(enc, x1, {"n_augmentations": 16, "epochs": 2})
    s = SPEC.resolve_params({}, size)["surrogate_size"]
    assert m2 is None and m1.shape == (x1.shape[0], s, s)
    assert torch.isfinite(m1).all() and m1.max() > 0 and m1.min() >= 0


def test_deterministic_and_seeded_per_image() -> None:
    enc = tiny_encoder()
    x1 = images(2, 32, seed=2)
    params = {"n_augmentations": 20, "epochs": 3, "lr": 1e-3}
    a, _ = run(enc, x1, params, batch_size=16)
    assert torch.equal(a, run(enc, x1.clone(), params, batch_size=16)[0])
    b, _ = run(enc, x1.clone(), params, batch_size=7)  # the draws do not depend on the batch size
    torch.testing.assert_close(a, b, atol=1e-9, rtol=0)
    c, _ = run(enc, x1, params, base=6)
    assert not torch.allclose(a, c)
    v_p, v, y = invariance_dataset(enc, x1[0], SPEC.resolve_params(params, 32), 500, 8)
    assert v.shape == (20, 3 * 9 * 9) and v_p.shape == (3 * 9 * 9,) and y.shape == (20,)
    assert (y <= 1 + 1e-9).all() and y.std() > 0  # the augmentations move the similarity


def test_surrogate_loss_decreases_and_matches_closed_form_step() -> None:
    enc = tiny_encoder()
    x = images(1, 32, seed=3)[0]
    params = SPEC.resolve_params({"n_augmentations": 64, "epochs": 30, "lr": 1e-3}, 32)
    v_p, v, y = invariance_dataset(enc, x, params, 7, 32)
    w, b, losses = fit_surrogate(v_p, v, y, params, 7)
    assert len(losses) == 31 and losses[-1] < 0.9 * losses[0] and max(losses[15:]) < losses[0]
    # one SGD step by hand: d/dw Σ BCE(ŷ, y) = Σ (σ(ŷ) − y) · (v_P + v_n)/2, plus l1 · sign(w)
    w0, b0, _ = fit_surrogate(v_p, v, y, {**params, "epochs": 0}, 7)
    w1, b1, _ = fit_surrogate(v_p, v, y, {**params, "epochs": 1}, 7)
    mid = (v_p[None] + v) / 2
    r = torch.sigmoid(mid @ w0 + b0) - y
    torch.testing.assert_close(w1, w0 - 1e-3 * (mid.T @ r + 0.2 * torch.sign(w0)), atol=1e-12, rtol=0)
    torch.testing.assert_close(b1, b0 - 1e-3 * (r.sum() + 0.2 * torch.sign(b0)), atol=1e-12, rtol=0)


def test_weights_to_map_steps() -> None:
    w = torch.zeros(3, 4, 4, dtype=torch.float64)
    w[1, 0, 0], w[0, 3, 3], w[:, 1, 1] = 2.0, 1.0, -1.0  # channel max, min-max: (0,0) -> 1, (3,3) -> 2/3, (1,1) -> 0, rest 1/3
    m = weights_to_map(w.flatten(), 4, {"threshold": 0.5, "blur_kernel": 1, "blur_sigma": 1.0})
    expected = torch.zeros(4, 4, dtype=torch.float64)
    expected[0, 0], expected[3, 3] = 1.0, 2 / 3
    torch.testing.assert_close(m, expected, atol=1e-12, rtol=0)


class Region(nn.Module):
    """Trunk whose 'feature map' is the centred pixels of one quadrant, flattened (so f depends on it only)."""

    def __init__(self, size: int, corner: str) -> None:
        super().__init__()
        self.h, self.corner = size // 2, corner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = x[:, :, : self.h, : self.h] if self.corner == "top_left" else x[:, :, self.h :, self.h :]
        return (q - 0.5).flatten(1)[:, :, None, None]


@pytest.mark.parametrize("corner", ["top_left", "bottom_right"])
def test_map_mass_concentrates_where_the_similarity_looks(corner: str) -> None:
    """Weak but failable: on average over 3 images, most of the map lies in the quadrant f depends on (chance 1/4)."""
    size = 64
    enc = Encoder(Region(size, corner), nn.Identity()).double().eval()
    params = SPEC.resolve_params({"n_augmentations": 256, "epochs": 100, "lr": 1e-3}, size)
    s = params["surrogate_size"]
    h = s // 2
    fractions = []
    for seed in range(3):
        m, _ = pixel_invariance_one(enc, images(1, size, seed=seed)[0], params, seed, 64)
        inside = m[:h, :h] if corner == "top_left" else m[s - h :, s - h :]
        fractions.append(float(inside.sum() / m.sum()))
    assert sum(fractions) / 3 > 0.5, fractions
