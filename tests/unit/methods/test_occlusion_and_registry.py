"""Explanation methods against Captum, hand computations and their own invariants."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from helpers import images, require_module, tiny_encoder
from xai_ssl.engine import cosine
from xai_ssl.methods import METHOD_REGISTRY, MethodContext, get_method
from xai_ssl.models import Encoder
from xai_ssl.models.encoder import IMAGENET_MEAN, IMAGENET_STD

captum_attr = require_module("captum.attr")

CPU = torch.device("cpu")


def ctx(batch_size: int = 32) -> MethodContext:
    return MethodContext(device=CPU, batch_size=batch_size)


def run(name: str, enc: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict | None = None, batch_size: int = 32):
    spec = get_method(name)
    return spec.fn(enc, x1, x2, spec.resolve_params(params or {}, x1.shape[-1]), ctx(batch_size))


# --------------------------------------------------------------------------------------------
# Conditional occlusion
# --------------------------------------------------------------------------------------------


def captum_occlusion(enc: Encoder, x: torch.Tensor, cond: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Captum's Occlusion of cos(f(x'), f(cond)) in model-input space with baseline 0; [1, 3, H, W]."""
    with torch.no_grad():
        z_cond = enc(cond)

    def forward(xn: torch.Tensor) -> torch.Tensor:
        return cosine(enc.embed_features(enc.trunk(xn)), z_cond.expand(xn.shape[0], -1))

    occ = captum_attr.Occlusion(forward)
    return occ.attribute(
        enc.normalise(x), sliding_window_shapes=(3, window, window), strides=(3, stride, stride), baselines=0.0
    ).double()  # Captum accumulates in float32


