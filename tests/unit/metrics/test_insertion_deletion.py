"""Insertion / deletion (SI, SD, CI, CD) against reference loops and an analytic encoder; summary tables."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import nn

import helpers
from xai_ssl.methods import MethodContext
from xai_ssl.metrics import METRIC_REGISTRY, get_metric
from xai_ssl.metrics.insertion_deletion import (
    auc,
    conditional_curve,
    pixel_ranks,
    simultaneous_curve,
)
from xai_ssl.models import Encoder
from xai_ssl.tables import summary_table, to_markdown

CPU = torch.device("cpu")
ID = get_metric("insertion_deletion")
DIRECTIONS = {"SI": "↑", "SD": "↓", "CI": "↑", "CD": "↓"}


def ctx(batch_size: int = 32) -> MethodContext:
    return MethodContext(device=CPU, batch_size=batch_size)


tiny_encoder = partial(helpers.tiny_encoder, fit_size=12)  # statistics fitted at 12 px


def rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def cos_np(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-8))


def trapezoid_auc(curve: np.ndarray) -> float:
    """Trapezoid rule on an x-axis of [0, 1] with T equal steps (written independently of the library)."""
    t = len(curve) - 1
    return float(sum((curve[i] + curve[i + 1]) / 2 for i in range(t)) / t)


def descending_order(m: np.ndarray) -> np.ndarray:
    """Flat pixel indices in descending map order, ties by flat index."""
    return np.argsort(-m.ravel(), kind="stable")


# --------------------------------------------------------------------------------------------
# AUC and ranking
# --------------------------------------------------------------------------------------------


def test_auc_hand_values() -> None:
    assert auc(np.array([1.0, 0.5, 0.0])) == pytest.approx(0.5)
    assert auc(np.array([0.0, 1.0])) == pytest.approx(0.5)
    assert auc(np.array([0.0, 0.0, 0.0, 1.0])) == pytest.approx(1 / 6)  # normalised by T = 3, not by T + 1
    assert auc(np.array([1.0, 0.0, 0.0, 0.0, 0.0])) == pytest.approx(0.125)
    for c in (0.3, -0.7, 1.0):
        assert auc(np.full(225, c)) == pytest.approx(c)
    curves = np.array([[1.0, 0.5, 0.0], [0.2, 0.2, 0.2]])
    np.testing.assert_allclose(auc(curves), [0.5, 0.2])
    r = np.random.default_rng(0).random((4, 17))
    np.testing.assert_allclose(auc(r), [trapezoid_auc(c) for c in r], rtol=1e-12)


def test_pixel_ranks_descending_and_stable() -> None:
    m = torch.tensor([[3.0, 1.0], [3.0, 0.0]])
    assert pixel_ranks(m).tolist() == [0, 2, 1, 3]  # tie 3.0 at flat 0 and 2: index 0 first
    m = torch.tensor([[0.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    assert pixel_ranks(m).tolist() == [1, 2, 3, 4, 0, 5]
    g = torch.Generator().manual_seed(0)
    m = torch.randint(0, 6, (9, 9), generator=g).double()  # many ties
    ranks = pixel_ranks(m)
    assert sorted(ranks.tolist()) == list(range(81))
    order = torch.empty_like(ranks)
    order[ranks] = torch.arange(81)
    np.testing.assert_array_equal(order.numpy(), descending_order(m.numpy()))
    vals = m.flatten()[order]
    assert (vals[:-1] >= vals[1:]).all()
    for f in (torch.exp, lambda x: 3 * x + 1, lambda x: x**3):
        assert torch.equal(pixel_ranks(f(m)), ranks)


# --------------------------------------------------------------------------------------------
# Curves against a per-step reference loop
# --------------------------------------------------------------------------------------------


def ref_images(start: torch.Tensor, target: torch.Tensor, m: torch.Tensor, pps: int) -> list[torch.Tensor]:
    """x^(0..T): at step i the first i*pps pixels of the ranking come from target (all channels)."""
    h, w = start.shape[-2:]
    order = descending_order(m.numpy())
    t = math.ceil(h * w / pps)
    out = []
    for i in range(t + 1):
        img = start.clone()
        idx = order[: i * pps]
        rows, cols = idx // w, idx % w
        img[:, rows, cols] = target.expand_as(start)[:, rows, cols]
        out.append(img)
    return out


def ref_conditional(enc: Encoder, start, target, m, cond, pps: int) -> np.ndarray:
    with torch.no_grad():
        return np.array([float(F.cosine_similarity(enc(img[None]), enc(cond[None]), eps=1e-8)) for img in ref_images(start, target, m, pps)])


def ref_simultaneous(enc: Encoder, s1, t1, m1, s2, t2, m2, pps: int) -> np.ndarray:
    with torch.no_grad():
        return np.array(
            [
                float(F.cosine_similarity(enc(a[None]), enc(b[None]), eps=1e-8))
                for a, b in zip(ref_images(s1, t1, m1, pps), ref_images(s2, t2, m2, pps))
            ]
        )


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_curves_match_reference_loop(batch_size: int) -> None:
    enc = tiny_encoder()
    size, pps = 12, 10  # 144 px, T = 15 steps, the last one replaces only 4 pixels
    x1, x2 = rand(3, size, size, seed=1), rand(3, size, size, seed=2)
    m1 = torch.round(rand(size, size, seed=3) * 6)  # ties on purpose
    m2 = rand(size, size, seed=4)
    fill = enc.baseline_pixel[0].expand_as(x1)
    blurred1 = TF.gaussian_blur(x1, [5, 5], [2.0, 2.0])
    blurred2 = TF.gaussian_blur(x2, [5, 5], [2.0, 2.0])
    r1, r2 = pixel_ranks(m1), pixel_ranks(m2)
    with torch.no_grad():
        z1, z2 = enc(x1[None])[0], enc(x2[None])[0]

    got = conditional_curve(enc, x1, fill, r1, z2, pps, batch_size).numpy()
    ref = ref_conditional(enc, x1, fill, m1, x2, pps)
    assert got.shape == ref.shape == (16,)
    np.testing.assert_allclose(got, ref, atol=1e-9)
    got = conditional_curve(enc, blurred2, x2, r2, z1, pps, batch_size).numpy()
    np.testing.assert_allclose(got, ref_conditional(enc, blurred2, x2, m2, x1, pps), atol=1e-9)

    got = simultaneous_curve(enc, x1, fill, r1, x2, fill, r2, pps, batch_size).numpy()
    ref = ref_simultaneous(enc, x1, fill, m1, x2, fill, m2, pps)
    assert got.shape == (16,)
    np.testing.assert_allclose(got, ref, atol=1e-9)
    got = simultaneous_curve(enc, blurred1, x1, r1, blurred2, x2, r2, pps, batch_size).numpy()
    np.testing.assert_allclose(got, ref_simultaneous(enc, blurred1, x1, m1, blurred2, x2, m2, pps), atol=1e-9)
    assert np.ptp(ref) > 1e-3  # a curve that actually moves


@pytest.mark.parametrize("batch_size", [4, 5])
def test_metric_function_matches_reference_loop(batch_size: int) -> None:
    """The whole insertion_deletion metric (2 images, maps at a coarser size) against the reference loops.

    Batch 5 does not divide the 16 points of a curve: batches straddle curves and images.
    """
    enc = tiny_encoder()
    size, pps, k, sigma = 12, 10, 5, 2.0
    x1, x2 = rand(2, 3, size, size, seed=5), rand(2, 3, size, size, seed=6)
    map1, map2 = rand(2, 4, 4, seed=7), rand(2, 4, 4, seed=8)
    params = ID.resolve_params({"pixels_per_step": pps, "blur_kernel": k, "blur_sigma": sigma}, size)
    scores, curves = ID.fn(enc, x1, x2, map1, map2, params, ctx(batch_size))
    fill = enc.baseline_pixel[0].expand_as(x1[0])
    for b in range(2):
        up1 = F.interpolate(map1[b][None, None].float(), size=(size, size), mode="bilinear", align_corners=False)[0, 0]
        up2 = F.interpolate(map2[b][None, None].float(), size=(size, size), mode="bilinear", align_corners=False)[0, 0]
        bl1 = TF.gaussian_blur(x1[b], [k, k], [sigma, sigma])
        bl2 = TF.gaussian_blur(x2[b], [k, k], [sigma, sigma])
        ref = {
            "CD_1": ref_conditional(enc, x1[b], fill, up1, x2[b], pps),
            "CD_2": ref_conditional(enc, x2[b], fill, up2, x1[b], pps),
            "CI_1": ref_conditional(enc, bl1, x1[b], up1, x2[b], pps),
            "CI_2": ref_conditional(enc, bl2, x2[b], up2, x1[b], pps),
            "SD": ref_simultaneous(enc, x1[b], fill, up1, x2[b], fill, up2, pps),
            "SI": ref_simultaneous(enc, bl1, x1[b], up1, bl2, x2[b], up2, pps),
        }
        for name, c in ref.items():
            np.testing.assert_allclose(curves[name][b], c, atol=1e-9, err_msg=name)
            assert scores[name][b] == pytest.approx(trapezoid_auc(c), abs=1e-9)
        assert scores["CI"][b] == pytest.approx((scores["CI_1"][b] + scores["CI_2"][b]) / 2)
        assert scores["CD"][b] == pytest.approx((scores["CD_1"][b] + scores["CD_2"][b]) / 2)


def test_curve_batches_are_full_but_the_last() -> None:
    """All curve images of a chunk form one stream: every forward but the last has ``batch_size`` images."""
    enc = tiny_encoder()
    sizes: list[int] = []
    forward = enc.forward

    def counting(x: torch.Tensor) -> torch.Tensor:
        sizes.append(x.shape[0])
        return forward(x)

    enc.forward = counting  # type: ignore[method-assign]
    size, pps = 12, 10  # 16 points per curve, 8 curve sources per image
    x1, x2 = rand(3, 3, size, size, seed=11), rand(3, 3, size, size, seed=12)
    params = ID.resolve_params({"pixels_per_step": pps, "blur_kernel": 3, "blur_sigma": 1.0}, size)
    ID.fn(enc, x1, x2, rand(3, 4, 4, seed=13), rand(3, 4, 4, seed=14), params, ctx(7))
    curve_batches = sizes[2:]  # after the two condition forwards
    assert sum(curve_batches) == 3 * 8 * 16
    assert all(s == 7 for s in curve_batches[:-1]) and 1 <= curve_batches[-1] <= 7


def test_curve_endpoints_and_length() -> None:
    enc = tiny_encoder(normalise=True)
    size, pps = 10, 7  # T = ceil(100 / 7) = 15
    x1, x2 = rand(1, 3, size, size, seed=9), rand(1, 3, size, size, seed=10)
    params = ID.resolve_params({"pixels_per_step": pps, "blur_kernel": 3, "blur_sigma": 1.0}, size)
    _, curves = ID.fn(enc, x1, x2, rand(1, size, size, seed=11), rand(1, size, size, seed=12), params, ctx())
    assert set(curves) == {"SI", "SD", "CI_1", "CI_2", "CD_1", "CD_2"}
    for c in curves.values():
        assert c.shape == (1, math.ceil(size * size / pps) + 1) == (1, 16)
    with torch.no_grad():
        z1, z2 = enc(x1), enc(x2)
        base = float(F.cosine_similarity(z1, z2))
        black = enc.baseline_pixel.expand_as(x1)  # zero in model-input space: the ImageNet mean colour
        zb = enc(black)
        assert enc.normalise(black).abs().max() < 1e-6
    for name in ("SD", "CD_1", "CD_2"):
        assert curves[name][0, 0] == pytest.approx(base, abs=1e-9)  # s_0: the unperturbed pair
    for name in ("CI_1", "CI_2", "SI"):
        assert curves[name][0, -1] == pytest.approx(base, abs=1e-9)  # insertion ends at the original pair
    assert curves["CD_1"][0, -1] == pytest.approx(float(F.cosine_similarity(zb, z2)), abs=1e-9)
    assert curves["CD_2"][0, -1] == pytest.approx(float(F.cosine_similarity(z1, zb)), abs=1e-9)
    assert curves["SD"][0, -1] == pytest.approx(1.0, abs=1e-9)  # both views fully deleted: the same image
    assert abs(curves["CD_1"][0, -1] - base) > 1e-4


# --------------------------------------------------------------------------------------------
# An analytic encoder: the embedding only sees the region R
# --------------------------------------------------------------------------------------------


class MaskTrunk(nn.Module):
    """Keeps the pixel values inside a fixed region R and zeroes everything else."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask[None, None].double())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


