"""Model card of an encoder: how similar its two explained views are, and what a linear probe reads from it.

A card answers "did the model learn anything?" before any explanation is read. It holds

* ``view_cosine``: quartiles of cos(f(x1), f(x2)) over the explained pairs (f = the embedding every method
  explains). A model that is not invariant to the view augmentation gives low or negative cosines, and
  methods that explain the similarity then explain noise.
* ``probe``: the test accuracy of a linear probe (multinomial logistic regression with L2, on standardised
  frozen pooled trunk features, fitted on the train split) for the encoder, for the same probe on raw
  pixels, and for a randomly initialised encoder of the same architecture (linear evaluation protocol of
  Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations", §4; random
  and raw-pixel baselines as in Kolesnikov et al. 2019, "Revisiting Self-Supervised Visual Representation
  Learning"). The L2 strength is chosen per feature set by seeded k-fold cross-validation on the train split,
  so the raw-pixel probe (thousands of inputs) is not handicapped by a strength chosen for 128 features.

Everything is in memory (tensors and labels in, a JSON-able dict out); the caller fixes torch's thread count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from xai_ssl.models.encoder import Encoder
from xai_ssl.seeding import derive_seed

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)  # candidate strengths of (l2 / 2) * ||W||^2 added to the mean cross-entropy
N_FOLDS = 5


@torch.no_grad()
def pooled_features(encoder: Encoder, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Spatial mean of the trunk's feature maps, [N, 3, H, W] -> [N, C] (float64, eval mode)."""
    was_training = encoder.training
    encoder.eval()
    device = encoder.input_mean.device
    out = [encoder.features(images[i : i + batch_size].to(device)).mean(dim=(2, 3)).double().cpu() for i in range(0, len(images), batch_size)]
    encoder.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 0, dtype=torch.float64)


