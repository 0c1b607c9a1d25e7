"""Model card: the linear probe against independent computations, view-cosine quartiles against numpy, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from torch import nn

from xai_ssl.models import build_architecture
from xai_ssl.models.encoder import Encoder
from xai_ssl.models.quality import fit_logistic, linear_probe, model_quality, predict, standardise, view_cosine

ARCH = {"width": 4, "embedding_dim": 8, "hidden_dim": 16}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def scipy_logistic(x: np.ndarray, y: np.ndarray, k: int, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean softmax cross-entropy + l2/2 ||W||^2 minimised by scipy's L-BFGS-B, objective and gradient in numpy."""
    n, d = x.shape
    onehot = np.eye(k)[y]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * k].reshape(d, k), theta[d * k :]
        logits = x @ w + b
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(n), y])) + 0.5 * l2 * np.sum(w * w)
        grad_logits = (p - onehot) / n
        return loss, np.concatenate([(x.T @ grad_logits + l2 * w).ravel(), grad_logits.sum(axis=0)])

    res = minimize(objective, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 5000})
    return res.x[: d * k].reshape(d, k), res.x[d * k :]


@pytest.mark.parametrize("solver", ["newton", "lbfgs"])
@pytest.mark.parametrize(("k", "l2", "d"), [(2, 0.1, 5), (3, 0.01, 5), (2, 0.05, 60)])  # d > n: fitted in the row space
def test_fit_logistic_matches_scipy(k: int, l2: float, d: int, solver: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, d))
    y = rng.integers(0, k, size=40)
    x[np.arange(40), y] += 1.5  # informative, not separable
    w, b = fit_logistic(torch.from_numpy(x), torch.from_numpy(y), k, l2, solver=solver)
    w_ref, b_ref = scipy_logistic(x, y, k, l2)
    # W is identified (the penalty fixes the softmax's shift freedom in W); b only up to a constant shift
    np.testing.assert_allclose(w.numpy(), w_ref, atol=1e-5)
    np.testing.assert_allclose(b.numpy() - b.numpy().mean(), b_ref - b_ref.mean(), atol=1e-5)


def test_standardise_uses_the_train_statistics() -> None:
    rng = np.random.default_rng(1)
    train, test = rng.normal(3.0, 5.0, size=(50, 4)), rng.normal(-1.0, 2.0, size=(20, 4))
    train[:, 2] = 7.0  # a constant column keeps scale 1
    a, b = standardise(torch.from_numpy(train), torch.from_numpy(test))
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[2] = 1.0
    np.testing.assert_allclose(a.numpy(), (train - mean) / std, atol=1e-12)
    np.testing.assert_allclose(b.numpy(), (test - mean) / std, atol=1e-12)