SIZE = 12
REGION = (slice(2, 6), slice(5, 9))  # a 4 x 4 block, 16 of 144 pixels


def analytic_setup():
    mask = torch.zeros(SIZE, SIZE, dtype=torch.float64)
    mask[REGION] = 1
    torch.manual_seed(0)
    head = nn.Linear(3, 4).double()
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.3, -0.3, 0.0]]))
        head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.01]))
    enc = Encoder(MaskTrunk(mask), head).double().eval()  # no normalisation: the baseline is black
    # x1: a red region R on a green background (blurring mixes green into R and changes its embedding)
    x1 = torch.zeros(1, 3, SIZE, SIZE, dtype=torch.float64)
    x1[0, 1] = 0.7
    x1[0, 0][REGION] = 1.0
    x1[0, 1][REGION] = 0.0
    x2 = (x1 + 0.05 * rand(1, 3, SIZE, SIZE, seed=13)).clamp(0, 1)
    w, b = head.weight.detach().numpy(), head.bias.detach().numpy()

    def embed(img: torch.Tensor) -> np.ndarray:  # [3, H, W] -> z, by hand
        return w @ (img.numpy() * mask.numpy()).mean(axis=(1, 2)) + b

    perfect = mask + 0.5 * rand(SIZE, SIZE, seed=14)  # R in [1, 1.5), outside in [0, 0.5)
    reverse = -perfect
    return enc, x1, x2, embed, perfect, reverse


