"""Gradient methods (Sammani et al. §3.6-3.9): guided backprop, input x gradient (G), Smooth-Grad, Averaged Transforms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import images, require_module, tiny_encoder
from xai_ssl.engine import cosine
from xai_ssl.methods import MethodContext, get_method
from xai_ssl.methods.averaged_transforms import interpolants
from xai_ssl.methods.guided import GuidedReLU, guided_relu
from xai_ssl.methods.smooth_grad import model_input_noise, noise_sigma

captum_attr = require_module("captum.attr")

CPU = torch.device("cpu")
GRADIENT_METHODS = [
    "input_x_gradient", "input_x_gradient_g", "smooth_grad", "smooth_grad_g",
    "avg_transforms", "avg_transforms_g", "avg_transforms_n", "avg_transforms_gn",
]


def ctx(n: int, batch_size: int = 32, base: int = 7) -> MethodContext:
    return MethodContext(device=CPU, batch_size=batch_size, seeds=[base * 1000 + b for b in range(n)])


def run(name: str, enc: nn.Module, x1: torch.Tensor, x2: torch.Tensor, params: dict | None = None, batch_size: int = 32, base: int = 7):
    spec = get_method(name)
    return spec.fn(enc, x1, x2, spec.resolve_params(params or {}, x1.shape[-1]), ctx(x1.shape[0], batch_size, base))


def grads_single(enc: nn.Module, a: torch.Tensor, b: torch.Tensor, guided: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: d cos(f(a), f(b)) / d(a, b) for ONE pair [3, H, W], its own forward and backward."""
    a = a[None].clone().requires_grad_(True)
    b = b[None].clone().requires_grad_(True)
    with guided_relu(enc, enabled=guided):
        s = cosine(enc(a), enc(b)).sum()
        ga, gb = torch.autograd.grad(s, [a, b])
    return ga[0], gb[0]


