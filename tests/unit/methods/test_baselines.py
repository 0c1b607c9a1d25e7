"""Baseline methods (random noise, centred Gaussian, Sobel edges) against independent computations, and the registry fields."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
import yaml

from helpers import REPO, tiny_encoder
from xai_ssl.config import validate_config
from xai_ssl.method_roles import BASELINE, BASELINE_ORDER, FAMILY_ORDER, baselines_last
from xai_ssl.methods import METHOD_REGISTRY, MethodContext, get_method
from xai_ssl.metrics import MetricContext, get_metric
from xai_ssl.plan import Plan

CPU = torch.device("cpu")
BASELINES = ("random_baseline", "random_baseline_interpolation", "centre_baseline", "edge_baseline")


def sha_seed(*keys: object) -> int:
    """The project's seed derivation written out (sha256 of the '/'-joined keys, 63 bits): independent of xai_ssl.seeding."""
    text = "/".join(str(k) for k in keys)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") & (2**63 - 1)


def run(name: str, x1: torch.Tensor, x2: torch.Tensor, ids: list[str], seed: int = 3, params: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The method on a batch with the attribution step's per-image seeds (config seed, image id, method key)."""
    spec = get_method(name)
    ctx = MethodContext(CPU, batch_size=4, seeds=[sha_seed(seed, i, name) for i in ids], image_ids=ids)
    return spec.fn(None, x1, x2, spec.resolve_params(params, x1.shape[-1]), ctx)


def test_registry_marks_the_baselines() -> None:
    for name in BASELINES:
        spec = get_method(name)
        pairs = "interpolation" if name == "random_baseline_interpolation" else "crop_aug"
        assert spec.baseline and spec.family == BASELINE and spec.pair_family == pairs
        assert spec.n_maps == 2 and spec.cost == "0 forwards" and spec.kind == "map"
    others = [s for n, s in METHOD_REGISTRY.items() if n not in BASELINES]
    assert not any(s.baseline for s in others)
    assert {s.family for s in others} <= set(FAMILY_ORDER) - {BASELINE}  # no typo'd family
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["methods"]["my_noise"] = {"method": "random_baseline"}  # a baseline under another config name
    cfg["run"]["methods"] = ["my_noise", "gradcam", "smooth_grad", "relax", "conditional_occlusion", "edge_baseline", "feature_visualisation"]
    families = Plan(validate_config(cfg)).method_families()  # what the table and figure rules get
    assert families == {
        "my_noise": BASELINE, "gradcam": "cam", "smooth_grad": "gradient", "relax": "perturbation", "conditional_occlusion": "occlusion",
        "edge_baseline": BASELINE,
    }
    assert baselines_last(list(families), families) == ["gradcam", "smooth_grad", "relax", "conditional_occlusion", "edge_baseline", "my_noise"]
    order = ["edge_baseline", "gradcam", "random_baseline", "relax", "centre_baseline", "gradcam"]
    assert baselines_last(order) == ["gradcam", "relax", *(b for b in BASELINE_ORDER if b in order)]  # without families: by name


def test_random_noise_reproducible_per_image_and_different_across_ids() -> None:
    x = torch.rand(3, 3, 12, 16)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a1, a2 = run("random_baseline", x, x, ["img-a", "img-b", "img-c"])
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is never drawn from
    torch.manual_seed(123)  # a different global state changes nothing
    b1, b2 = run("random_baseline", x[[2, 1]] * 0, x[[2, 1]], ["img-c", "img-b"])  # other batch, order, pixels
    assert a1.shape == (3, 12, 16) and a1.dtype == torch.float32
    torch.testing.assert_close(b1, a1[[2, 1]], rtol=0, atol=0)
    torch.testing.assert_close(b2, a2[[2, 1]], rtol=0, atol=0)
    assert not torch.equal(a1[0], a1[1]) and not torch.equal(a1[1], a1[2])  # different ids, different noise
    assert not torch.equal(a1, a2)  # the two views differ
    assert 0 <= float(a1.min()) and float(a1.max()) < 1
    # independent draw: torch.rand from a generator seeded by sha256(image seed / "random_baseline" / view)
    for b, i in enumerate(["img-a", "img-b", "img-c"]):
        for view, m in ((1, a1), (2, a2)):
            g = torch.Generator().manual_seed(sha_seed(sha_seed(3, i, "random_baseline"), "random_baseline", view))
            torch.testing.assert_close(m[b], torch.rand((12, 16), generator=g), rtol=0, atol=0)
    c1, _ = run("random_baseline", x, x, ["img-a", "img-b", "img-c"], seed=4)  # another config seed, another draw
    assert not torch.equal(c1, a1)
    # roughly uniform: mean 1/2, variance 1/12
    big, _ = run("random_baseline", torch.zeros(1, 3, 200, 200), torch.zeros(1, 3, 200, 200), ["x"])
    assert abs(float(big.mean()) - 0.5) < 0.01 and abs(float(big.var()) - 1 / 12) < 0.005


def test_random_needs_a_seed_per_image() -> None:
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="one seed per image"):
        get_method("random_baseline").fn(None, x, x, {}, MethodContext(CPU, seeds=[1]))