def analytic_curve(embed, start: torch.Tensor, target: torch.Tensor, m: torch.Tensor, cond: torch.Tensor, pps: int) -> np.ndarray:
    zc = embed(cond)
    return np.array([cos_np(embed(img), zc) for img in ref_images(start, target, m, pps)])


def test_analytic_deletion_and_insertion() -> None:
    enc, x1, x2, embed, perfect, reverse = analytic_setup()
    pps, k, sigma = SIZE, 5, 2.0  # T = 12 steps
    params = ID.resolve_params({"pixels_per_step": pps, "blur_kernel": k, "blur_sigma": sigma}, SIZE)
    res = {}
    for name, m in (("perfect", perfect), ("reverse", reverse)):
        scores, curves = ID.fn(enc, x1, x2, m[None], None, params, ctx(5))
        res[name] = (scores, curves)
        black = torch.zeros(3, SIZE, SIZE, dtype=torch.float64)
        blurred = TF.gaussian_blur(x1[0], [k, k], [sigma, sigma])
        cd = analytic_curve(embed, x1[0], black, m, x2[0], pps)
        ci = analytic_curve(embed, blurred, x1[0], m, x2[0], pps)
        np.testing.assert_allclose(curves["CD_1"][0], cd, atol=1e-9)
        np.testing.assert_allclose(curves["CI_1"][0], ci, atol=1e-9)
        assert scores["CD"][0] == pytest.approx(trapezoid_auc(cd), abs=1e-9)
        assert scores["CI"][0] == pytest.approx(trapezoid_auc(ci), abs=1e-9)
    p_scores, p_curves = res["perfect"]
    r_scores, r_curves = res["reverse"]
    # Perfect map: R (16 px) is gone after 2 steps of 12 px, then the curve is flat at cos(b, z2).
    cd = p_curves["CD_1"][0]
    assert np.ptp(cd[2:]) < 1e-12 and cd[0] - cd[2] > 0.1
    # Reversed map: R is deleted in the last 2 steps; before that nothing changes.
    cd_r = r_curves["CD_1"][0]
    assert np.ptp(cd_r[:11]) < 1e-12 and cd_r[0] == pytest.approx(cd[0])
    assert p_scores["CD"][0] < r_scores["CD"][0] - 0.1
    assert p_scores["CI"][0] > r_scores["CI"][0] + 0.05
    # Only the first direction exists without a second map
    assert set(p_scores) == {"CD_1", "CI_1", "CD", "CI", "SI", "SD"}
    assert math.isnan(p_scores["SI"][0]) and math.isnan(p_scores["SD"][0])
    assert p_scores["CD"][0] == p_scores["CD_1"][0] and p_scores["CI"][0] == p_scores["CI_1"][0]
    assert set(p_curves) == {"CD_1", "CI_1"}