def xg_map(enc: nn.Module, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """max_c |x_n ⊙ dS/dx_n| written through the normalisation constants explicitly; [3, H, W] -> [H, W]."""
    mean = enc.input_mean.to(x.dtype)[0]
    return ((x - mean) * g).abs().amax(0)


# --------------------------------------------------------------------------------------------
# Guided backprop
# --------------------------------------------------------------------------------------------


class TinyMLP(nn.Module):
    """x -> l1 -> ReLU (in place) -> [l2 -> ReLU] -> l3 -> the same ReLU again -> l4 -> F.relu -> sum."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.l1, self.l3 = nn.Linear(6, 8).double(), nn.Linear(8, 8).double()
        self.l4 = nn.Linear(8, 5).double()
        self.act = nn.ReLU(inplace=True)  # used twice, as a torchvision Bottleneck's relu
        self.block = nn.Sequential(nn.Linear(8, 8).double(), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.l4(self.act(self.l3(self.block(self.act(self.l1(x))))))).sum(-1)


def test_guided_relu_matches_hand_computation_and_leaves_functional_relu_vanilla() -> None:
    net = TinyMLP()
    x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    xr = x.clone().requires_grad_(True)
    with guided_relu(net):
        (g,) = torch.autograd.grad(net(xr).sum(), [xr])
    # hand-written backward: guided at the three nn.ReLU uses, vanilla at the functional one
    with torch.no_grad():
        w2 = net.block[0].weight
        h1 = net.l1(x)
        h2 = net.block[0](h1.clamp(min=0))
        h3 = net.l3(h2.clamp(min=0))
        h4 = net.l4(h3.clamp(min=0))
        up = (h4 > 0).double() @ net.l4.weight  # vanilla F.relu, then l4
        up = (up.clamp(min=0) * (h3 > 0)) @ net.l3.weight  # second use of self.act
        up = (up.clamp(min=0) * (h2 > 0)) @ w2  # block ReLU
        ref = (up.clamp(min=0) * (h1 > 0)) @ net.l1.weight  # first use of self.act
    torch.testing.assert_close(g, ref, atol=1e-12, rtol=0)
    xv = x.clone().requires_grad_(True)
    (vanilla,) = torch.autograd.grad(net(xv).sum(), [xv])
    assert not torch.allclose(g, vanilla)  # guiding changed something on this net


def test_guided_relu_restores_modules_even_on_error() -> None:
    net = TinyMLP()
    before = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.ReLU)]
    with guided_relu(net):
        assert not any(isinstance(m, nn.ReLU) for m in net.modules())
        assert isinstance(net.act, GuidedReLU) and isinstance(net.block[1], GuidedReLU)
    assert [(n, m) for n, m in net.named_modules() if isinstance(m, nn.ReLU)] == before
    with pytest.raises(RuntimeError, match="boom"):
        with guided_relu(net):
            raise RuntimeError("boom")
    after = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.ReLU)]
    assert after == before and all(a[1] is b[1] for a, b in zip(after, before))
    assert net.act.inplace  # the original (in-place) module object is back


def test_input_x_gradient_guided_matches_captum_guided_backprop() -> None:
    enc = tiny_encoder(normalise=True)
    x1, x2 = images(2, 16, seed=31), images(2, 16, seed=32)
    g1, g2 = run("input_x_gradient_g", enc, x1, x2)
    v1, v2 = run("input_x_gradient", enc, x1, x2)
    assert g1.shape == g2.shape == (2, 16, 16)

    class Score(nn.Module):
        def __init__(self, z_cond: torch.Tensor) -> None:
            super().__init__()
            self.enc, self.z_cond = enc, z_cond

        def forward(self, xn: torch.Tensor) -> torch.Tensor:
            return cosine(self.enc.embed_features(self.enc.trunk(xn)), self.z_cond)

    def captum_map(x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            z_cond = enc(cond)
        xn = enc.normalise(x)
        attr = captum_attr.GuidedBackprop(Score(z_cond)).attribute(xn.clone().requires_grad_(True))
        return (xn * attr).abs().amax(dim=1)

    torch.testing.assert_close(g1, captum_map(x1, x2), atol=1e-10, rtol=1e-7)
    torch.testing.assert_close(g2, captum_map(x2, x1), atol=1e-10, rtol=1e-7)
    assert g1.max() > 1e-6 and not torch.allclose(g1, v1)
    assert all(isinstance(m, nn.ReLU) for m in enc.modules() if "ReLU" in type(m).__name__)


def test_input_x_gradient_plain_matches_captum_and_empty_params() -> None:
    enc = tiny_encoder(normalise=True)
    x1, x2 = images(1, 16, seed=33), images(1, 16, seed=34)
    m1, _ = run("input_x_gradient", enc, x1, x2)
    with torch.no_grad():
        z2 = enc(x2)
    xn = enc.normalise(x1)
    attr = captum_attr.InputXGradient(lambda v: cosine(enc.embed_features(enc.trunk(v)), z2)).attribute(xn.clone().requires_grad_(True))
    torch.testing.assert_close(m1, attr.abs().amax(1), atol=1e-10, rtol=1e-7)
    e1, _ = get_method("input_x_gradient").fn(enc, x1, x2, {}, ctx(1))  # callers that pass no params (MS tests)
    torch.testing.assert_close(e1, m1, atol=0, rtol=0)


# --------------------------------------------------------------------------------------------
# Smooth-Grad
# --------------------------------------------------------------------------------------------


def test_noise_sigma_uses_model_input_range() -> None:
    enc = tiny_encoder(normalise=True)
    x = images(2, 8, seed=35)
    std = enc.input_std.double()
    xn = (x - enc.input_mean.double()) / std
    expected = 0.15 / (xn.flatten(1).max(1).values - xn.flatten(1).min(1).values)
    torch.testing.assert_close(noise_sigma(enc, x, 0.15), expected, atol=1e-12, rtol=0)
    noise = model_input_noise(enc, 4000, x[0], 0.5, seed=1)  # pixel-space noise = N(0, σ²) · std per channel
    per_channel = noise.transpose(0, 1).flatten(1).std(1)
    torch.testing.assert_close(per_channel, 0.5 * std.flatten(), atol=0, rtol=0.01)


@pytest.mark.parametrize("name", ["smooth_grad", "smooth_grad_g"])
def test_smooth_grad_matches_plain_loop(name: str) -> None:
    enc = tiny_encoder(normalise=True)
    x1, x2 = images(2, 12, seed=36), images(2, 12, seed=37)
    n = 5
    m1, m2 = run(name, enc, x1, x2, {"n_samples": n}, batch_size=2)  # 3 chunks of samples
    sigma = noise_sigma(enc, x1, 0.15)
    guided = name.endswith("_g")
    for b in range(2):
        noise = model_input_noise(enc, n, x1[b], float(sigma[b]), ctx(2).seeds[b])
        s1, s2 = torch.zeros_like(x1[b]), torch.zeros_like(x2[b])
        for t in range(n):
            ga, gb = grads_single(enc, x1[b] + noise[t], x2[b] + noise[t], guided)
            s1, s2 = s1 + ga, s2 + gb
        torch.testing.assert_close(m1[b], xg_map(enc, x1[b], s1 / n), atol=1e-12, rtol=1e-9)  # clean image
        torch.testing.assert_close(m2[b], xg_map(enc, x2[b], s2 / n), atol=1e-12, rtol=1e-9)
    plain, _ = run("input_x_gradient_g" if guided else "input_x_gradient", enc, x1, x2)
    assert not torch.allclose(m1, plain, atol=1e-8)  # the noise matters
    z1, _ = run(name, enc, x1, x2, {"n_samples": 1, "noise_level": 0.0})
    torch.testing.assert_close(z1, plain, atol=1e-12, rtol=1e-9)  # no noise, one sample = input x gradient


def test_smooth_grad_seeded_per_image() -> None:
    enc = tiny_encoder(normalise=True)
    x1, x2 = images(2, 12, seed=38), images(2, 12, seed=39)
    a = run("smooth_grad", enc, x1, x2, {"n_samples": 4}, batch_size=3)
    b = run("smooth_grad", enc, x1.clone(), x2.clone(), {"n_samples": 4}, batch_size=8)
    assert torch.allclose(a[0], b[0], atol=1e-12) and torch.allclose(a[1], b[1], atol=1e-12)  # batch size free
    c = run("smooth_grad", enc, x1, x2, {"n_samples": 4}, base=8)
    assert not torch.allclose(a[0], c[0], atol=1e-8)  # another seed, another map
    with pytest.raises(ValueError, match="seeds"):
        get_method("smooth_grad").fn(enc, x1, x2, get_method("smooth_grad").resolve_params({}, 12), MethodContext(CPU))


# --------------------------------------------------------------------------------------------
# Averaged transforms
# --------------------------------------------------------------------------------------------


def test_interpolants_follow_the_path() -> None:
    x, xt = images(1, 8, seed=40)[0], images(1, 8, seed=41)[0]
    m9 = 0.1 * x + 0.9 * xt
    path = interpolants(x, m9)
    assert path.shape == (9, 3, 8, 8) and torch.equal(path[-1], m9)
    for j in range(1, 10):
        lam = 1 - 0.1 * j
        torch.testing.assert_close(path[j - 1], lam * x + (1 - lam) * xt, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["avg_transforms", "avg_transforms_g", "avg_transforms_n", "avg_transforms_gn"])
def test_avg_transforms_matches_plain_loop(name: str) -> None:
    enc = tiny_encoder(normalise=True)
    x, xt = images(3, 12, seed=42), images(3, 12, seed=43)
    m0, m9 = x, 0.1 * x + 0.9 * xt
    s1, s2 = run(name, enc, m0, m9, batch_size=20)  # 2 images per chunk
    guided, noisy = "_g" in name, name.endswith("n")
    sigma = noise_sigma(enc, m0, 0.15)
    for b in range(3):
        noise = model_input_noise(enc, 8, m0[b], float(sigma[b]), ctx(3).seeds[b]) if noisy else torch.zeros(8, 3, 12, 12, dtype=x.dtype)
        a_sum, b_sum = torch.zeros_like(m0[b]), torch.zeros_like(m0[b])
        for j in range(1, 10):
            lam = 1 - 0.1 * j
            mj = lam * x[b] + (1 - lam) * xt[b] + (noise[j - 1] if j < 9 else 0)
            ga, gb = grads_single(enc, m0[b], mj, guided)
            a_sum, b_sum = a_sum + ga, b_sum + gb
        torch.testing.assert_close(s1[b], xg_map(enc, m0[b], a_sum / 9), atol=1e-10, rtol=1e-7)
        torch.testing.assert_close(s2[b], xg_map(enc, m9[b], b_sum / 9), atol=1e-10, rtol=1e-7)
    assert s1.max() > 1e-6 and s2.max() > 1e-6


def test_avg_transforms_variants_differ_and_are_deterministic() -> None:
    enc = tiny_encoder(normalise=True)
    x, xt = images(2, 12, seed=44), images(2, 12, seed=45)
    m0, m9 = x, 0.1 * x + 0.9 * xt
    maps = {n: run(n, enc, m0, m9)[0] for n in ("avg_transforms", "avg_transforms_g", "avg_transforms_n", "avg_transforms_gn")}
    names = list(maps)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.allclose(maps[names[i]], maps[names[j]], atol=1e-8), (names[i], names[j])
    again = run("avg_transforms_gn", enc, m0.clone(), m9.clone(), batch_size=7)[0]
    torch.testing.assert_close(again, maps["avg_transforms_gn"], atol=1e-12, rtol=0)
    other = run("avg_transforms_gn", enc, m0, m9, base=9)[0]
    assert not torch.allclose(other, maps["avg_transforms_gn"], atol=1e-8)


# --------------------------------------------------------------------------------------------
# Registry, shapes, determinism
# --------------------------------------------------------------------------------------------


def test_registry_entries() -> None:
    for name in GRADIENT_METHODS:
        spec = get_method(name)
        assert spec.pair_family == "interpolation" and spec.n_maps == 2 and spec.cost
        assert bool(spec.defaults["guided"]) == name.endswith(("_g", "_gn"))
    for name in ("avg_transforms", "avg_transforms_g", "avg_transforms_n", "avg_transforms_gn"):
        assert get_method(name).defaults["add_noise"] == name.endswith("n")
    assert get_method("smooth_grad").defaults == {"guided": False, "n_samples": 50, "noise_level": 0.15}
    with pytest.raises(ValueError, match="n_samples"):
        get_method("smooth_grad").resolve_params({"n_samples": 0}, 32)


@pytest.mark.parametrize("size", [48, 224])
def test_shapes(size: int) -> None:
    enc = tiny_encoder()
    x1 = images(1, size, seed=46)
    x2 = 0.1 * x1 + 0.9 * images(1, size, seed=47)
    for name in GRADIENT_METHODS:
        params = {"n_samples": 2} if name.startswith("smooth") else {}
        m1, m2 = run(name, enc, x1, x2, params)
        assert m1.shape == m2.shape == (1, size, size), name
        assert torch.isfinite(m1).all() and torch.isfinite(m2).all() and m1.max() > 0 and m2.max() > 0, name


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_deterministic(name: str) -> None:
    enc = tiny_encoder()
    x1, x2 = images(2, 16, seed=48), images(2, 16, seed=49)
    params = {"n_samples": 3} if name.startswith("smooth") else {}
    a = run(name, enc, x1, x2, params)
    b = run(name, enc, x1.clone(), x2.clone(), params)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert all(isinstance(m, nn.ReLU) for m in enc.modules() if "ReLU" in type(m).__name__)  # guided ReLUs removed