@torch.no_grad()
def embeddings(encoder: Encoder, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Embeddings f(x) [N, D] (float64) of images [N, 3, H, W] in eval mode."""
    was_training = encoder.training
    encoder.eval()
    device = encoder.input_mean.device
    out = [encoder(images[i : i + batch_size].to(device)).double().cpu() for i in range(0, len(images), batch_size)]
    encoder.train(was_training)
    return torch.cat(out)


def quartiles(values: torch.Tensor) -> dict[str, float | int]:
    """{median, q25, q75, min, max, n} of a 1-D tensor (linear interpolation between order statistics)."""
    v = values.double().flatten()
    if v.numel() == 0:
        raise ValueError("quartiles: no values")
    q = torch.quantile(v, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    return {"median": float(q[1]), "q25": float(q[0]), "q75": float(q[2]), "min": float(v.min()), "max": float(v.max()), "n": int(v.numel())}


def view_cosine(encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, batch_size: int) -> dict[str, float | int]:
    """Quartiles of cos(f(x1), f(x2)) over pairs of views [N, 3, H, W]."""
    if x1.shape != x2.shape:
        raise ValueError(f"view_cosine: x1 {tuple(x1.shape)} and x2 {tuple(x2.shape)} differ in shape")
    z1, z2 = embeddings(encoder, x1, batch_size), embeddings(encoder, x2, batch_size)  # [N, D]
    return quartiles(torch.nn.functional.cosine_similarity(z1, z2, dim=1))


def encode_labels(train_labels: Sequence[Any], test_labels: Sequence[Any]) -> tuple[list[Any], torch.Tensor, torch.Tensor]:
    """(classes sorted, train targets [N], test targets [M]); every test label must occur in the train split."""
    classes = sorted(set(train_labels), key=str)
    if len(classes) < 2:
        raise ValueError(f"linear probe: the train split needs at least 2 classes, found {classes}")
    unknown = sorted(set(test_labels) - set(classes), key=str)
    if unknown:
        raise ValueError(f"linear probe: test label(s) {unknown} do not occur in the train split ({classes})")
    pos = {c: i for i, c in enumerate(classes)}
    return classes, torch.tensor([pos[c] for c in train_labels]), torch.tensor([pos[c] for c in test_labels])


def standardise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Centre and scale every column by the train split's mean and standard deviation (constant columns: scale 1)."""
    mean = train.mean(dim=0)
    std = train.std(dim=0, unbiased=False)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return [(t - mean) / std for t in (train, *others)]


def _objective(x: torch.Tensor, onehot: torch.Tensor, theta: torch.Tensor, l2: float) -> torch.Tensor:
    """Mean cross-entropy + (l2 / 2) ||W||^2 for theta [D + 1, K] = [W; b] and x [N, D + 1] (last column ones)."""
    logits = x @ theta  # [N, K]
    ce = (torch.logsumexp(logits, dim=1) - (logits * onehot).sum(dim=1)).mean()
    return ce + 0.5 * l2 * (theta[:-1] ** 2).sum()


def row_space(x: torch.Tensor) -> torch.Tensor | None:
    """Orthonormal basis [D, r] of the row space of x [N, D] when D > N (else None: fit in the original space)."""
    if x.shape[1] <= x.shape[0]:
        return None
    _, s, vh = torch.linalg.svd(x.double(), full_matrices=False)  # vh [min(N, D), D]
    return vh[s > s[0] * 1e-12].T


def _newton(xb: torch.Tensor, onehot: torch.Tensor, penalty: torch.Tensor, l2: float, max_iter: int, tol: float) -> torch.Tensor:
    """Damped Newton steps (Armijo backtracking) from zero on :func:`_objective`; theta [D + 1, K]."""
    n, d1 = xb.shape
    k = onehot.shape[1]
    theta = torch.zeros(d1, k, dtype=torch.float64)
    f = _objective(xb, onehot, theta, l2)
    for _ in range(max_iter):
        p = torch.softmax(xb @ theta, dim=1)  # [N, K]
        grad = xb.T @ (p - onehot) / n + penalty[:, None] * theta  # [D + 1, K]
        if float(grad.abs().max()) < tol:
            break
        # Hessian over vec(theta) (class-major blocks): X^T diag(p_a (delta_ac - p_c)) X / N + penalty
        hess = torch.empty(k, d1, k, d1, dtype=torch.float64)
        for a in range(k):
            for c in range(a, k):
                weight = p[:, a] * ((1.0 if a == c else 0.0) - p[:, c])  # [N]
                block = (xb * weight[:, None]).T @ xb / n
                hess[a, :, c] = block
                hess[c, :, a] = block.T
        diag = penalty.repeat(k)
        diag[d1 - 1 :: d1] = 1e-9  # the common shift of b is flat; a tiny ridge keeps the system solvable
        step = torch.linalg.solve(hess.reshape(k * d1, k * d1) + torch.diag(diag), grad.T.reshape(-1)).reshape(k, d1).T
        slope = float((grad * step).sum())
        t = 1.0
        while True:
            candidate = theta - t * step
            f_new = _objective(xb, onehot, candidate, l2)
            if float(f_new) <= float(f) - 1e-4 * t * slope or t < 1e-10:
                break
            t *= 0.5
        theta, f = candidate, f_new
    return theta


def _lbfgs(xb: torch.Tensor, onehot: torch.Tensor, l2: float, max_iter: int, tol: float) -> torch.Tensor:
    """Full-batch L-BFGS (strong Wolfe line search) from zero on :func:`_objective`; theta [D + 1, K]."""
    theta = torch.zeros(xb.shape[1], onehot.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=max_iter, history_size=20, tolerance_grad=tol, tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = _objective(xb, onehot, theta, l2)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return theta.detach()


NEWTON_MAX_UNKNOWNS = 1100  # Newton up to this many unknowns (D + 1) * K, L-BFGS above (Hessian cost ~ N (D K)^2)


def fit_logistic(
    x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float, solver: str = "auto", max_iter: int = 1000, tol: float = 1e-9
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression: minimise mean cross-entropy + (l2 / 2) ||W||^2 (bias free).

    x [N, D], y [N] class indices -> (W [D, K], b [K]), float64. ``solver``: ``newton`` (damped Newton),
    ``lbfgs`` (torch's L-BFGS), ``auto`` = Newton up to ``NEWTON_MAX_UNKNOWNS`` unknowns. Both start from
    zero and stop when the largest gradient entry is below ``tol``; the objective is strictly convex in W, so
    the solution does not depend on the path (b is fixed up to the softmax's common shift, which changes
    nothing). With more features than samples (raw pixels) the fit runs in the row space of x (W = V C with
    x = U S V^T): the data term does not see the part of W orthogonal to the rows and the penalty sets it to
    zero, so the optimum is the same, at N instead of D unknowns per class.
    """
    if solver not in ("auto", "newton", "lbfgs"):
        raise ValueError(f"fit_logistic: solver {solver!r} is not one of auto, newton, lbfgs")
    x = x.double()
    n, k = x.shape[0], n_classes
    basis = row_space(x)
    if basis is not None:
        x = x @ basis  # [N, r]
    d1 = x.shape[1] + 1
    xb = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], dim=1)  # [N, D + 1]
    onehot = torch.nn.functional.one_hot(y, k).double()  # [N, K]
    penalty = torch.full((d1,), float(l2), dtype=torch.float64)
    penalty[-1] = 0.0  # the bias is not penalised
    if solver == "newton" or (solver == "auto" and d1 * k <= NEWTON_MAX_UNKNOWNS):
        theta = _newton(xb, onehot, penalty, l2, min(max_iter, 100), tol)
    else:
        theta = _lbfgs(xb, onehot, l2, max_iter, tol)
    w, b = theta[:-1], theta[-1]
    return (w if basis is None else basis @ w), b


def predict(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Class index [N] of the largest logit (first on ties)."""
    return (x.double() @ w + b).argmax(dim=1)


def choose_l2(x: torch.Tensor, y: torch.Tensor, n_classes: int, seed: int, grid: Sequence[float] = L2_GRID, folds: int = N_FOLDS) -> float:
    """The L2 strength of ``grid`` with the best k-fold accuracy on (x, y); ties go to the stronger strength.

    Folds come from a seeded permutation; each fold is standardised by its own training part.
    """
    n = len(y)
    folds = max(2, min(folds, n))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(seed, "probe-folds")))
    parts = [perm[k::folds] for k in range(folds)]
    correct = dict.fromkeys(grid, 0)
    for k in range(folds):
        val = parts[k]
        tr = torch.cat([parts[j] for j in range(folds) if j != k])
        xtr, xval = standardise(x[tr], x[val])
        basis = row_space(xtr)  # once per fold, not per strength (the same projection fit_logistic would make)
        if basis is not None:
            xtr, xval = xtr @ basis, xval @ basis
        for l2 in grid:
            w, b = fit_logistic(xtr, y[tr], n_classes, l2)
            correct[l2] += int((predict(xval, w, b) == y[val]).sum())
    best, best_acc = max(grid), -1
    for l2 in sorted(grid, reverse=True):
        if correct[l2] > best_acc:
            best, best_acc = l2, correct[l2]
    return best


def linear_probe(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, n_classes: int, seed: int, grid: Sequence[float] = L2_GRID
) -> dict[str, float]:
    """Test accuracy of a logistic regression on standardised features [N, D], its L2 chosen by cross-validation on train."""
    train_x, test_x = train_x.flatten(1).double(), test_x.flatten(1).double()
    l2 = choose_l2(train_x, train_y, n_classes, seed, grid)
    xtr, xte = standardise(train_x, test_x)
    w, b = fit_logistic(xtr, train_y, n_classes, l2)
    return {
        "accuracy": float((predict(xte, w, b) == test_y).double().mean()),
        "train_accuracy": float((predict(xtr, w, b) == train_y).double().mean()),
        "l2": float(l2),
    }


def random_encoder(arch_factory: Callable[[], Encoder], seed: int) -> Encoder:
    """``arch_factory()`` initialised under a seed derived from ``seed`` (the global RNG state is restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "quality-random-encoder"))
        return arch_factory().eval()


def model_quality(
    encoder: Encoder,
    views: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    train_images: torch.Tensor,
    test_images: torch.Tensor,
    labels: Mapping[str, tuple[Sequence[Any], Sequence[Any]]],
    arch_factory: Callable[[], Encoder],
    seed: int,
    batch_size: int = 64,
) -> dict[str, Any]:
    """The model card: view-cosine quartiles per set of explained pairs and three linear probes per label.

    ``views``: name (the dataset) -> the explained views (x1, x2), each [P, 3, S, S]; train_images [N, 3, S, S]
    and test_images [M, 3, S, S] in [0, 1]; ``labels``: name -> (N train labels, M test labels). Probes per
    label: ``encoder`` (its pooled trunk features), ``raw_pixels`` (the flattened images) and ``random_encoder``
    (``arch_factory()`` under a seed derived from ``seed``); ``majority`` is the test rate of the train
    split's most frequent class; ``margin`` = encoder - max(raw_pixels, random_encoder). Features are
    computed once and shared by all labels.
    """
    if not labels:
        raise ValueError("model_quality: no labels to probe")
    for name, (tr, te) in labels.items():
        if len(train_images) != len(tr) or len(test_images) != len(te):
            raise ValueError(
                f"model_quality: label {name!r}: {len(train_images)} train images vs {len(tr)} labels, "
                f"{len(test_images)} test images vs {len(te)} labels"
            )
    rnd = random_encoder(arch_factory, seed).to(encoder.input_mean.device)
    features = {
        "encoder": (pooled_features(encoder, train_images, batch_size), pooled_features(encoder, test_images, batch_size)),
        "raw_pixels": (train_images, test_images),
        "random_encoder": (pooled_features(rnd, train_images, batch_size), pooled_features(rnd, test_images, batch_size)),
    }
    probes: dict[str, Any] = {}
    for name, (tr, te) in labels.items():
        classes, ytr, yte = encode_labels(list(tr), list(te))
        k = len(classes)
        fitted = {f: linear_probe(a, ytr, b, yte, k, derive_seed(seed, "probe", name)) for f, (a, b) in features.items()}
        acc = {f: p["accuracy"] for f, p in fitted.items()}
        majority_class = int(torch.bincount(ytr, minlength=k).argmax())
        probes[name] = {
            **acc,
            "majority": float((yte == majority_class).double().mean()),
            "margin": acc["encoder"] - max(acc["raw_pixels"], acc["random_encoder"]),
            "classes": [str(c) for c in classes],
            "details": fitted,
        }
    return {
        "view_cosine": {name: view_cosine(encoder, x1, x2, batch_size) for name, (x1, x2) in views.items()},
        "probe": {"n_train": len(train_images), "n_test": len(test_images), "labels": probes},
        "seed": int(seed),
    }
