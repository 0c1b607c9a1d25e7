"""Context-agnostic and pairwise occlusion, Interaction-CAM and feature visualisation against Captum,
plain loops and hand computations (Sammani et al. §3.2, §3.3, §3.5, §3.11)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from helpers import images, require_module, tiny_encoder
from xai_ssl.engine import cosine
from xai_ssl.methods import MethodContext, get_method
from xai_ssl.methods.feature_visualisation import (
    default_up_until,
    gaussian_blur_hw,
    octave_sizes,
    total_variation,
    truncated_trunk,
)
from xai_ssl.methods.pairwise_occlusion import erase_rectangles
from xai_ssl.models import Encoder, build_architecture
from xai_ssl.models.torchvision_resnet import build_torchvision_resnet_encoder

captum_attr = require_module("captum.attr")

CPU = torch.device("cpu")


def run(name: str, enc: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict | None = None, batch_size: int = 32, seeds: list[int] | None = None):
    spec = get_method(name)
    ctx = MethodContext(device=CPU, batch_size=batch_size, seeds=seeds if seeds is not None else [100 + i for i in range(x1.shape[0])])
    return spec.fn(enc, x1, x2, spec.resolve_params(params or {}, x1.shape[-1]), ctx)


def fill_value(enc: Encoder, x: torch.Tensor) -> torch.Tensor:
    """The model-input zero as a pixel value [3, 1, 1]."""
    return enc.baseline_pixel[0].to(x.dtype)


def minmax(m: torch.Tensor) -> torch.Tensor:
    return (m - m.min()) / (m.max() - m.min())


# --------------------------------------------------------------------------------------------
# Context-agnostic occlusion
# --------------------------------------------------------------------------------------------


def loop_context_agnostic(enc: Encoder, x: torch.Tensor, other: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Plain reference: keep-only and occluded image of each window, one forward each; min-max; [K, K]."""
    size = x.shape[-1]
    k = (size - window) // stride + 1
    fill = fill_value(enc, x)
    out = torch.empty(k, k, dtype=x.dtype)
    with torch.no_grad():
        z_other = enc(other)
        for i in range(k):
            for j in range(k):
                rows, cols = slice(i * stride, i * stride + window), slice(j * stride, j * stride + window)
                keep = fill.expand_as(x[0]).clone()[None]
                keep[0, :, rows, cols] = x[0, :, rows, cols]
                occ = x.clone()
                occ[0, :, rows, cols] = fill
                out[i, j] = cosine(enc(keep) - enc(occ), z_other)[0]
    return minmax(out)


@pytest.mark.parametrize("normalise", [True, False])
def test_context_agnostic_matches_loop(normalise: bool) -> None:
    enc = tiny_encoder(normalise=normalise)
    size, window, stride = 18, 6, 4  # K = 4, overlapping windows
    x1, x2 = images(2, size, seed=1), images(2, size, seed=2)
    m1, m2 = run("context_agnostic_occlusion", enc, x1, x2, {"window": window, "stride": stride}, batch_size=5)
    assert m1.shape == m2.shape == (2, 4, 4)
    for b in range(2):
        torch.testing.assert_close(m1[b], loop_context_agnostic(enc, x1[b : b + 1], x2[b : b + 1], window, stride), atol=1e-10, rtol=0)
        torch.testing.assert_close(m2[b], loop_context_agnostic(enc, x2[b : b + 1], x1[b : b + 1], window, stride), atol=1e-10, rtol=0)
    assert m1.min() == 0 and m1.amax(dim=(1, 2)).eq(1).all()  # min-max normalised per map
    assert not torch.allclose(m1, m2)


