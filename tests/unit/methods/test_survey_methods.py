"""The survey's methods (RELAX, LFFI, COCOA, embedded Grad-CAM, VDSN) against plain loops / Captum, and the corpus plumbing."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import images, require_module, tiny_encoder
from xai_ssl.data.corpus import choose_records, load_corpus
from xai_ssl.engine import cosine, sub_context
from xai_ssl.methods import MethodContext, get_method
from xai_ssl.methods.cocoa import noise_foil, rise_masks
from xai_ssl.methods.corpus import Corpus
from xai_ssl.methods.relax import build_masks
from xai_ssl.models import Encoder, build_architecture

captum_attr = require_module("captum.attr")

CPU = torch.device("cpu")


def make_corpus(n: int = 8, size: int = 16, labels: list[str] | None = None, seed: int = 5) -> Corpus:
    labels = labels or ["a", "b"] * (n // 2)
    imgs = (images(n, size, seed=seed) * 255).round().to(torch.uint8)
    ids = [f"ref{i}" for i in range(n)]
    return Corpus(imgs, ids, list(labels), "train", 7, {**dict(zip(ids, labels)), "q0": "a", "q1": "b", "q2": "a"})


def ctx(seeds: list[int], corpus: Corpus | None = None, ids: list[str] | None = None, batch_size: int = 16) -> MethodContext:
    return MethodContext(device=CPU, batch_size=batch_size, seeds=list(seeds), image_ids=list(ids or []), corpus=corpus)


def run(name: str, enc: Encoder, x1: torch.Tensor, params: dict | None = None, **kw):
    spec = get_method(name)
    return spec.fn(enc, x1, x1.flip(-1), spec.resolve_params(params or {}, x1.shape[-1]), ctx(**kw))


# --------------------------------------------------------------------------------------------
# Masks written from the papers (none of the code under test): RISE (Petsiuk, Das & Saenko, BMVC 2018, §3.2
# "Mask generation"), RELAX (Wickstrøm et al., IJCV 2023, §3: RISE-style masks, shifted within a padding)
# --------------------------------------------------------------------------------------------


def bilinear_upsample(grid: np.ndarray, out: int) -> np.ndarray:
    """Bilinear interpolation of a [g, g] grid to [out, out]: pixel centres at (i + 0.5)·g/out − 0.5 in the
    grid (half-pixel convention), coordinates below 0 held at the edge cell; one output pixel at a time."""
    g = grid.shape[0]

    def source(i: int) -> tuple[int, int, float]:
        x = max((i + 0.5) * g / out - 0.5, 0.0)
        i0 = int(np.floor(x))
        return i0, min(i0 + 1, g - 1), x - i0

    res = np.empty((out, out))
    for r in range(out):
        r0, r1, wr = source(r)
        for c in range(out):
            c0, c1, wc = source(c)
            top = (1 - wc) * grid[r0, c0] + wc * grid[r0, c1]
            bottom = (1 - wc) * grid[r1, c0] + wc * grid[r1, c1]
            res[r, c] = (1 - wr) * top + wr * bottom
    return res


def reflect_pad(a: np.ndarray, pad: int) -> np.ndarray:
    """Pad [n, n] by ``pad`` on every side, mirroring about the edge pixel (which is not repeated)."""
    n = a.shape[0]
    idx = [abs(j) if j < 0 else (2 * (n - 1) - j if j >= n else j) for j in range(-pad, n + pad)]
    return a[np.ix_(idx, idx)]


def paper_relax_masks(grids: torch.Tensor, shifts: torch.Tensor, size: int, shift: int) -> torch.Tensor:
    """RELAX masks [n, 1, size, size]: a binary G×G grid up-sampled bilinearly to the image, reflect-padded by
    ``shift`` px and cropped at (row, col) = (shifts[:, 1], shifts[:, 0]) in {0..2·shift}."""
    out = []
    for grid, (dx, dy) in zip(grids[:, 0].numpy(), shifts.tolist()):
        big = reflect_pad(bilinear_upsample(grid, size), shift)
        out.append(big[dy : dy + size, dx : dx + size])
    return torch.from_numpy(np.stack(out))[:, None]


def paper_rise_masks(grids: torch.Tensor, shifts: torch.Tensor, size: int) -> torch.Tensor:
    """RISE masks [n, 1, size, size]: a binary G×G grid up-sampled bilinearly to (G+1)·C px, C = ⌈size/G⌉ (the
    RISE reference code's cell size), cropped at (row, col) = (shifts[:, 0], shifts[:, 1]) in [0, C)."""
    g = grids.shape[-1]
    cell = -(-size // g)
    out = []
    for grid, (dy, dx) in zip(grids[:, 0].numpy(), shifts.tolist()):
        big = bilinear_upsample(grid, (g + 1) * cell)
        out.append(big[dy : dy + size, dx : dx + size])
    return torch.from_numpy(np.stack(out))[:, None]


def keep_grids(n: int, cells: int, p: float, g: torch.Generator) -> torch.Tensor:
    """The draw both methods document: n binary G×G grids, each cell kept (1) with probability p; [n, 1, G, G]."""
    return (torch.rand(n, 1, cells, cells, generator=g) < p).double()


def test_bilinear_reference_is_bilinear() -> None:
    """The reference itself: a 2×2 grid to 4×4 by hand (weights 1/4, 3/4 between the cell centres)."""
    grid = np.array([[0.0, 1.0], [0.0, 0.0]])
    row = [0.0, 0.25, 0.75, 1.0]
    np.testing.assert_allclose(bilinear_upsample(grid, 4), np.outer([1.0, 0.75, 0.25, 0.0], row))
    np.testing.assert_array_equal(reflect_pad(np.arange(3.0)[None].repeat(3, 0), 2)[0], [2.0, 1.0, 0.0, 1.0, 2.0, 1.0, 0.0])


def test_relax_masks_follow_the_paper() -> None:
    """Bilinear (not nearest) up-sampling, reflect padding and the shifted crop, with row and column shifts apart."""
    shift, size = 2, 20
    grids = keep_grids(6, 5, 0.5, torch.Generator().manual_seed(3))
    shifts = torch.tensor([[0, 0], [4, 0], [0, 4], [1, 3], [4, 4], [2, 2]])  # (x = column, y = row)
    got = build_masks(grids, shifts, size, shift)
    ref = paper_relax_masks(grids, shifts, size, shift)
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)
    assert not torch.allclose(ref[1], ref[0]) and not torch.allclose(ref[1], ref[2])  # the shifts move the masks


def test_rise_masks_follow_the_paper() -> None:
    """COCOA's RISE masks: bilinear up-sampling to (G+1)·C px and the crop at the drawn shift (row, column)."""
    size, cells = 16, 4  # C = 4
    grids = keep_grids(5, cells, 0.5, torch.Generator().manual_seed(4))
    shifts = torch.tensor([[0, 0], [3, 0], [0, 3], [1, 2], [3, 3]])  # (row, column)
    got = rise_masks(grids, shifts, size, 4)
    ref = paper_rise_masks(grids, shifts, size)
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)
    assert not torch.allclose(ref[1], ref[0]) and not torch.allclose(ref[1], ref[2])
    # a size that is no multiple of G: C = ⌈18/4⌉ = 5, masks up-sampled to 25 px
    grids = keep_grids(3, cells, 0.5, torch.Generator().manual_seed(5))
    shifts = torch.tensor([[0, 4], [4, 1], [2, 2]])
    torch.testing.assert_close(rise_masks(grids, shifts, 18, 5), paper_rise_masks(grids, shifts, 18), atol=1e-12, rtol=0)