def test_analytic_simultaneous() -> None:
    """Both maps perfect vs both reversed: SD low / SI high for perfect maps, checked against a hand loop."""
    enc, x1, x2, embed, perfect, reverse = analytic_setup()
    pps, k, sigma = SIZE, 5, 2.0
    params = ID.resolve_params({"pixels_per_step": pps, "blur_kernel": k, "blur_sigma": sigma}, SIZE)
    out = {}
    for name, m in (("perfect", perfect), ("reverse", reverse)):
        scores, curves = ID.fn(enc, x1, x2, m[None], m[None], params, ctx(3))
        black = torch.zeros(3, SIZE, SIZE, dtype=torch.float64)
        sd = [
            cos_np(embed(a), embed(b))
            for a, b in zip(ref_images(x1[0], black, m, pps), ref_images(x2[0], black, m, pps))
        ]
        bl1 = TF.gaussian_blur(x1[0], [k, k], [sigma, sigma])
        bl2 = TF.gaussian_blur(x2[0], [k, k], [sigma, sigma])
        si = [cos_np(embed(a), embed(b)) for a, b in zip(ref_images(bl1, x1[0], m, pps), ref_images(bl2, x2[0], m, pps))]
        np.testing.assert_allclose(curves["SD"][0], sd, atol=1e-9)
        np.testing.assert_allclose(curves["SI"][0], si, atol=1e-9)
        out[name] = scores
        if name == "perfect":
            # R is gone from both images after 2 steps: both embeddings equal the bias, so SD jumps to 1
            # (simultaneous deletion rewards this map with a *high* SD; only the conditional curve drops)
            np.testing.assert_allclose(curves["SD"][0, 2:], 1.0, atol=1e-12)
            assert curves["SD"][0, 0] < 1 - 1e-4
    assert out["perfect"]["CD"][0] < out["reverse"]["CD"][0] - 0.1
    assert out["perfect"]["CI"][0] > out["reverse"]["CI"][0] + 0.05
    assert out["perfect"]["SD"][0] > out["reverse"]["SD"][0]