def test_context_agnostic_matches_captum() -> None:
    """Captum Occlusion (window == stride, baseline 0 in model-input space) of F(y) = -cos(f(x - y) - f(y), f(other)).

    In model-input space the keep-only image of a window is x - y (y = x with the window zeroed), so
    Captum's F(x) - F(y_ij) = cos(d_ij, f(other)) + const; min-max removes the constant.
    """
    enc = tiny_encoder()
    size, w = 16, 4
    x1, x2 = images(1, size, seed=3), images(1, size, seed=4)
    m1, m2 = run("context_agnostic_occlusion", enc, x1, x2, {"window": w, "stride": w})
    for ours, x, other in ((m1, x1, x2), (m2, x2, x1)):
        with torch.no_grad():
            z_other = enc(other)
        xn = enc.normalise(x)

        def forward(yn: torch.Tensor) -> torch.Tensor:
            f = lambda u: enc.embed_features(enc.trunk(u))  # noqa: E731
            return -cosine(f(xn - yn) - f(yn), z_other.expand(yn.shape[0], -1))

        attr = captum_attr.Occlusion(forward).attribute(xn, sliding_window_shapes=(3, w, w), strides=(3, w, w), baselines=0.0)
        blocks = attr[0, 0, ::w, ::w].double()  # one value per window (constant within it, same for all channels)
        torch.testing.assert_close(attr[0, 1], attr[0, 0])
        torch.testing.assert_close(minmax(blocks), ours[0], atol=1e-4, rtol=0)  # Captum accumulates in float32
        assert blocks.max() - blocks.min() > 1e-3


def test_conditional_occlusion_matches_captum_unnormalised() -> None:
    """Conditional occlusion vs Captum for an encoder without input normalisation (fill = black), window == stride."""
    enc = tiny_encoder(normalise=False)
    x1, x2 = images(1, 18, seed=5), images(1, 18, seed=6)
    m1, _ = run("conditional_occlusion", enc, x1, x2, {"window": 6, "stride": 6})
    with torch.no_grad():
        z2 = enc(x2)
    occ = captum_attr.Occlusion(lambda xn: cosine(enc.embed_features(enc.trunk(xn)), z2.expand(xn.shape[0], -1)))
    attr = occ.attribute(enc.normalise(x1), sliding_window_shapes=(3, 6, 6), strides=(3, 6, 6), baselines=0.0).double()
    up = m1[0].repeat_interleave(6, 0).repeat_interleave(6, 1)
    for c in range(3):
        torch.testing.assert_close(up, attr[0, c], atol=1e-5, rtol=0)
    assert up.abs().max() > 1e-4


def test_context_agnostic_batch_size_invariant_and_forward_sizes() -> None:
    enc = tiny_encoder()
    x1, x2 = images(1, 16, seed=7), images(1, 16, seed=8)
    params = {"window": 5, "stride": 3}  # K = 4
    calls: list[int] = []
    handle = enc.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
    try:
        ref = run("context_agnostic_occlusion", enc, x1, x2, params, batch_size=6)
    finally:
        handle.remove()
    assert calls[:2] == [1, 1]  # each fixed side embedded once
    assert calls[2:] == [6] * 5 + [2] + [6] * 5 + [2]  # 16 windows, 3 per forward -> 2*3 images per forward
    for bs in (1, 1000):
        got = run("context_agnostic_occlusion", enc, x1, x2, params, batch_size=bs)
        torch.testing.assert_close(got[0], ref[0], atol=1e-12, rtol=0)
        torch.testing.assert_close(got[1], ref[1], atol=1e-12, rtol=0)


def test_context_agnostic_default_window_scales() -> None:
    spec = get_method("context_agnostic_occlusion")
    assert spec.pair_family == "crop_aug"
    assert spec.resolve_params({}, 224) == {"window": 64, "stride": 8}
    assert spec.resolve_params({}, 48) == {"window": 14, "stride": 2}
    with pytest.raises(ValueError, match="larger than the image"):
        spec.resolve_params({"window": 17}, 16)


# --------------------------------------------------------------------------------------------
# Pairwise occlusion
# --------------------------------------------------------------------------------------------


