"""Model-parameter randomisation test (RAND): layers, cascade, Spearman score, seeding, NA policy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import rankdata, spearmanr
from torch import nn

from helpers import random_dataset, tiny_encoder
from xai_ssl.methods import MethodContext, get_method
from xai_ssl.metrics import MetricContext, get_metric
from xai_ssl.metrics.randomisation import (
    average_ranks,
    randomisation_layers,
    randomised_encoder,
    spearman,
)
from xai_ssl.models import Encoder

CPU = torch.device("cpu")
RAND = get_metric("model_randomisation")
SIZE = 16


def setup(method: str, n: int = 3):
    enc, spec = tiny_encoder(), get_method(method)
    g = torch.Generator().manual_seed(1)
    x1 = torch.rand(n, 3, SIZE, SIZE, generator=g, dtype=torch.float64)
    x2 = torch.rand(n, 3, SIZE, SIZE, generator=g, dtype=torch.float64)
    m1, m2 = spec.fn(enc, x1, x2, {}, MethodContext(CPU))
    return enc, spec, x1, x2, m1, m2


def mctx(spec, n: int, seed: int = 0, key: str | None = None) -> MetricContext:
    return MetricContext(
        device=CPU, batch_size=8, method=spec, method_params={}, method_key=key or spec.name, seed=seed,
        image_ids=[f"img{i}" for i in range(n)], indices=list(range(n)),
    )


def run(method_setup, seed: int = 0, **params):
    enc, spec, x1, x2, m1, m2 = method_setup
    return RAND.fn(enc, x1, x2, m1, m2, RAND.resolve_params(params, SIZE), mctx(spec, x1.shape[0], seed))[0]


def test_zero_levels_with_a_stochastic_method_give_exactly_one(tmp_path) -> None:
    """Smooth-Grad through the attribution and evaluation stages (config name != registry name, shard 1 of 2, other
    chunking): RAND re-runs the method with the attribution step's per-image seeds, so zero levels give 1.0 exactly."""
    import pandas as pd

    from xai_ssl.stages.attribution import compute_attributions
    from xai_ssl.stages.evaluation import compute_metrics

    data = random_dataset(tmp_path / "data", 5, SIZE)
    maps = tmp_path / "maps.h5"
    compute_attributions(data["pairs"], data["encoder"], maps, "smooth_grad", {"n_samples": 3}, 2, 11, "cpu", 1, "d", "m", "sg_small", 1, progress=False)
    metrics = {"model_randomisation": {"cascade_levels": 0}}
    compute_metrics(data["pairs"], data["encoder"], maps, tmp_path / "s.csv", tmp_path / "s.curves.h5", metrics, "cpu", 4, "d", "m", progress=False)
    scores = pd.read_csv(tmp_path / "s.csv")
    assert scores["image_id"].tolist() == ["im2", "im3", "im4"]
    assert scores["RAND"].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("method", ["input_x_gradient", "gradcam"])
def test_zero_levels_give_correlation_one(method: str) -> None:
    scores = run(setup(method), cascade_levels=0)
    np.testing.assert_allclose(scores["RAND"], 1.0, atol=1e-12)
    assert not [k for k in scores if k.startswith("RAND_L")]


def test_randomised_head_decorrelates_a_gradient_method() -> None:
    scores = run(setup("input_x_gradient"), cascade_levels=1)
    assert (scores["RAND"] < 0.9).all(), scores["RAND"]
    np.testing.assert_array_equal(scores["RAND"], scores["RAND_L1"])  # RAND = the deepest level
    deeper = run(setup("input_x_gradient"), cascade_levels=3)
    np.testing.assert_allclose(deeper["RAND_L1"], scores["RAND_L1"], rtol=1e-12)  # cascading: level 1 is the same model
    np.testing.assert_array_equal(deeper["RAND"], deeper["RAND_L3"])
    assert set(deeper) == {"RAND", "RAND_L1", "RAND_L2", "RAND_L3"}


def test_deterministic_with_the_seed() -> None:
    s = setup("gradcam")
    a, b, c = run(s, seed=0, cascade_levels=2), run(s, seed=0, cascade_levels=2), run(s, seed=1, cascade_levels=2)
    np.testing.assert_array_equal(a["RAND"], b["RAND"])
    assert not np.allclose(a["RAND"], c["RAND"])
    enc = s[0]
    r0, r1 = randomised_encoder(enc, 2, 7), randomised_encoder(enc, 2, 7)
    for (k, v0), v1 in zip(r0.state_dict().items(), r1.state_dict().values()):
        assert torch.equal(v0, v1), k


def test_layers_and_cascade_touch_only_the_top_layers() -> None:
    enc = tiny_encoder()
    names = [n for n, _ in randomisation_layers(enc)]
    assert names == ["head", "trunk.4", "trunk.3", "trunk.2", "trunk.1", "trunk.0"]
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    rand = randomised_encoder(enc, 2, seed=3)
    for k, v in enc.state_dict().items():
        assert torch.equal(v, before[k]), f"the trained encoder was modified: {k}"
    after = rand.state_dict()
    changed = {k.split(".")[0] + ("." + k.split(".")[1] if k.startswith("trunk") else "") for k in after if not torch.equal(after[k], before[k])}
    assert changed == {"head", "trunk.4"}
    assert not rand.training
    assert [n for n, _ in randomisation_layers(Encoder(nn.Identity(), nn.Linear(3, 2)))] == ["head", "trunk"]


def test_spearman_against_scipy_and_edge_cases() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (6, 6), generator=g).double()  # many ties
    b = a + 0.7 * torch.randn(6, 6, generator=g, dtype=torch.float64)
    assert spearman(a, b) == pytest.approx(spearmanr(a.flatten(), b.flatten()).statistic, abs=1e-12)
    np.testing.assert_array_equal(average_ranks(a.flatten().numpy()), rankdata(a.flatten().numpy()))
    np.testing.assert_array_equal(average_ranks(np.array([2.0, 1.0, 2.0, 2.0, 0.5])), [4.0, 2.0, 4.0, 4.0, 1.0])
    assert spearman(a, a) == pytest.approx(1.0) and spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, a**3 + 2) == pytest.approx(1.0)  # rank-based: monotone transforms do not matter
    assert math.isnan(spearman(torch.ones(3, 3), a[:3, :3]))  # constant trained map: NA
    assert spearman(a, torch.zeros(6, 6)) == 0.0  # constant randomised map: no shared ranking


def test_image_cap_and_excluded_methods() -> None:
    s = setup("input_x_gradient", n=3)
    capped = run(s, cascade_levels=1, max_images=2)
    assert np.isfinite(capped["RAND"][:2]).all() and math.isnan(capped["RAND"][2])
    np.testing.assert_allclose(capped["RAND"][:2], run(s, cascade_levels=1)["RAND"][:2], rtol=1e-12)
    enc, spec, x1, x2, m1, m2 = s
    params = RAND.resolve_params({"cascade_levels": 1, "methods_without_rand": ["input_x_gradient"]}, SIZE)
    skipped, _ = RAND.fn(enc, x1, x2, m1, m2, params, mctx(spec, 3))
    assert np.isnan(skipped["RAND"]).all() and np.isnan(skipped["RAND_L1"]).all()
    with pytest.raises(ValueError, match="MetricContext"):
        RAND.fn(enc, x1, x2, m1, m2, params, MethodContext(CPU))
    with pytest.raises(ValueError, match="cascade_levels"):
        RAND.resolve_params({"cascade_levels": -1}, SIZE)
    assert RAND.directions == {"RAND": "↓"}