# --------------------------------------------------------------------------------------------
# RELAX
# --------------------------------------------------------------------------------------------


def welford_loop(enc: Encoder, x: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The project's running estimator, one mask at a time: (R, U / (W - 1)); x [3, S, S], masks [N, 1, S, S]."""
    fill = enc.baseline_pixel[0].to(x.dtype)  # the model-input zero (float32 constants of the encoder)
    with torch.no_grad():
        h = enc(x[None])
        w = torch.full(x.shape[1:], 1e-10, dtype=torch.float64)
        r = torch.zeros_like(w)
        u = torch.zeros_like(w)
        for m in masks[:, 0]:
            s = cosine(enc((fill + m * (x - fill))[None]), h)[0]
            w = w + m
            r_new = r + m * (s - r) / w
            u = u + m * (s - r_new) * (s - r)
            r = r_new
    return r, u / (w - 1)


def test_relax_closed_form_matches_welford_loop() -> None:
    enc = tiny_encoder()
    x = images(1, 24, seed=3)
    params = {"n_masks": 40, "num_cells": 5, "shift": 2}
    imp, none = run("relax", enc, x, params, seeds=[11], batch_size=7)
    unc, _ = run("relax", enc, x, {**params, "output": "uncertainty"}, seeds=[11])
    assert none is None and imp.shape == (1, 24, 24)
    g = torch.Generator().manual_seed(11)  # the documented draw: the grids, then the shifts in {0..2·shift}
    grids = keep_grids(40, 5, 0.5, g)
    shifts = torch.randint(0, 2 * 2 + 1, (40, 2), generator=g)
    r, v = welford_loop(enc, x[0], paper_relax_masks(grids, shifts, 24, 2))
    torch.testing.assert_close(imp[0], r, atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(unc[0], v, atol=1e-10, rtol=1e-6)
    assert imp.std() > 1e-6 and unc.abs().max() > 1e-8


def test_relax_masks_shapes_and_determinism() -> None:
    from xai_ssl.methods.relax import draw_grids

    grids, shifts = draw_grids(200, 7, 0.5, 1, torch.Generator().manual_seed(0))
    masks = build_masks(grids, shifts, 48, 1)
    assert masks.shape == (200, 1, 48, 48) and masks.min() >= 0 and masks.max() <= 1 + 1e-6
    assert set(shifts.flatten().tolist()) == {0, 1, 2}  # every offset in {0..2·shift} occurs
    enc = tiny_encoder()
    x = images(2, 48, seed=4)
    spec = get_method("relax")
    assert spec.resolve_params({}, 224)["shift"] == 3 and spec.resolve_params({}, 48)["shift"] == 1
    a, _ = run("relax", enc, x, {"n_masks": 12}, seeds=[1, 2])
    b, _ = run("relax", enc, x, {"n_masks": 12}, seeds=[1, 2], batch_size=5)
    c, _ = run("relax", enc, x, {"n_masks": 12}, seeds=[1, 3])
    u, _ = run("relax", enc, x, {"n_masks": 12, "output": "u_relax"}, seeds=[1, 2])
    assert a.shape == (2, 48, 48)
    torch.testing.assert_close(a, b, atol=1e-12, rtol=0)  # independent of the batch size
    torch.testing.assert_close(a[0], c[0])  # image 0 keeps its seed
    assert not torch.allclose(a[1], c[1])
    assert bool(((u == 0) | torch.isclose(u, a)).all())


def test_relax_maps_and_scaling_by_hand() -> None:
    """Importance Σm·s / W, uncertainty Σm(s - R)² / (W - 1), U-RELAX keeps pixels at or below the (lower) median
    uncertainty; W starts at 1e-10 (the running estimator); the shift default and the parameter checks."""
    from xai_ssl.methods.relax import relax_maps

    w, s1 = [3.0, 5.0, 4.0, 2.0], [1.5, 1.0, 2.0, 0.5]
    u = [0.5, 0.8, 0.3, 0.05]  # Σ m (s - R)², all below 1; uncertainties 0.25, 0.2, 0.1, 0.05 (lower median 0.1)
    big_w = [v + 1e-10 for v in w]
    r = [a / b for a, b in zip(s1, big_w)]
    s2 = [a * b + c for a, b, c in zip(s1, r, u)]
    out = relax_maps(*(torch.tensor(v, dtype=torch.float64).view(2, 2) for v in (w, s1, s2)))
    torch.testing.assert_close(out["importance"].flatten(), torch.tensor(r, dtype=torch.float64), rtol=1e-14, atol=0)
    unc = [c / (b - 1) for b, c in zip(big_w, u)]
    torch.testing.assert_close(out["uncertainty"].flatten(), torch.tensor(unc, dtype=torch.float64), rtol=1e-9, atol=0)
    torch.testing.assert_close(out["u_relax"].flatten(), torch.tensor([0.0, 0.0, r[2], r[3]], dtype=torch.float64), rtol=1e-14, atol=0)
    spec = get_method("relax")
    assert spec.resolve_params({}, 112)["shift"] == 2  # round(3 · 112 / 224) = round(1.5)
    with pytest.raises(ValueError, match=r"relax: output must be one of .* and target one of"):
        spec.resolve_params({"output": "variance"}, 32)
    with pytest.raises(ValueError, match=r"relax: shift 32 must be in \[0, 32\)"):
        spec.resolve_params({"shift": 32}, 32)


def test_relax_sums_stay_on_the_image_device() -> None:
    """Masks, fill and sums are built on the image's device (meta: any CPU tensor mixed in would raise)."""
    from xai_ssl.methods.relax import draw_grids, relax_sums

    meta = tiny_encoder().to("meta")
    x = torch.zeros(3, 16, 16, dtype=torch.float64, device="meta")
    grids, shifts = draw_grids(5, 4, 0.5, 1, torch.Generator().manual_seed(0))
    sums = relax_sums(meta, x, torch.zeros(8, dtype=torch.float64, device="meta"), grids, shifts, 1, 2)
    assert [(t.device.type, t.dtype, tuple(t.shape)) for t in sums] == [("meta", torch.float64, (16, 16))] * 3


# --------------------------------------------------------------------------------------------
# LFFI
# --------------------------------------------------------------------------------------------


def test_lffi_ig_matches_plain_trapezoid_loop() -> None:
    enc = tiny_encoder()
    x = images(2, 16, seed=5)
    steps = 8
    maps, _ = run("lffi_ig", enc, x, {"n_steps": steps, "ig_method": "riemann_right"}, seeds=[0, 0])
    assert maps.shape == (2, 16, 16)
    for b in range(2):
        xn = enc.normalise(x[b : b + 1])  # model-input space, baseline 0
        z = enc(x[b : b + 1]).detach()[0]
        grad_sum = torch.zeros_like(xn)
        for k in range(1, steps + 1):  # right Riemann sum: Σ_k g(k/n) / n
            p = (k / steps * xn).requires_grad_(True)
            (g,) = torch.autograd.grad(enc.embed_features(enc.trunk(p))[0] @ z, [p])
            grad_sum += g / steps
        ref = (xn * grad_sum)[0].abs().sum(0)
        torch.testing.assert_close(maps[b], ref, atol=1e-6, rtol=1e-5)  # Captum's alphas are float32


def test_lffi_ig_completeness() -> None:
    from xai_ssl.methods.label_free import captum_attribution, lffi_scalar

    enc = tiny_encoder()
    x = images(1, 16, seed=6)
    xn = enc.normalise(x)
    z = enc(x).detach()[0]
    attr = captum_attribution(lffi_scalar(enc, z), xn, torch.zeros_like(xn), "ig", {"n_steps": 400, "ig_method": "gausslegendre"}, 100, 0)
    with torch.no_grad():
        target = z @ z - enc.embed_features(enc.trunk(torch.zeros_like(xn)))[0] @ z
    assert float(attr.sum()) == pytest.approx(float(target), rel=1e-2)  # ReLU net: the quadrature converges slowly


def test_lffi_gradshap_matches_captum_and_is_seeded() -> None:
    enc = tiny_encoder()
    x = images(1, 16, seed=7)
    params = {"n_samples": 6, "stdevs": 0.2}
    torch.manual_seed(123)
    np.random.seed(5)
    state_t, state_np = torch.get_rng_state(), np.random.get_state()[1].copy()
    a, _ = run("lffi_gradshap", enc, x, params, seeds=[42])
    assert torch.equal(torch.get_rng_state(), state_t) and np.array_equal(np.random.get_state()[1], state_np)  # restored
    b, _ = run("lffi_gradshap", enc, x, params, seeds=[42])
    c, _ = run("lffi_gradshap", enc, x, params, seeds=[43])
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a, c)
    xn = enc.normalise(x)
    z = enc(x).detach()[0]
    torch.manual_seed(42)
    np.random.seed(42)
    gs = captum_attr.GradientShap(lambda p: enc.embed_features(enc.trunk(p)) @ z)
    ref = gs.attribute(xn, baselines=torch.zeros_like(xn), n_samples=6, stdevs=0.2)
    torch.testing.assert_close(a[0], ref[0].abs().sum(0), atol=1e-10, rtol=1e-8)


# --------------------------------------------------------------------------------------------
# COCOA
# --------------------------------------------------------------------------------------------


def direct_gamma(enc: Encoder, x: torch.Tensor, corpus_imgs: torch.Tensor, foil_imgs: torch.Tensor) -> torch.Tensor:
    """Pairwise form: mean_c cos(f(x), f(c)) − mean_a cos(f(x), f(a)); x [N, 3, S, S] -> [N]."""
    with torch.no_grad():
        z, zc, zf = enc(x), enc(corpus_imgs), enc(foil_imgs)
        cc = torch.stack([cosine(z, zc[i].expand_as(z)) for i in range(zc.shape[0])]).mean(0)
        cf = torch.stack([cosine(z, zf[i].expand_as(z)) for i in range(zf.shape[0])]).mean(0)
    return cc - cf


@pytest.mark.parametrize("mode", ["mixed_noise", "same_other"])
def test_cocoa_target_matches_pairwise(mode: str) -> None:
    from xai_ssl.methods.cocoa import directions, gamma

    enc = tiny_encoder()
    corpus = make_corpus(8, 16)
    x = images(2, 16, seed=8)
    refs = corpus.images.double() / 255
    if mode == "mixed_noise":
        params = {"corpus": "mixed", "foil": "noise", "foil_size": 5}
        ids = ["q0", "ref3"]  # the second explicand is in the corpus: it is excluded
        corpora = [refs, refs[[0, 1, 2, 4, 5, 6, 7]]]
        foils = [noise_foil(7, 5, 16).double()] * 2
    else:
        params = {"corpus": "same_class", "foil": "other_class", "foil_size": 3}
        ids = ["q0", "q1"]  # labels a, b; corpus labels alternate a, b
        corpora = [refs[0::2], refs[1::2]]
        foils = [refs[1::2][:3], refs[0::2][:3]]
    params = {**get_method("cocoa_ig").defaults, **params}
    d = directions(enc, x, params, ctx([0, 0], corpus, ids))
    with torch.no_grad():
        got = torch.stack([gamma(enc, x[b : b + 1], d[b])[0] for b in range(2)])
    ref = torch.stack([direct_gamma(enc, x[b : b + 1], corpora[b], foils[b])[0] for b in range(2)])
    torch.testing.assert_close(got, ref, atol=1e-10, rtol=1e-8)
    assert ref.abs().min() > 1e-6


@pytest.mark.parametrize(("baseline", "shared_shift", "p"), [("zero", False, 0.5), ("black", True, 0.3)])
def test_cocoa_rise_matches_plain_loop(baseline: str, shared_shift: bool, p: float) -> None:
    """Σ_n γ(x ⊙ m_n + fill ⊙ (1 − m_n)) m_n / (N p) with the papers' masks; the fill is the model-input zero or black;
    ``shared_shift``: one shift for all masks of an image (the RISE reference code's per-call shift)."""
    enc = tiny_encoder()
    corpus = make_corpus(6, 16)
    x = images(1, 16, seed=9)
    n, cells = 20, 4
    params = {"n_masks": n, "num_cells": cells, "foil_size": 4, "baseline": baseline, "shared_shift": shared_shift, "p": p}
    maps, _ = run("cocoa_rise", enc, x, params, seeds=[3], corpus=corpus, ids=["q0"], batch_size=6)
    assert maps.shape == (1, 16, 16)
    g = torch.Generator().manual_seed(3)  # the documented draw: the grids, then the shifts in [0, C) (one, or one per mask)
    grids = keep_grids(n, cells, p, g)
    shifts = torch.randint(0, 4, (1 if shared_shift else n, 2), generator=g).expand(n, 2)
    masks = paper_rise_masks(grids, shifts, 16)  # [n, 1, 16, 16]
    fill = enc.baseline_pixel[0].double() if baseline == "zero" else torch.zeros(3, 1, 1, dtype=torch.float64)
    refs = corpus.images.double() / 255
    foil = noise_foil(7, 4, 16).double()
    ref = torch.zeros(16, 16, dtype=torch.float64)
    for m in masks[:, 0]:
        ref += direct_gamma(enc, (x[0] * m + fill * (1 - m))[None], refs, foil)[0] * m
    ref /= n * p
    torch.testing.assert_close(maps[0], ref, atol=1e-10, rtol=1e-8)
    again, _ = run("cocoa_rise", enc, x, params, seeds=[3], corpus=corpus, ids=["q0"], batch_size=20)
    torch.testing.assert_close(maps, again, atol=1e-12, rtol=0)


def test_cocoa_rise_fill_dtype_device_and_bad_baseline() -> None:
    """The fill has the image's dtype; the map is built on the image's device (meta: any CPU tensor would raise)."""
    from xai_ssl.methods.cocoa import pixel_fill, rise_map

    enc = tiny_encoder()
    half = torch.zeros(3, 4, 4, dtype=torch.float16)
    assert pixel_fill(enc, half, "zero").dtype == pixel_fill(enc, half, "black").dtype == torch.float16
    assert pixel_fill(enc, half, "black").shape == (3, 1, 1) and not pixel_fill(enc, half, "black").any()
    with pytest.raises(ValueError, match="unknown baseline 'grey'"):
        pixel_fill(enc, half, "grey")
    meta = enc.to("meta")
    x = torch.zeros(3, 16, 16, dtype=torch.float64, device="meta")
    grids = keep_grids(4, 4, 0.5, torch.Generator().manual_seed(0))
    out = rise_map(meta, x, torch.zeros(8, dtype=torch.float64, device="meta"), pixel_fill(meta, x, "black"), grids, torch.zeros(4, 2, dtype=torch.long), 0.5, 3)
    assert out.device.type == "meta" and out.shape == (16, 16)


def test_cocoa_ig_and_gradshap_shapes_and_completeness() -> None:
    from xai_ssl.methods.cocoa import directions, gamma

    enc = tiny_encoder()
    corpus = make_corpus(6, 16)
    x = images(2, 16, seed=10)
    kw = {"corpus": corpus, "ids": ["q0", "q1"]}
    ig, _ = run("cocoa_ig", enc, x, {"n_steps": 400, "foil_size": 4}, seeds=[0, 0], **kw)
    assert ig.shape == (2, 16, 16)
    params = {**get_method("cocoa_ig").defaults, "foil_size": 4}
    d = directions(enc, x, params, ctx([0, 0], corpus, ["q0", "q1"]))
    fill = enc.baseline_pixel.double().expand(1, 3, 16, 16)
    with torch.no_grad():
        for b in range(2):
            delta = gamma(enc, x[b : b + 1], d[b]) - gamma(enc, fill, d[b])
            assert float(3 * ig[b].sum()) == pytest.approx(float(delta), rel=2e-2)  # map = channel mean
    gs1, _ = run("cocoa_gradshap", enc, x, {"n_samples": 4, "foil_size": 4}, seeds=[1, 2], **kw)
    gs2, _ = run("cocoa_gradshap", enc, x, {"n_samples": 4, "foil_size": 4}, seeds=[1, 2], **kw)
    assert gs1.shape == (2, 16, 16) and torch.equal(gs1, gs2) and gs1.abs().max() > 0


def test_cocoa_needs_corpus() -> None:
    assert get_method("cocoa_rise").needs_corpus and get_method("vdsn").needs_corpus and not get_method("relax").needs_corpus
    with pytest.raises(ValueError, match="ctx.corpus"):
        run("cocoa_rise", tiny_encoder(), images(1, 16), {"n_masks": 2}, seeds=[0])


# --------------------------------------------------------------------------------------------
# Embedded Grad-CAM
# --------------------------------------------------------------------------------------------


def test_embedded_gradcam_matches_hand_computation() -> None:
    enc = tiny_encoder()
    corpus = make_corpus(8, 16)
    x = images(2, 16, seed=11)
    k = 3
    maps, _ = run("embedded_gradcam", enc, x, {"k": k}, seeds=[0, 0], corpus=corpus, ids=["q0", "ref2"], batch_size=3)
    refs = corpus.images.double() / 255
    embs, ws = [], []
    for i in range(refs.shape[0]):  # one database image at a time
        a = enc.features(refs[i : i + 1]).detach().requires_grad_(True)
        z = enc.embed_features(a)[0]
        (g,) = torch.autograd.grad(z @ z.detach(), [a])
        embs.append(z.detach())
        ws.append(g[0].mean(dim=(1, 2)))
    for b, skip in enumerate([None, 2]):
        with torch.no_grad():
            a = enc.features(x[b : b + 1])[0]
            e = enc.embed_features(a[None])[0]
        dist = sorted((float((embs[i] - e).norm()), i) for i in range(len(embs)) if i != skip)
        w = torch.stack([ws[i] for _, i in dist[:k]]).mean(0)
        ref = (w[:, None, None] * a).mean(0)
        torch.testing.assert_close(maps[b], ref, atol=1e-12, rtol=1e-8)
        assert maps[b].abs().max() > 1e-8  # the fixed target has non-zero gradients


# --------------------------------------------------------------------------------------------
# VDSN
# --------------------------------------------------------------------------------------------


def test_vdsn_map_sums_to_pooled_cosine() -> None:
    from xai_ssl.methods.vdsn import vdsn_maps

    enc = tiny_encoder()
    corpus = make_corpus(6, 48)
    x = images(2, 48, seed=12)
    maps, _ = run("vdsn", enc, x, {}, seeds=[0, 0], corpus=corpus, ids=["q0", "ref1"])
    refs = corpus.images.double() / 255
    with torch.no_grad():
        zr, zx = enc(refs), enc(x)
        for b, skip in enumerate([None, 1]):
            sims = [(float(cosine(zx[b : b + 1], zr[i : i + 1])), i) for i in range(6) if i != skip]
            j = max(sims)[1]
            ax, ay = enc.features(x[b : b + 1]), enc.features(refs[j : j + 1])
            assert maps[b].shape == ax.shape[2:]
            pooled_cos = cosine(ax.mean(dim=(2, 3)), ay.mean(dim=(2, 3)))[0]
            torch.testing.assert_close(maps[b].sum(), pooled_cos, atol=1e-10, rtol=1e-8)
            _mx, my = vdsn_maps(ax, ay)
            torch.testing.assert_close(my.sum(), pooled_cos, atol=1e-10, rtol=1e-8)
            # the paper's pairwise form: map_x[i] = Σ_j ⟨A_x[i], A_y[j]⟩ / (P² ‖f_x‖ ‖f_y‖)
            fx, fy = ax.mean(dim=(2, 3))[0], ay.mean(dim=(2, 3))[0]
            s = torch.einsum("ci,cj->ij", ax[0].flatten(1), ay[0].flatten(1)) / (ax[0, 0].numel() ** 2 * fx.norm() * fy.norm())
            torch.testing.assert_close(maps[b].flatten(), s.sum(1), atol=1e-12, rtol=1e-8)
    inv, _ = run("vdsn", enc, x, {"invert": True}, seeds=[0, 0], corpus=corpus, ids=["q0", "ref1"])
    assert float(inv.min()) == pytest.approx(0.0, abs=1e-12) and float(inv.max()) == pytest.approx(1.0)
    assert int(inv[0].flatten().argmax()) == int(maps[0].flatten().argmin())


# --------------------------------------------------------------------------------------------
# Corpus plumbing
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory):
    """A generated Two4Two-format dataset (train 5 / test 3 images, 40 px), its index and pairs at 32 px."""
    from xai_ssl.stages.data import generate_synthetic_dataset, index_dataset, make_pairs

    root = tmp_path_factory.mktemp("survey_data")
    generate_synthetic_dataset(root / "files", {"train": 5, "test": 3, "resolution": 40}, seed=0, progress=False)
    index_dataset(root / "index.csv", "synthetic_two4two", root / "files")
    make_pairs(root / "index.csv", root / "pairs.h5", "test", None, 32, 0, progress=False)
    return root