def loop_pairwise(enc: Encoder, x1: torch.Tensor, x2: torch.Tensor, seed: int, n: int, zero_sum: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain reference with the same rectangles: one erased pair per forward; x_k [1, 3, H, W] -> maps [H, W]."""
    size = x1.shape[-1]
    g = torch.Generator().manual_seed(seed)
    r1 = erase_rectangles(n, size, size, (0.1, 0.3), (1.0, 1.5), g)
    r2 = erase_rectangles(n, size, size, (0.1, 0.3), (1.0, 1.5), g)
    fill = fill_value(enc, x1)
    a1 = torch.zeros(size, size, dtype=x1.dtype)
    a2 = torch.zeros(size, size, dtype=x1.dtype)
    drops, creds = [], []
    with torch.no_grad():
        base = cosine(enc(x1), enc(x2))[0]
        for s in range(n):
            es, masks = [], []
            for x, (t, l, h, w) in ((x1, r1[s].tolist()), (x2, r2[s].tolist())):
                e = x.clone()
                e[0, :, t : t + h, l : l + w] = fill
                mask = torch.zeros(size, size, dtype=x1.dtype)
                mask[t : t + h, l : l + w] = 1
                if zero_sum:
                    mask = (enc.normalise(e)[0].sum(0) == 0).to(x1.dtype)
                es.append(e)
                masks.append(mask)
            z1, z2 = enc(es[0]), enc(es[1])
            drops.append(base - cosine(z1, z2)[0])
            creds.append((z1.norm() < z2.norm(), masks))
    weights = torch.softmax(torch.stack(drops), 0)
    for wgt, (first, (mk1, mk2)) in zip(weights, creds):
        if first:
            a1 += wgt * mk1
        else:
            a2 += wgt * mk2
    return a1 / (a1.max() + 1e-9), a2 / (a2.max() + 1e-9)


def test_pairwise_matches_loop() -> None:
    enc = tiny_encoder()
    x1, x2 = images(2, 20, seed=9), images(2, 20, seed=10)
    seeds = [11, 12]
    m1, m2 = run("pairwise_occlusion", enc, x1, x2, {"n_erases": 12}, batch_size=5, seeds=seeds)
    assert m1.shape == m2.shape == (2, 20, 20)
    for b in range(2):
        r1, r2 = loop_pairwise(enc, x1[b : b + 1], x2[b : b + 1], seeds[b], 12)
        torch.testing.assert_close(m1[b], r1, atol=1e-10, rtol=0)
        torch.testing.assert_close(m2[b], r2, atol=1e-10, rtol=0)
    assert (m1.amax(dim=(1, 2)) + m2.amax(dim=(1, 2)) > 0.99).all()  # some view got the credit


def test_pairwise_zero_sum_quirk_matches_loop() -> None:
    """erased_pixels=zero_sum credits every pixel at the model-input zero (spec §6.13), not only the rectangle."""
    enc = tiny_encoder()
    x1, x2 = images(1, 16, seed=13), images(1, 16, seed=14)
    x1[..., :3, :] = enc.baseline_pixel.to(x1.dtype)  # a band already at the model-input zero
    x2[..., :3, :] = enc.baseline_pixel.to(x2.dtype)
    q1, q2 = run("pairwise_occlusion", enc, x1, x2, {"n_erases": 10, "erased_pixels": "zero_sum"}, seeds=[15])
    r1, r2 = loop_pairwise(enc, x1, x2, 15, 10, zero_sum=True)
    torch.testing.assert_close(q1[0], r1, atol=1e-10, rtol=0)
    torch.testing.assert_close(q2[0], r2, atol=1e-10, rtol=0)
    p1, p2 = run("pairwise_occlusion", enc, x1, x2, {"n_erases": 10}, seeds=[15])
    credited = q1[0] if q1.max() > 0 else q2[0]
    plain = p1[0] if q1.max() > 0 else p2[0]
    assert credited[:3].min() > 0  # the band gets credit from every sample of that view
    assert not torch.allclose(credited, plain)


def test_pairwise_seeded() -> None:
    enc = tiny_encoder()
    x1, x2 = images(1, 16, seed=16), images(1, 16, seed=17)
    a = run("pairwise_occlusion", enc, x1, x2, {"n_erases": 8}, seeds=[1])
    b = run("pairwise_occlusion", enc, x1.clone(), x2.clone(), {"n_erases": 8}, batch_size=3, seeds=[1])
    c = run("pairwise_occlusion", enc, x1, x2, {"n_erases": 8}, seeds=[2])
    again = run("pairwise_occlusion", enc, x1, x2, {"n_erases": 8}, seeds=[1])
    assert torch.equal(a[0], again[0]) and torch.equal(a[1], again[1])
    torch.testing.assert_close(a[0], b[0], atol=1e-12, rtol=0)  # the batch size changes only rounding
    torch.testing.assert_close(a[1], b[1], atol=1e-12, rtol=0)
    assert not (torch.allclose(a[0], c[0]) and torch.allclose(a[1], c[1]))
    with pytest.raises(ValueError, match="seed"):
        run("pairwise_occlusion", enc, x1, x2, {"n_erases": 8}, seeds=[])


def test_erase_rectangles_follow_random_erasing() -> None:
    """Area fraction in scale, aspect in ratio (up to rounding), inside the image, all tries fitting at these scales."""
    size = 64
    rects = erase_rectangles(500, size, size, (0.1, 0.3), (1.0, 1.5), torch.Generator().manual_seed(0))
    top, left, h, w = rects.T
    assert (h > 0).all() and (top >= 0).all() and (left >= 0).all()
    assert (top + h <= size).all() and (left + w <= size).all()
    area = (h * w).double() / size**2
    assert area.min() > 0.08 and area.max() < 0.33
    aspect = h.double() / w.double()
    assert aspect.min() > 0.9 and aspect.max() < 1.65
    assert len(set(map(tuple, rects.tolist()))) > 400
    # a scale that never fits gives no rectangle (torchvision: the image is left unchanged)
    none = erase_rectangles(5, 8, 8, (1.0, 1.0), (1.0, 1.0), torch.Generator().manual_seed(0))
    assert (none == 0).all()


# --------------------------------------------------------------------------------------------
# Interaction-CAM
# --------------------------------------------------------------------------------------------


def hand_interaction_cam(enc: Encoder, x1: torch.Tensor, x2: torch.Tensor, reduction: str, invariance: bool):
    """§3.5 by hand with explicit loops for the pooling; maps [B, h, w]."""
    with torch.no_grad():
        a1, a2 = enc.trunk(enc.normalise(x1)), enc.trunk(enc.normalise(x2))
    a1.requires_grad_(True)
    a2.requires_grad_(True)
    z1, z2 = enc.head(a1.mean(dim=(2, 3))), enc.head(a2.mean(dim=(2, 3)))
    s = nn.CosineSimilarity(dim=-1, eps=1e-8)(z1, z2)
    g1, g2 = torch.autograd.grad(s.sum(), [a1, a2])
    a1, a2, z1, z2 = a1.detach(), a2.detach(), z1.detach(), z2.detach()
    bsz, c, h, w = a1.shape

    def pool(a: torch.Tensor, b: int) -> torch.Tensor:
        if reduction == "mean":
            return a[b].sum(dim=(1, 2)) / (h * w)
        if reduction == "max":
            return torch.stack([a[b, ch].max() for ch in range(c)])
        tokens = [a[b, :, i, j] for i in range(h) for j in range(w)]  # row-major
        u = sum(tokens) / len(tokens)
        scores = torch.stack([torch.dot(t, u) for t in tokens])
        alpha = torch.exp(scores - scores.max())
        alpha = alpha / alpha.sum()
        return sum(al * t for al, t in zip(alpha, tokens))

    out1, out2 = torch.zeros(bsz, h, w, dtype=a1.dtype), torch.zeros(bsz, h, w, dtype=a1.dtype)
    for b in range(bsz):
        joint = pool(a1, b) * pool(a2, b)
        iota = 1.0
        if invariance:
            n1 = (z1[b] - z1[b].min()) / (z1[b].max() - z1[b].min())
            n2 = (z2[b] - z2[b].min()) / (z2[b].max() - z2[b].min())
            iota = 1 - (n1 - n2).abs().sum() / n1.numel()
        for ch in range(c):
            out1[b] += iota * joint[ch] * a1[b, ch] * g1[b, ch].clamp(min=0)
            out2[b] += iota * joint[ch] * a2[b, ch] * g2[b, ch].clamp(min=0)
    return out1, out2


@pytest.mark.parametrize("name,reduction", [("interaction_cam_mean", "mean"), ("interaction_cam_max", "max"), ("interaction_cam_sa", "sa")])
@pytest.mark.parametrize("invariance", [True, False])
def test_interaction_cam_matches_hand_computation(name: str, reduction: str, invariance: bool) -> None:
    enc = tiny_encoder()
    x1, x2 = images(2, 24, seed=18), images(2, 24, seed=19)
    spec = get_method(name)
    assert spec.defaults == {"reduction": reduction, "invariance": True}
    m1, m2 = run(name, enc, x1, x2, {"invariance": invariance})
    r1, r2 = hand_interaction_cam(enc, x1, x2, reduction, invariance)
    assert m1.shape == (2, 3, 3)
    torch.testing.assert_close(m1, r1, atol=1e-14, rtol=1e-9)
    torch.testing.assert_close(m2, r2, atol=1e-14, rtol=1e-9)
    assert m1.max() > 0 and m2.max() > 0


def test_interaction_cam_reductions_and_iota_differ() -> None:
    enc = tiny_encoder()
    x1, x2 = images(1, 24, seed=20), images(1, 24, seed=21)
    maps = {n: run(n, enc, x1, x2)[0] for n in ("interaction_cam_mean", "interaction_cam_max", "interaction_cam_sa")}
    assert not torch.allclose(maps["interaction_cam_mean"], maps["interaction_cam_max"])
    assert not torch.allclose(maps["interaction_cam_mean"], maps["interaction_cam_sa"])
    # iota is a per-pair scalar in (0, 1]: the map without it is the same map scaled up
    plain = run("interaction_cam_mean", enc, x1, x2, {"invariance": False})[0]
    ratio = maps["interaction_cam_mean"][plain > 0] / plain[plain > 0]
    assert 0 < ratio.min() <= 1 and torch.allclose(ratio, ratio[0].expand_as(ratio))
    with pytest.raises(ValueError, match="reduction"):
        run("interaction_cam_mean", enc, x1, x2, {"reduction": "median"})


# --------------------------------------------------------------------------------------------
# Feature visualisation
# --------------------------------------------------------------------------------------------

FV_FAST = {"iterations": 4, "octaves": 3}


def test_feature_visualisation_registered_as_image_method() -> None:
    spec = get_method("feature_visualisation")
    assert spec.kind == "image" and spec.n_maps == 0
    for name in ("context_agnostic_occlusion", "pairwise_occlusion", "interaction_cam_sa", "gradcam"):
        assert get_method(name).kind == "map"


def test_octave_sizes_match_spec() -> None:
    assert octave_sizes(224, 10, 1.4, 8) == [224, 160, 114, 81, 58, 41, 29, 21, 15, 11]
    assert octave_sizes(48, 10, 1.4, 8) == [48, 34, 24, 17, 12, 9]
    assert octave_sizes(32, 2, 1.4, 8) == [32, 23]


def test_gaussian_blur_matches_scipy() -> None:
    ndimage = require_module("scipy.ndimage")
    x = images(2, 9, seed=22)
    for sigma in (0.6, 1.5, 2.5):  # radius 10 > image side at sigma 2.5: repeated reflection
        ours = gaussian_blur_hw(x, sigma)
        ref = ndimage.gaussian_filter1d(ndimage.gaussian_filter1d(x.numpy(), sigma, axis=2), sigma, axis=3)
        torch.testing.assert_close(ours, torch.from_numpy(ref), atol=1e-12, rtol=0)


def test_truncation_defaults() -> None:
    small = tiny_encoder()
    assert default_up_until(small) == 4  # stem + stages 1-3
    tv = build_torchvision_resnet_encoder("resnet18")
    assert default_up_until(tv) == 5  # conv1, bn1, relu, maxpool, layer1
    assert isinstance(list(truncated_trunk(tv, 5).children())[-1], nn.Sequential)
    with pytest.raises(ValueError, match="up_until"):
        truncated_trunk(small, 6)


def fv_objective(enc: Encoder, v: torch.Tensor, cond: torch.Tensor, up_until: int = 4) -> torch.Tensor:
    """The score objective at full size without regularisers: cos(vec phi(v), vec phi(cond)) [B]."""
    phi = truncated_trunk(enc, up_until)
    with torch.no_grad():
        return cosine(phi(enc.normalise(v)).flatten(1), phi(enc.normalise(cond)).flatten(1))


@pytest.mark.parametrize("objective", ["score", "feature"])
def test_feature_visualisation_increases_objective(objective: str) -> None:
    enc = tiny_encoder()
    x1, x2 = images(2, 32, seed=23), images(2, 32, seed=24)
    seeds = [5, 6]
    dreamed, detail = run("feature_visualisation", enc, x1, x2, {**FV_FAST, "objective": objective}, seeds=seeds)
    assert dreamed.shape == detail.shape == (2, 3, 32, 32)
    assert dreamed.min() >= 0 and dreamed.max() <= 1
    init = torch.stack([0.01 * torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(s), dtype=torch.float64) for s in seeds])
    torch.testing.assert_close(detail, dreamed - init, atol=1e-12, rtol=0)
    before, after = fv_objective(enc, init, x2), fv_objective(enc, dreamed, x2)
    assert (after > before + 0.05).all(), (before, after)
    assert total_variation(dreamed).isfinite().all()


def test_feature_visualisation_deterministic_and_seeded() -> None:
    enc = tiny_encoder()
    x1, x2 = images(2, 24, seed=25), images(2, 24, seed=26)
    a = run("feature_visualisation", enc, x1, x2, FV_FAST, seeds=[1, 2])
    b = run("feature_visualisation", enc, x1, x2.clone(), FV_FAST, batch_size=1, seeds=[1, 2])
    c = run("feature_visualisation", enc, x1, x2, FV_FAST, seeds=[3, 2])
    torch.testing.assert_close(a[0], b[0], atol=1e-12, rtol=0)  # batch composition does not matter
    assert torch.equal(a[0][1], c[0][1]) and not torch.allclose(a[0][0], c[0][0])
    # x1 is not used (the dream starts from noise): swapping it changes nothing
    d = run("feature_visualisation", enc, images(2, 24, seed=27), x2, FV_FAST, seeds=[1, 2])
    assert torch.equal(a[0], d[0])


def test_feature_visualisation_reg_l2_default_follows_normalisation() -> None:
    """reg_l2 null: on for models without input normalisation (SimCLRv2), off otherwise."""
    from xai_ssl.methods.feature_visualisation import resolve_runtime

    p = get_method("feature_visualisation").resolve_params({}, 48)
    assert resolve_runtime(tiny_encoder(normalise=False), p)["reg_l2"] is True
    assert resolve_runtime(tiny_encoder(normalise=True), p)["reg_l2"] is False
    with pytest.raises(ValueError, match="objective"):
        resolve_runtime(tiny_encoder(), {**p, "objective": "dream"})


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------

CHEAP = {
    "context_agnostic_occlusion": {"stride": 6},
    "pairwise_occlusion": {"n_erases": 6},
    "interaction_cam_mean": {},
    "interaction_cam_max": {},
    "interaction_cam_sa": {},
    "feature_visualisation": {"iterations": 2},
}


@pytest.mark.parametrize("name", sorted(CHEAP))
def test_shapes_48(name: str) -> None:
    enc = tiny_encoder()
    size = 48
    x1, x2 = images(1, size, seed=28), images(1, size, seed=29)
    a, b = run(name, enc, x1, x2, CHEAP[name])
    p = get_method(name).resolve_params(CHEAP[name], size)
    expected = {
        "context_agnostic_occlusion": (1, (size - p.get("window", 0)) // p.get("stride", 1) + 1, (size - p.get("window", 0)) // p.get("stride", 1) + 1),
        "pairwise_occlusion": (1, size, size),
        "feature_visualisation": (1, 3, size, size),
    }.get(name, (1, size // 8, size // 8))
    assert a.shape == b.shape == expected
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    assert a.abs().max() > 0 or b.abs().max() > 0


def test_shapes_224_interaction_cam() -> None:
    enc = tiny_encoder()
    x1, x2 = images(1, 224, seed=30), images(1, 224, seed=31)
    a, b = run("interaction_cam_sa", enc, x1, x2)
    assert a.shape == b.shape == (1, 28, 28)
    assert torch.isfinite(a).all() and a.max() > 0
    spec = get_method("context_agnostic_occlusion")
    p = spec.resolve_params({}, 224)
    assert (224 - p["window"]) // p["stride"] + 1 == 21
    assert math.isclose(get_method("pairwise_occlusion").defaults["n_erases"], 100)


# --------------------------------------------------------------------------------------------
# Workflow step: HDF5 + figure
# --------------------------------------------------------------------------------------------


def test_feature_visualisation_step_writes_h5_and_figure(tmp_path) -> None:
    h5py = require_module("h5py")
    from xai_ssl.io.hdf5 import get_json_attr, read_strings, write_strings
    from xai_ssl.models.registry import save_encoder
    from xai_ssl.stages.attribution import feature_visualisation
    from xai_ssl.stages.report import plot_feature_visualisation

    arch_params = {"width": 4, "embedding_dim": 8, "hidden_dim": 16}
    torch.manual_seed(0)
    save_encoder(build_architecture("small_resnet", **arch_params).eval(), tmp_path / "encoder.pt", "small_resnet", arch_params)
    pairs = tmp_path / "pairs.h5"
    views = (images(3, 24, seed=32) * 255).round().to(torch.uint8).numpy()
    with h5py.File(pairs, "w") as f:
        write_strings(f, "image_id", ["a", "b", "c"])
        for k in ("x1", "x2", "xt"):
            f.create_dataset(k, data=views)
    out_h5, out_png = tmp_path / "fv" / "fv.h5", tmp_path / "fig" / "fv.png"
    kwargs = dict(method="fv", registry_method="feature_visualisation", method_params={"iterations": 2, "octaves": 2}, seed=0,
                  device="cpu", batch_size=2, dataset="d", model="m", progress=False)
    feature_visualisation(pairs, tmp_path / "encoder.pt", out_h5, **kwargs)
    plot_feature_visualisation(out_h5, pairs, out_png, 2, "d / m / fv")
    assert out_png.stat().st_size > 1000
    with h5py.File(out_h5, "r") as f:
        assert read_strings(f, "image_id") == ["a", "b", "c"]
        assert f["image"].shape == f["detail"].shape == (3, 3, 24, 24)
        assert f["image"].dtype == "float32"
        assert get_json_attr(f, "runtime_params")["up_until"] == 4
        assert f.attrs["kind"] == "image" and f.attrs["dataset"] == "d"
        first = f["image"][()]
    feature_visualisation(pairs, tmp_path / "encoder.pt", out_h5, **kwargs)  # seeded: same result
    with h5py.File(out_h5, "r") as f:
        assert (f["image"][()] == first).all()
    with pytest.raises(ValueError, match="not an image method"):
        feature_visualisation(pairs, tmp_path / "encoder.pt", out_h5, **{**kwargs, "registry_method": "gradcam"})