def _separable(n: int, seed: int, d: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    x[:, 0] = (2 * y - 1) * (1.0 + torch.rand(n, generator=g, dtype=torch.float64))  # margin >= 1 on feature 0
    return x, y


def test_probe_separable_is_perfect_and_shuffled_is_chance() -> None:
    xtr, ytr = _separable(200, 0)
    xte, yte = _separable(400, 1)
    assert linear_probe(xtr, ytr, xte, yte, 2, seed=0)["accuracy"] == 1.0
    g = torch.Generator().manual_seed(2)
    shuffled_tr, shuffled_te = ytr[torch.randperm(200, generator=g)], yte[torch.randperm(400, generator=g)]
    acc = linear_probe(xtr, shuffled_tr, xte, shuffled_te, 2, seed=0)["accuracy"]
    assert 0.4 < acc < 0.6  # labels independent of the features, 400 test images: chance +- 4 standard errors


def test_probe_scores_the_test_split_not_the_train_split() -> None:
    """Test labels follow the opposite rule: a probe evaluated on its own train split would score 1."""
    xtr, ytr = _separable(100, 0)
    xte, yte = _separable(100, 1)
    result = linear_probe(xtr, ytr, xte, 1 - yte, 2, seed=0)
    assert result["accuracy"] == 0.0 and result["train_accuracy"] == 1.0


def test_probe_is_invariant_to_feature_scales() -> None:
    """Standardised features: rescaling and shifting columns (1e-3 .. 1e3) changes nothing.

    Without standardisation the L2 penalty would suppress the informative column scaled by 1e-3.
    """
    g = torch.Generator().manual_seed(3)
    y = torch.arange(300) % 2
    x = torch.randn(300, 5, generator=g, dtype=torch.float64)
    x[:, 0] += 1.2 * (2 * y - 1)  # informative but overlapping
    xtr, ytr, xte, yte = x[:200], y[:200], x[200:], y[200:]
    base = linear_probe(xtr, ytr, xte, yte, 2, seed=0)
    scale = torch.tensor([1e-3, 1e3, 1.0, 10.0, 0.1], dtype=torch.float64)
    shift = torch.tensor([5.0, -3.0, 100.0, 0.0, 1.0], dtype=torch.float64)
    scaled = linear_probe(xtr * scale + shift, ytr, xte * scale + shift, yte, 2, seed=0)
    assert base["accuracy"] > 0.75
    assert scaled["accuracy"] == base["accuracy"] and scaled["l2"] == base["l2"]


class MeanColour(nn.Module):
    """Trunk stand-in: [B, 3, H, W] -> [B, 3, 1, 1] channel means (pooled features = mean colour)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


def test_view_cosine_quartiles_match_numpy() -> None:
    torch.manual_seed(0)
    enc = build_architecture("small_resnet", **ARCH).eval()
    g = torch.Generator().manual_seed(4)
    x1, x2 = torch.rand(9, 3, 16, 16, generator=g), torch.rand(9, 3, 16, 16, generator=g)
    got = view_cosine(enc, x1, x2, batch_size=4)
    with torch.no_grad():
        z1, z2 = enc(x1).double().numpy(), enc(x2).double().numpy()
    cos = (z1 * z2).sum(1) / np.linalg.norm(z1, axis=1) / np.linalg.norm(z2, axis=1)
    assert got["n"] == 9
    assert got["median"] == pytest.approx(float(np.median(cos)), abs=1e-6)
    assert got["q25"] == pytest.approx(float(np.percentile(cos, 25)), abs=1e-6)
    assert got["q75"] == pytest.approx(float(np.percentile(cos, 75)), abs=1e-6)
    assert got["min"] == pytest.approx(float(cos.min()), abs=1e-6)


def _colour_data(n: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    """Images whose label is which of red / blue dominates, on noisy grey."""
    g = torch.Generator().manual_seed(seed)
    labels = ["red" if i % 3 else "blue" for i in range(n)]  # 2:1, so majority != 0.5
    x = 0.4 + 0.2 * torch.rand(n, 3, 8, 8, generator=g)
    for i, lab in enumerate(labels):
        x[i, 0 if lab == "red" else 2] += 0.05 + 0.1 * torch.rand((), generator=g)
    return x, labels


def _card(enc: Encoder, xtr: torch.Tensor, ltr: list[str], xte: torch.Tensor, lte: list[str], factory, **labels) -> dict:
    views = {"a": (xte[:5], xte[5:10]), "b": (xte[:3], xte[:3].flip(-1))}
    return model_quality(enc, views, xtr, xte, {"colour": (ltr, lte), **labels}, factory, seed=0, batch_size=7)


def test_model_quality_end_to_end_and_deterministic() -> None:
    xtr, ltr = _colour_data(60, 0)
    xte, lte = _colour_data(30, 1)
    enc = Encoder(MeanColour(), nn.Identity()).eval()
    factory = lambda: build_architecture("small_resnet", **ARCH)
    state = torch.get_rng_state()
    parity = (["even" if i % 2 == 0 else "odd" for i in range(60)], ["even" if i % 2 == 0 else "odd" for i in range(30)])
    card = _card(enc, xtr, ltr, xte, lte, factory, parity=parity)
    assert torch.equal(torch.get_rng_state(), state)  # the random encoder does not disturb the global RNG
    p = card["probe"]["labels"]["colour"]
    assert p["encoder"] == 1.0  # the mean colour separates the classes linearly
    assert p["majority"] == pytest.approx(lte.count("red") / 30)  # train split's most frequent class: red
    assert p["classes"] == ["blue", "red"] and (card["probe"]["n_train"], card["probe"]["n_test"]) == (60, 30)
    assert 0.0 <= p["raw_pixels"] <= 1.0 and 0.0 <= p["random_encoder"] <= 1.0
    assert p["margin"] == pytest.approx(p["encoder"] - max(p["raw_pixels"], p["random_encoder"]))
    assert card["probe"]["labels"]["parity"]["encoder"] < 0.8  # the image index is not in the mean colour
    assert card["view_cosine"]["a"]["n"] == 5 and card["view_cosine"]["b"]["n"] == 3
    # the mean colour does not see a flip: the views of "b" are identical for this encoder
    assert card["view_cosine"]["b"]["median"] == pytest.approx(1.0)
    assert card["view_cosine"]["a"]["median"] < 0.9999  # x1 against x2, not a view against itself
    again = _card(enc, xtr, ltr, xte, lte, factory, parity=parity)
    assert json.dumps(again, sort_keys=True) == json.dumps(card, sort_keys=True)


def test_view_cosine_pairs_x1_with_its_own_x2() -> None:
    """Views whose i-th x2 is x1 of image i, shifted: cosine 1 only if x1[i] is compared with x2[i]."""
    enc = Encoder(MeanColour(), nn.Identity()).eval()
    xte, _ = _colour_data(12, 1)
    got = view_cosine(enc, xte, xte * 1.0, batch_size=5)
    assert got["min"] == pytest.approx(1.0)
    rolled = view_cosine(enc, xte, xte.roll(1, dims=0), batch_size=5)
    assert rolled["min"] < 0.999


def test_majority_is_the_train_splits_most_frequent_class() -> None:
    """Train: 2/3 red; test: 3/4 blue -> always answering red scores 1/4 on the test split."""
    xtr, ltr = _colour_data(30, 0)
    xte = _colour_data(8, 1)[0]
    lte = ["blue"] * 6 + ["red"] * 2
    enc = Encoder(MeanColour(), nn.Identity()).eval()
    card = model_quality(enc, {"d": (xte[:2], xte[2:4])}, xtr, xte, {"colour": (ltr, lte)}, lambda: Encoder(MeanColour(), nn.Identity()), seed=0)
    assert card["probe"]["labels"]["colour"]["majority"] == 0.25


def test_random_encoder_depends_on_the_seed_only() -> None:
    from xai_ssl.models.quality import random_encoder

    factory = lambda: build_architecture("small_resnet", **ARCH)
    a, b, c = random_encoder(factory, 0), random_encoder(factory, 0), random_encoder(factory, 1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


def test_unknown_test_label_is_refused() -> None:
    xtr, ltr = _colour_data(12, 0)
    enc = Encoder(MeanColour(), nn.Identity())
    views = {"d": (xtr[:2], xtr[:2])}
    with pytest.raises(ValueError, match="'green'.*do not occur in the train split"):
        model_quality(enc, views, xtr, xtr[:3], {"c": (ltr, ["red", "blue", "green"])}, lambda: enc, 0)
    with pytest.raises(ValueError, match="label 'c': 12 train images vs 12 labels, 3 test images vs 2 labels"):
        model_quality(enc, views, xtr, xtr[:3], {"c": (ltr, ["red", "blue"])}, lambda: enc, 0)


def test_predict_takes_the_largest_logit() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    w = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    assert predict(x, w, torch.zeros(3, dtype=torch.float64)).tolist() == [0, 2, 2]