def test_load_corpus_from_index(tiny_dataset, caplog: pytest.LogCaptureFixture) -> None:
    from xai_ssl.augment import center_view
    from xai_ssl.data.images import load_rgb
    from xai_ssl.data.index import read_index, write_index

    root = tiny_dataset
    records = read_index(root / "index.csv")
    c1 = load_corpus(root / "index.csv", 32, "test", 4, seed=3)
    c2 = load_corpus(root / "index.csv", 32, "test", 4, seed=3)
    c3 = load_corpus(root / "index.csv", 32, "test", 10, seed=3)
    assert c1.source == "train" and len(c1) == 4 and len(c3) == 5 and c1.images.shape == (4, 3, 32, 32)
    assert c1.ids == c2.ids and c1.ids == c3.ids[:4] and torch.equal(c1.images, c2.images)
    by_id = {r.image_id: r for r in records}
    assert all(by_id[i].split == "train" for i in c1.ids)
    ref = (center_view(load_rgb(by_id[c1.ids[0]].path), 32) * 255).round().to(torch.uint8)
    assert torch.equal(c1.images[0], ref)
    assert set(c1.labels_by_id) == set(by_id)
    assert choose_records(records, "test", 5, 4)[0] != choose_records(records, "test", 5, 3)[0]
    # no training split: the evaluated split's images, with a warning
    write_index([r for r in records if r.split == "test"], root / "index_test.csv")
    with caplog.at_level(logging.WARNING, logger="xai_ssl.data.corpus"):
        c4 = load_corpus(root / "index_test.csv", 32, "test", 10, seed=3)
    assert c4.source == "test" and len(c4) == 3 and "no 'train' split" in caplog.text


