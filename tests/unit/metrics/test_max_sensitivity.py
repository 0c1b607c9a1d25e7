"""Max-sensitivity MS against Captum's ``sensitivity_max`` (same noise draws) and a plain loop.

Captum's definition differs in details, which the comparison works around and the test documents:
* Captum treats a tuple of inputs as ONE explanation (one norm over all of them); MS takes a norm
  per map and averages the two maxima. So Captum is called once per view, with the other view
  receiving the same δ inside the explanation function, and compared with MS_1 / MS_2.
* Captum draws its own noise (in whatever space the inputs are); we pass a perturbation function
  that returns our pre-drawn, per-image seeded δ (model-input space, times std in pixel space).
* Captum divides by 1 when ||e|| = 0; MS is NA there.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from captum.metrics import sensitivity_max

from helpers import tiny_encoder
from xai_ssl.methods import MethodContext, MethodSpec, get_method
from xai_ssl.metrics import MetricContext, get_metric
from xai_ssl.metrics.max_sensitivity import draw_noise, pixel_noise
from xai_ssl.seeding import derive_seed

CPU = torch.device("cpu")
MS = get_metric("max_sensitivity")
SIZE = 16


def images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, SIZE, SIZE, generator=g, dtype=torch.float64), torch.rand(n, 3, SIZE, SIZE, generator=g, dtype=torch.float64)


def mctx(spec: MethodSpec, ids: list[str], seed: int = 5, batch_size: int = 4, key: str | None = None) -> MetricContext:
    return MetricContext(
        device=CPU, batch_size=batch_size, method=spec, method_params={}, method_key=key or spec.name, seed=seed,
        image_ids=ids, indices=list(range(len(ids))),
    )


@pytest.mark.parametrize("method", ["input_x_gradient", "gradcam"])
def test_against_captum_sensitivity_max(method: str) -> None:
    enc, spec = tiny_encoder(), get_method(method)
    x1, x2 = images(1, seed=1)
    m1, m2 = spec.fn(enc, x1, x2, {}, MethodContext(CPU))
    params = MS.resolve_params({"n_samples": 6}, SIZE)
    scores, _ = MS.fn(enc, x1, x2, m1, m2, params, mctx(spec, ["img-a"]))
    delta = pixel_noise(enc, draw_noise(5, "img-a", 6, (3, SIZE, SIZE), 0.2)).double()  # the metric's draws
    assert float(delta.abs().max()) <= 0.2 * float(enc.input_std.max()) + 1e-12

    def captum_view(k: int) -> float:
        clean = (x1, x2)

        def perturb(inputs: torch.Tensor, radius: float) -> torch.Tensor:
            assert inputs.shape[0] == 6 and radius == 0.2
            return inputs + delta

        def explain(inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor | tuple[torch.Tensor]:
            # Captum passes a tuple (and expects a tuple back) for the clean call, a tensor for the noisy batch
            x = inputs[0] if isinstance(inputs, tuple) else inputs
            if x.shape[0] == 1:  # the clean explanation
                e = spec.fn(enc, *clean, {}, MethodContext(CPU))[k]
            else:
                other = clean[1 - k] + delta  # the same δ on the other view
                pair = (x, other) if k == 0 else (other, x)
                e = spec.fn(enc, *pair, {}, MethodContext(CPU))[k]
            return (e,) if isinstance(inputs, tuple) else e

        out = sensitivity_max(explain, clean[k], perturb_func=perturb, perturb_radius=0.2, n_perturb_samples=6, norm_ord="fro")
        return float(out[0])

    c1, c2 = captum_view(0), captum_view(1)
    assert scores["MS_1"][0] == pytest.approx(c1, rel=1e-9)
    assert scores["MS_2"][0] == pytest.approx(c2, rel=1e-9)
    assert scores["MS"][0] == pytest.approx((c1 + c2) / 2, rel=1e-9)
    assert scores["MS"][0] > 1e-3


def test_against_a_plain_loop_and_seeding() -> None:
    enc, spec = tiny_encoder(), get_method("input_x_gradient")
    x1, x2 = images(2, seed=2)
    m1, m2 = spec.fn(enc, x1, x2, {}, MethodContext(CPU))
    params = MS.resolve_params({}, SIZE)
    assert (params["radius"], params["n_samples"]) == (0.2, 10)
    ids = ["first", "second"]
    scores, curves = MS.fn(enc, x1, x2, m1, m2, params, mctx(spec, ids, batch_size=3))
    assert curves == {}
    std = enc.input_std  # [1, 3, 1, 1]
    for b, image_id in enumerate(ids):
        g = torch.Generator().manual_seed(derive_seed(5, image_id, "max_sensitivity"))
        u = torch.rand((10, 3, SIZE, SIZE), generator=g, dtype=torch.float64)
        rho1, rho2 = [], []
        for n in range(10):
            d = ((2 * u[n] - 1) * 0.2).float() * std[0].float()  # model-input space δ -> pixels
            e1, e2 = spec.fn(enc, x1[b : b + 1] + d.double(), x2[b : b + 1] + d.double(), {}, MethodContext(CPU))
            rho1.append(float(torch.linalg.norm(m1[b] - e1[0]) / torch.linalg.norm(m1[b])))
            rho2.append(float(torch.linalg.norm(m2[b] - e2[0]) / torch.linalg.norm(m2[b])))
        assert scores["MS_1"][b] == pytest.approx(max(rho1), rel=1e-9)
        assert scores["MS_2"][b] == pytest.approx(max(rho2), rel=1e-9)
        assert scores["MS"][b] == pytest.approx((max(rho1) + max(rho2)) / 2, rel=1e-9)
    # deterministic, and the noise depends on the image id and the seed
    again, _ = MS.fn(enc, x1, x2, m1, m2, params, mctx(spec, ids, batch_size=16))
    np.testing.assert_allclose(again["MS"], scores["MS"], rtol=1e-12)
    other, _ = MS.fn(enc, x1, x2, m1, m2, params, mctx(spec, ids, seed=6))
    assert not np.allclose(other["MS"], scores["MS"])
    assert not torch.equal(draw_noise(5, "first", 2, (3, 4, 4), 0.2), draw_noise(5, "second", 2, (3, 4, 4), 0.2))
    # larger noise, larger sensitivity
    big, _ = MS.fn(enc, x1, x2, m1, m2, MS.resolve_params({"radius": 1.0}, SIZE), mctx(spec, ids))
    assert (big["MS"] > scores["MS"]).all()


def test_na_policy() -> None:
    enc = tiny_encoder()
    x1, x2 = images(1, seed=3)
    occ = get_method("conditional_occlusion")
    params = MS.resolve_params({}, SIZE)
    m = torch.rand(1, 5, 5, dtype=torch.float64)
    scores, _ = MS.fn(enc, x1, x2, m, m, params, mctx(occ, ["x"]))  # excluded by default: not even run
    assert math.isnan(scores["MS"][0]) and math.isnan(scores["MS_1"][0]) and math.isnan(scores["MS_2"][0])
    # excluded by config name as well as registry name; opt-in by emptying the list
    ixg = get_method("input_x_gradient")
    m1, m2 = ixg.fn(enc, x1, x2, {}, MethodContext(CPU))
    keyed, _ = MS.fn(enc, x1, x2, m1, m2, MS.resolve_params({"methods_without_ms": ["my_ixg"]}, SIZE), mctx(ixg, ["x"], key="my_ixg"))
    assert math.isnan(keyed["MS"][0])
    # a zero clean map has no relative change: NA (Captum would divide by 1)
    zero, _ = MS.fn(enc, x1, x2, torch.zeros_like(m1), m2, params, mctx(ixg, ["x"]))
    assert math.isnan(zero["MS_1"][0]) and math.isnan(zero["MS"][0]) and np.isfinite(zero["MS_2"][0])
    # single-map method: MS = max rho of the one map, no MS_2
    single = MethodSpec("single_test", lambda e, a, b, p, c: (ixg.fn(e, a, b, p, c)[0], None), "crop_aug", {}, n_maps=1)
    one, _ = MS.fn(enc, x1, x2, m1, None, params, mctx(single, ["x"]))
    both, _ = MS.fn(enc, x1, x2, m1, m2, params, mctx(ixg, ["x"]))
    assert "MS_2" not in one and one["MS"][0] == one["MS_1"][0] == pytest.approx(both["MS_1"][0], rel=1e-12)
    # the metric refuses to run without the method
    with pytest.raises(ValueError, match="MetricContext"):
        MS.fn(enc, x1, x2, m1, m2, params, MethodContext(CPU))
    with pytest.raises(ValueError, match="radius"):
        MS.resolve_params({"radius": 0}, SIZE)