def test_centre_gaussian_peak_symmetry_and_width() -> None:
    x1, x2 = torch.rand(2, 3, 41, 41), torch.rand(2, 3, 41, 41)
    sigma = 10 / 41  # s = 10 px
    m1, m2 = run("centre_baseline", x1, x2, ["a", "b"], params={"sigma": sigma})
    assert m1.shape == (2, 41, 41)
    for m in (m1[0], m1[1], m2[0], m2[1]):
        torch.testing.assert_close(m, m1[0], rtol=0, atol=0)  # one map for every image and view, whatever the pixels
    g = m1[0].double()
    assert divmod(int(g.argmax()), 41) == (20, 20) and float(g[20, 20]) == pytest.approx(1.0)
    for t in (g.flip(0), g.flip(1), g.T):
        torch.testing.assert_close(t, g, rtol=0, atol=1e-7)
    assert float(g[20, 30]) == pytest.approx(math.exp(-0.5), abs=1e-6)  # one sigma from the centre
    for i, j in ((0, 0), (5, 33), (20, 0), (37, 12)):  # the formula, pixel by pixel
        want = math.exp(-((i - 20) ** 2 + (j - 20) ** 2) / (2 * 10.0**2))
        assert float(g[i, j]) == pytest.approx(want, rel=1e-5, abs=1e-7)
    even, _ = run("centre_baseline", torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), ["a"])  # default sigma 0.25
    peak = even[0][3:5, 3:5]
    assert torch.all(peak == even[0].max())  # the four centre pixels of an even image
    assert float(even[0][3, 3]) == pytest.approx(math.exp(-(0.5**2 + 0.5**2) / (2 * 2.0**2)), rel=1e-6)
    # sigma is a fraction of the side: the same shape at twice the size
    big, _ = run("centre_baseline", torch.rand(1, 3, 82, 82), torch.rand(1, 3, 82, 82), ["a"], params={"sigma": sigma})
    assert float(big[0][40, 60]) == pytest.approx(math.exp(-((40 - 40.5) ** 2 + (60 - 40.5) ** 2) / (2 * 20.0**2)), rel=1e-5)


@pytest.mark.parametrize("sigma", [0, -0.1, "wide", None, True])
def test_centre_refuses_a_bad_sigma(sigma: object) -> None:
    with pytest.raises(ValueError, match="centre_baseline: params.sigma"):
        get_method("centre_baseline").resolve_params({"sigma": sigma}, 48)


def sobel_loop(x: torch.Tensor) -> np.ndarray:
    """Sobel gradient magnitude of the ITU-R 601 greyscale, replicated borders, as plain Python loops over pixels."""
    x = x.double().numpy()
    b, _, h, w = x.shape
    kx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    out = np.zeros((b, h, w))
    for n in range(b):
        grey = 0.2989 * x[n, 0] + 0.587 * x[n, 1] + 0.114 * x[n, 2]
        for i in range(h):
            for j in range(w):
                gx = gy = 0.0
                for u in range(3):
                    for v in range(3):
                        p = grey[min(max(i + u - 1, 0), h - 1), min(max(j + v - 1, 0), w - 1)]
                        gx += kx[u][v] * p
                        gy += kx[v][u] * p
                out[n, i, j] = math.sqrt(gx * gx + gy * gy)
    return out


def test_edge_is_the_sobel_magnitude_of_each_view() -> None:
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.rand(2, 3, 9, 11, generator=g), torch.rand(2, 3, 9, 11, generator=g)
    m1, m2 = run("edge_baseline", x1, x2, ["a", "b"])
    assert m1.shape == (2, 9, 11)
    np.testing.assert_allclose(m1.numpy(), sobel_loop(x1), atol=2e-5)
    np.testing.assert_allclose(m2.numpy(), sobel_loop(x2), atol=2e-5)
    flat, _ = run("edge_baseline", torch.full((1, 3, 6, 6), 0.4), torch.full((1, 3, 6, 6), 0.4), ["a"])
    assert float(flat.abs().max()) < 1e-6  # no edge anywhere, not even at the border
    step = torch.zeros(1, 3, 6, 8)
    step[..., 4:] = 1.0  # a vertical step between columns 3 and 4
    e, _ = run("edge_baseline", step, step, ["a"])
    assert set(torch.nonzero(e[0] > 1e-6)[:, 1].tolist()) == {3, 4}
    assert float(e[0, 2, 3]) == pytest.approx(4 * (0.2989 + 0.587 + 0.114), rel=1e-4)


def test_metrics_on_baselines_randomisation_and_sensitivity() -> None:
    """RAND = 1 for all three (maps ignore the model); MS: centre 0, random ~0.71 (fresh noise per sample), edge in between."""
    enc = tiny_encoder()
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.rand(3, 3, 16, 16, generator=g, dtype=torch.float64), torch.rand(3, 3, 16, 16, generator=g, dtype=torch.float64)
    ids = ["a", "b", "c"]
    ms, rand = {}, {}
    for name in BASELINES:
        spec = get_method(name)
        params = spec.resolve_params({}, 16)
        m1, m2 = spec.fn(enc, x1, x2, params, MethodContext(CPU, seeds=[sha_seed(5, i, name) for i in ids], image_ids=ids))
        ctx = MetricContext(device=CPU, batch_size=4, method=spec, method_params=params, method_key=name, seed=5, image_ids=ids, indices=[0, 1, 2])
        for metric, out in (("model_randomisation", rand), ("max_sensitivity", ms)):
            mspec = get_metric(metric)
            cols, _ = mspec.fn(enc, x1, x2, m1, m2, mspec.resolve_params({"cascade_levels": 2} if metric == "model_randomisation" else {}, 16), ctx)
            out[name] = cols["RAND" if metric == "model_randomisation" else "MS"]
    for name in BASELINES:
        np.testing.assert_allclose(rand[name], 1.0, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(ms["centre_baseline"], 0.0, atol=1e-9)
    assert np.all((ms["random_baseline"] > 0.6) & (ms["random_baseline"] < 0.9))  # sqrt(1/6) / sqrt(1/3) = 0.71, max of 10
    assert np.all((ms["edge_baseline"] > 0) & (ms["edge_baseline"] < ms["random_baseline"]))