def loop_occlusion(enc: Encoder, x: torch.Tensor, cond: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Plain reference: occlude each window with the model-input zero, one image per forward; [K, K]."""
    size = x.shape[-1]
    k = (size - window) // stride + 1
    # the model-input zero; the encoder keeps its constants in float32
    fill = torch.tensor(IMAGENET_MEAN if enc.normalised else (0.0, 0.0, 0.0)).to(x.dtype).view(3, 1, 1)
    with torch.no_grad():
        z_cond = enc(cond)
        base = cosine(enc(x), z_cond)[0]
        out = torch.empty(k, k, dtype=x.dtype)
        for i in range(k):
            for j in range(k):
                y = x.clone()
                y[0, :, i * stride : i * stride + window, j * stride : j * stride + window] = fill
                out[i, j] = base - cosine(enc(y), z_cond)[0]
    return out


def test_occlusion_matches_captum_non_overlapping() -> None:
    enc = tiny_encoder()
    x1, x2 = images(1, 16, seed=1), images(1, 16, seed=2)
    m1, m2 = run("conditional_occlusion", enc, x1, x2, {"window": 4, "stride": 4})
    assert m1.shape == m2.shape == (1, 4, 4)
    ref1 = captum_occlusion(enc, x1, x2, 4, 4)[0]  # [3, 16, 16]
    ref2 = captum_occlusion(enc, x2, x1, 4, 4)[0]
    up1 = m1[0].repeat_interleave(4, 0).repeat_interleave(4, 1)
    up2 = m2[0].repeat_interleave(4, 0).repeat_interleave(4, 1)
    for c in range(3):
        torch.testing.assert_close(up1, ref1[c], atol=1e-5, rtol=0)
        torch.testing.assert_close(up2, ref2[c], atol=1e-5, rtol=0)
    assert up1.abs().max() > 1e-4  # the comparison is not between two zero maps
    assert not torch.allclose(m1, m2)


def test_occlusion_overlapping_matches_loop() -> None:
    enc = tiny_encoder()
    size, window, stride = 20, 6, 4  # K = 4 (floor, as the spec); the last 2 rows/cols are never occluded
    x1, x2 = images(1, size, seed=3), images(1, size, seed=4)
    m1, m2 = run("conditional_occlusion", enc, x1, x2, {"window": window, "stride": stride})
    assert m1.shape == (1, 4, 4)
    torch.testing.assert_close(m1[0], loop_occlusion(enc, x1, x2, window, stride), atol=1e-10, rtol=0)
    torch.testing.assert_close(m2[0], loop_occlusion(enc, x2, x1, window, stride), atol=1e-10, rtol=0)
    assert m1.abs().max() > 1e-5


def test_occlusion_overlapping_matches_captum_average() -> None:
    """Captum spreads each drop over its window and averages overlapping windows: rebuild that from ours.

    (Captum uses ceil((size - window) / stride) + 1 positions, adding a clipped window at the border
    when the stride does not divide; the geometry here divides, so both use the same windows.)
    """
    enc = tiny_encoder()
    size, window, stride = 18, 6, 4  # K = 4, overlapping windows
    k = (size - window) // stride + 1
    x1, x2 = images(1, size, seed=3), images(1, size, seed=4)
    m1, _ = run("conditional_occlusion", enc, x1, x2, {"window": window, "stride": stride})
    total = torch.zeros(size, size, dtype=torch.float64)
    count = torch.zeros(size, size, dtype=torch.float64)
    for i in range(k):
        for j in range(k):
            total[i * stride : i * stride + window, j * stride : j * stride + window] += m1[0, i, j]
            count[i * stride : i * stride + window, j * stride : j * stride + window] += 1
    assert count.min() >= 1 and count.max() == 4
    ref = captum_occlusion(enc, x1, x2, window, stride)[0]
    for c in range(3):
        torch.testing.assert_close(total / count, ref[c], atol=1e-5, rtol=0)
    assert ref.abs().max() > 1e-4


def test_occlusion_second_map_is_first_map_of_swapped_pair() -> None:
    enc = tiny_encoder()
    x1, x2 = images(2, 16, seed=5), images(2, 16, seed=6)
    a1, a2 = run("conditional_occlusion", enc, x1, x2, {"window": 6, "stride": 5})
    b1, b2 = run("conditional_occlusion", enc, x2, x1, {"window": 6, "stride": 5})
    torch.testing.assert_close(b1, a2, atol=1e-12, rtol=0)
    torch.testing.assert_close(b2, a1, atol=1e-12, rtol=0)
    assert not torch.allclose(a1, a2)


def test_occlusion_batch_size_invariant() -> None:
    enc = tiny_encoder()
    x1, x2 = images(2, 16, seed=7), images(2, 16, seed=8)
    params = {"window": 5, "stride": 3}  # K = 4, 16 windows per map
    ref = run("conditional_occlusion", enc, x1, x2, params, batch_size=1)
    for bs in (7, 1000):
        got = run("conditional_occlusion", enc, x1, x2, params, batch_size=bs)
        for r, g in zip(ref, got):
            torch.testing.assert_close(g, r, atol=1e-12, rtol=0)
    # and each image of a batch gives the map it gets alone
    single = run("conditional_occlusion", enc, x1[1:], x2[1:], params, batch_size=7)
    torch.testing.assert_close(single[0][0], ref[0][1], atol=1e-12, rtol=0)


@pytest.mark.parametrize("batch_size", [1, 5, 1000])
def test_occlusion_condition_embedded_once(batch_size: int) -> None:
    enc = tiny_encoder()
    calls: list[int] = []
    handle = enc.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
    try:
        n_img, size, window, stride = 2, 16, 5, 3
        k = (size - window) // stride + 1
        run("conditional_occlusion", enc, images(n_img, size), images(n_img, size, seed=9), {"window": window, "stride": stride}, batch_size)
    finally:
        handle.remove()
    per_map = math.ceil(k * k / batch_size)
    assert len(calls) == 2 + 2 * n_img * per_map
    assert sum(calls) == 2 * n_img + 2 * n_img * k * k  # every image embedded once, plus one per window
    assert calls[:2] == [n_img, n_img]


def test_occlusion_fill_is_model_input_zero() -> None:
    """Occluding an image that already equals the baseline colour changes nothing: all drops are 0."""
    enc = tiny_encoder(normalise=True)
    x1 = enc.baseline_pixel.expand(1, 3, 12, 12).clone()
    x2 = images(1, 12, seed=10)
    m1, m2 = run("conditional_occlusion", enc, x1, x2, {"window": 4, "stride": 4})
    assert m1.abs().max() < 1e-12
    assert m2.abs().max() > 1e-3


# --------------------------------------------------------------------------------------------
# Input x gradient
# --------------------------------------------------------------------------------------------


def test_input_x_gradient_matches_captum_in_model_input_space() -> None:
    enc = tiny_encoder(normalise=True)
    x1, x2 = images(2, 16, seed=11), images(2, 16, seed=12)
    m1, m2 = run("input_x_gradient", enc, x1, x2)
    assert m1.shape == m2.shape == (2, 16, 16)

    def captum_map(x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            z_cond = enc(cond)

        def forward(xn: torch.Tensor) -> torch.Tensor:
            return cosine(enc.embed_features(enc.trunk(xn)), z_cond)

        attr = captum_attr.InputXGradient(forward).attribute(enc.normalise(x).clone().requires_grad_(True))
        return attr.abs().amax(dim=1)

    torch.testing.assert_close(m1, captum_map(x1, x2), atol=1e-10, rtol=1e-7)
    torch.testing.assert_close(m2, captum_map(x2, x1), atol=1e-10, rtol=1e-7)
    assert m1.max() > 1e-6 and m2.max() > 1e-6
    # The pixel-space input x gradient differs for a normalising encoder: the map is in model-input space.
    x = x1.clone().requires_grad_(True)
    with torch.no_grad():
        z2 = enc(x2)
    (g,) = torch.autograd.grad(cosine(enc(x), z2).sum(), [x])
    assert not torch.allclose((x1 * g).abs().amax(1), m1, atol=1e-8)


def test_input_x_gradient_zero_at_baseline_pixels() -> None:
    """Pixels equal to the model-input zero get exactly zero attribution."""
    enc = tiny_encoder(normalise=True)
    x1, x2 = images(1, 12, seed=13), images(1, 12, seed=14)
    x1[..., :4, :] = enc.baseline_pixel
    m1, _ = run("input_x_gradient", enc, x1, x2)
    assert m1[0, :4].abs().max() == 0
    assert m1[0, 4:].min() > 0


# --------------------------------------------------------------------------------------------
# Grad-CAM
# --------------------------------------------------------------------------------------------


def test_gradcam_matches_hand_computation() -> None:
    enc = tiny_encoder(normalise=True)
    x1, x2 = images(2, 16, seed=15), images(2, 16, seed=16)
    m1, m2 = run("gradcam", enc, x1, x2)
    # the encoder keeps its normalisation constants in float32 (then cast with .double())
    mean = torch.tensor(IMAGENET_MEAN).double().view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).double().view(1, 3, 1, 1)
    with torch.no_grad():
        a1 = enc.trunk((x1 - mean) / std)
        a2 = enc.trunk((x2 - mean) / std)
    assert a1.shape == (2, 32, 2, 2)
    a1.requires_grad_(True)
    a2.requires_grad_(True)
    z1 = enc.head(a1.mean(dim=(2, 3)))
    z2 = enc.head(a2.mean(dim=(2, 3)))
    s = nn.CosineSimilarity(dim=-1, eps=1e-8)(z1, z2)
    g1, g2 = torch.autograd.grad(s.sum(), [a1, a2])
    # dS/dA is constant over space (the next operation is a spatial mean)
    for g in (g1, g2):
        torch.testing.assert_close(g, g.mean(dim=(2, 3), keepdim=True).expand_as(g), atol=1e-14, rtol=0)
    cam1 = (a1.detach() * g1.clamp(min=0)).sum(1)
    cam2 = (a2.detach() * g2.clamp(min=0)).sum(1)
    torch.testing.assert_close(m1, cam1, atol=1e-12, rtol=1e-9)
    torch.testing.assert_close(m2, cam2, atol=1e-12, rtol=1e-9)
    assert (a1 >= 0).all() and (m1 >= 0).all() and (m2 >= 0).all()  # trunk ends in a ReLU
    assert m1.max() > 0 and m2.max() > 0


def test_gradcam_analytic_linear_model() -> None:
    """Identity trunk + linear head: G = W^T dcos/dz1 / (hw), CAM = sum_c A * relu(G), closed form."""
    torch.manual_seed(0)
    head = nn.Linear(3, 5, bias=False).double()
    enc = Encoder(nn.Identity(), head).double().eval()
    x1, x2 = images(1, 6, seed=17), images(1, 6, seed=18)
    m1, m2 = run("gradcam", enc, x1, x2)
    w = head.weight.detach()  # [5, 3]
    z1, z2 = w @ x1[0].mean((1, 2)), w @ x2[0].mean((1, 2))
    n1, n2 = z1.norm(), z2.norm()
    cos = z1 @ z2 / (n1 * n2)
    dz1 = z2 / (n1 * n2) - cos * z1 / n1**2
    dz2 = z1 / (n1 * n2) - cos * z2 / n2**2
    for m, x, dz in ((m1, x1, dz1), (m2, x2, dz2)):
        g = (w.T @ dz) / 36  # [3] per channel, constant over the 6x6 positions
        expected = (x[0] * g.clamp(min=0).view(3, 1, 1)).sum(0)
        torch.testing.assert_close(m[0], expected, atol=1e-12, rtol=1e-9)
    assert m1.abs().max() > 0


# --------------------------------------------------------------------------------------------
# Registry, parameters, shapes, determinism
# --------------------------------------------------------------------------------------------


def test_registry_names_and_errors() -> None:
    for name in ("conditional_occlusion", "gradcam", "input_x_gradient"):
        assert get_method(name).name == name
        assert name in METHOD_REGISTRY
    assert get_method("conditional_occlusion").pair_family == "crop_aug"
    assert get_method("gradcam").pair_family == "crop_aug"
    assert get_method("input_x_gradient").pair_family == "interpolation"
    with pytest.raises(KeyError) as err:
        get_method("no_such_method")
    msg = str(err.value)
    assert "no_such_method" in msg
    for name in ("conditional_occlusion", "gradcam", "input_x_gradient"):
        assert name in msg
    with pytest.raises(KeyError, match="windw"):
        get_method("conditional_occlusion").resolve_params({"windw": 3}, 64)
    with pytest.raises(KeyError, match="sigma"):
        get_method("gradcam").resolve_params({"sigma": 1}, 64)
    with pytest.raises(ValueError, match="window"):
        get_method("conditional_occlusion").resolve_params({"window": 65}, 64)


def test_registry_default_window_fits_tiny_images() -> None:
    """The scaled default window never exceeds the image; an explicit one that does is refused."""
    spec = get_method("conditional_occlusion")
    for size in (8, 16, 31):
        p = spec.resolve_params({}, size)
        assert 1 <= p["window"] <= size
    with pytest.raises(ValueError, match="larger than the image"):
        spec.resolve_params({"window": 17}, 16)


@pytest.mark.parametrize("size", [224, 64, 48, 100, 112, 32])
def test_occlusion_default_window_and_stride_scale(size: int) -> None:
    p = get_method("conditional_occlusion").resolve_params({}, size)
    assert p["window"] == max(1, round(64 * size / 224))
    assert p["stride"] == max(1, round(8 * size / 224))
    if size == 224:
        assert (p["window"], p["stride"]) == (64, 8)
        assert (size - p["window"]) // p["stride"] + 1 == 21
    if size == 64:
        assert (p["window"], p["stride"]) == (18, 2)
    # explicit values are kept
    q = get_method("conditional_occlusion").resolve_params({"window": 5, "stride": 2}, size)
    assert (q["window"], q["stride"]) == (5, 2)


@pytest.mark.parametrize("size", [224, 64])
def test_shapes(size: int) -> None:
    enc = tiny_encoder()
    x1, x2 = images(1, size, seed=19), images(1, size, seed=20)
    feat = size // 8  # small_resnet: strides 1, 1, 2, 2, 2
    g1, g2 = run("gradcam", enc, x1, x2)
    assert g1.shape == g2.shape == (1, feat, feat)
    i1, i2 = run("input_x_gradient", enc, x1, x2)
    assert i1.shape == i2.shape == (1, size, size)
    params = {"stride": 80} if size == 224 else {"stride": 6}  # keep it cheap: K = 3 / 8 instead of 21 / 24
    p = get_method("conditional_occlusion").resolve_params(params, size)
    k = (size - p["window"]) // p["stride"] + 1
    o1, o2 = run("conditional_occlusion", enc, x1, x2, params)
    assert o1.shape == o2.shape == (1, k, k)
    assert k == (3 if size == 224 else 8)
    for m in (g1, g2, i1, i2, o1, o2):
        assert torch.isfinite(m).all()
        assert m.abs().max() > 0


@pytest.mark.parametrize("name", ["conditional_occlusion", "gradcam", "input_x_gradient"])
def test_deterministic(name: str) -> None:
    enc = tiny_encoder()
    x1, x2 = images(2, 16, seed=21), images(2, 16, seed=22)
    params = {"window": 5, "stride": 3} if name == "conditional_occlusion" else {}
    a = run(name, enc, x1, x2, params)
    b = run(name, enc, x1.clone(), x2.clone(), params)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