# --------------------------------------------------------------------------------------------
# Parameters and registry
# --------------------------------------------------------------------------------------------


def test_parameters_scale_and_unknown_refused() -> None:
    assert "insertion_deletion" in METRIC_REGISTRY
    assert ID.directions == DIRECTIONS
    p = ID.resolve_params({}, 224)
    assert (p["pixels_per_step"], p["blur_kernel"], p["blur_sigma"]) == (224, 11, 5.0)
    p = ID.resolve_params({}, 64)
    assert p["pixels_per_step"] == 64
    assert p["blur_kernel"] == 3 and p["blur_kernel"] % 2 == 1
    assert p["blur_sigma"] == pytest.approx(5.0 * 64 / 224)
    p = ID.resolve_params({"pixels_per_step": 7, "blur_kernel": 9, "blur_sigma": 3.0}, 64)
    assert (p["pixels_per_step"], p["blur_kernel"], p["blur_sigma"]) == (7, 9, 3.0)
    with pytest.raises(KeyError, match="pixel_per_step"):
        ID.resolve_params({"pixel_per_step": 3}, 64)
    with pytest.raises(ValueError, match="pixels_per_step"):
        ID.resolve_params({"pixels_per_step": 0}, 64)
    with pytest.raises(ValueError, match="pixels_per_step"):
        ID.resolve_params({"pixels_per_step": 64 * 64 + 1}, 64)
    with pytest.raises(KeyError, match="accepted"):
        get_metric("average_drop_typo")