def test_attribute_and_metric_contexts_carry_the_corpus(tiny_dataset, tmp_path) -> None:
    import pandas as pd

    from xai_ssl.io.maps_file import load_attributions
    from xai_ssl.models.registry import save_encoder
    from xai_ssl.stages.attribution import compute_attributions
    from xai_ssl.stages.evaluation import compute_metrics

    root = tiny_dataset
    torch.manual_seed(0)
    enc = build_architecture("small_resnet", width=4, embedding_dim=8, hidden_dim=16)
    save_encoder(enc.eval(), tmp_path / "enc.pt", "small_resnet", {"width": 4, "embedding_dim": 8, "hidden_dim": 16})
    out = tmp_path / "maps.h5"
    compute_attributions(root / "pairs.h5", tmp_path / "enc.pt", out, "vdsn", {"corpus_size": 3}, 1, 0, "cpu", 4, "d", "m", "vdsn", 0, index=root / "index.csv", progress=False)
    maps = load_attributions(out)
    assert maps.map1.shape[0] == 3 and maps.map2 is None and torch.isfinite(maps.map1).all()
    with pytest.raises(ValueError, match="dataset index"):
        compute_attributions(root / "pairs.h5", tmp_path / "enc.pt", tmp_path / "x.h5", "vdsn", {}, 1, 0, "cpu", 4, "d", "m", "vdsn", 0, progress=False)
    # max-sensitivity re-runs VDSN: the evaluation step passes the same corpus to the metric's context
    compute_metrics(root / "pairs.h5", tmp_path / "enc.pt", out, tmp_path / "s.csv", tmp_path / "c.h5", {"max_sensitivity": {"n_samples": 2}}, "cpu", 4, "d", "m", index=root / "index.csv", progress=False)
    scores = pd.read_csv(tmp_path / "s.csv")
    assert len(scores) == 3 and scores["MS"].notna().all()
    corpus = make_corpus(4, 16)
    parent = MethodContext(device=torch.device("cpu", 0), batch_size=3, seeds=[1], progress=True, image_ids=["q0"], corpus=corpus)
    sub = sub_context(parent, [5, 6], ["q0", "q0"])
    assert sub.corpus is corpus and sub.seeds == [5, 6] and sub.image_ids == ["q0", "q0"]
    assert sub.device == torch.device("cpu", 0) and sub.batch_size == 3 and sub.progress is False


def test_corpus_cache_is_per_encoder() -> None:
    corpus = make_corpus(4, 16)
    e1, e2 = tiny_encoder(0), tiny_encoder(1)
    calls: list[int] = []
    for enc in (e1, e1, e2):
        corpus.cached(enc, "k", lambda enc=enc: calls.append(id(enc)) or F.normalize(enc(corpus.floats(CPU, torch.float64)), dim=1))
    assert calls == [id(e1), id(e2)]