def test_metric_scores_deterministic_and_batch_invariant() -> None:
    enc = tiny_encoder()
    x1, x2 = rand(1, 3, 10, 10, seed=15), rand(1, 3, 10, 10, seed=16)
    m1, m2 = rand(1, 5, 5, seed=17), rand(1, 5, 5, seed=18)
    params = ID.resolve_params({"pixels_per_step": 9, "blur_kernel": 3, "blur_sigma": 1.0}, 10)
    a, _ = ID.fn(enc, x1, x2, m1, m2, params, ctx(1))
    b, _ = ID.fn(enc, x1, x2, m1, m2, params, ctx(1000))
    for key in ("SI", "SD", "CI", "CD", "CI_1", "CI_2", "CD_1", "CD_2"):
        assert a[key][0] == pytest.approx(b[key][0], abs=1e-10)


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def test_summary_table_and_markdown() -> None:
    per_image = pd.DataFrame(
        {
            "method": ["gradcam", "gradcam", "occ", "occ", "occ", "single"],
            "image_id": ["a", "b", "a", "b", "c", "a"],
            "SI": [0.1, 0.3, 0.5, 0.7, 0.9, np.nan],
            "SD": [0.2, 0.2, 0.1, 0.1, 0.4, np.nan],
            "CI": [0.6, 0.8, 0.25, 0.35, 0.45, 0.12345],
            "CD": [0.0, 1.0, 0.3, 0.3, 0.3, 0.5],
            "CI_1": [0.6, 0.8, 0.25, 0.35, 0.45, 0.12345],
        }
    )
    table = summary_table(per_image, DIRECTIONS, ["occ", "single", "gradcam", "absent"])
    assert list(table.index) == ["occ", "single", "gradcam"]
    assert list(table.columns) == ["SI", "SD", "CI", "CD", "n_images"]
    assert table.loc["gradcam", "SI"] == pytest.approx(0.2)
    assert table.loc["occ", "SI"] == pytest.approx(0.7)
    assert table.loc["occ", "SD"] == pytest.approx(0.2)
    assert table.loc["gradcam", "CD"] == pytest.approx(0.5)
    assert table.loc["occ", "n_images"] == 3 and table.loc["single", "n_images"] == 1
    assert math.isnan(table.loc["single", "SI"])
    md = to_markdown(table, DIRECTIONS)
    lines = md.strip().split("\n")
    assert lines[0] == "| method | SI↑ | SD↓ | CI↑ | CD↓ |"
    assert lines[1] == "|---|---|---|---|---|"
    assert lines[2] == "| occ | 0.700 | 0.200 | 0.350 | 0.300 |"
    assert lines[3] == "| single | NA | NA | 0.123 | 0.500 |"
    assert lines[4] == "| gradcam | 0.200 | 0.200 | 0.700 | 0.500 |"
    assert len(lines) == 5
    titled = to_markdown(table, DIRECTIONS, title="synthetic / simclr_small")
    assert titled.startswith("### synthetic / simclr_small\n\n| method |")
