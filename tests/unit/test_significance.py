"""Significance against the random baseline: Wilcoxon by hand enumeration, Holm by its definition, tables with marks."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import aggregate
from xai_ssl.metrics import metric_directions
from xai_ssl.significance import MIN_PAIRS, holm, paired_wilcoxon, significance_table
from xai_ssl.tables import summary_table, to_markdown

ALL = ["insertion_deletion", "average_drop_increase", "max_sensitivity", "model_randomisation"]


def average_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a, ties get the mean of their positions (plain loops)."""
    order = sorted(range(len(a)), key=lambda i: a[i])
    ranks = np.zeros(len(a))
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and a[order[j + 1]] == a[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def hand_wilcoxon(x: list[float], y: list[float]) -> float:
    """Two-sided signed-rank p by enumerating every sign assignment of the non-zero differences (Pratt ranks).

    Ranks of |d| are taken over all differences, zeros included, and the zeros' ranks are dropped; under the
    null each non-zero difference is + or - with probability 1/2; p = 2 min(P(W+ <= w), P(W+ >= w)), capped at 1.
    """
    d = [round(a - b, 9) for a, b in zip(x, y)]
    ranks = average_ranks(np.abs(np.array(d)))
    nz = [(r, v) for r, v in zip(ranks, d) if v != 0]
    w = sum(r for r, v in nz if v > 0)
    sums = [sum(r for (r, _), s in zip(nz, signs) if s) for signs in itertools.product([True, False], repeat=len(nz))]
    lo = sum(s <= w + 1e-9 for s in sums) / len(sums)
    hi = sum(s >= w - 1e-9 for s in sums) / len(sums)
    return min(1.0, 2 * min(lo, hi))


def hand_holm_rejections(p: list[float], alpha: float) -> set[int]:
    """Holm's procedure as stated: reject H_(1..i) while p_(j) <= alpha / (k - j + 1); stop at the first failure."""
    idx = sorted((i for i in range(len(p)) if not math.isnan(p[i])), key=lambda i: p[i])
    k, out = len(idx), set()
    for j, i in enumerate(idx):
        if p[i] > alpha / (k - j):
            break
        out.add(i)
    return out


def test_wilcoxon_against_hand_enumeration() -> None:
    rng = np.random.default_rng(0)
    for trial in range(6):
        n = 6 + trial
        x, y = rng.random(n), rng.random(n) + 0.15 * (trial % 3)
        assert paired_wilcoxon(x, y) == (pytest.approx(hand_wilcoxon(list(x), list(y)), abs=1e-12), n)
    x = [0.3, 0.5, 0.2, 0.6, 0.9, 0.1, 0.8, 0.4, 0.7]  # zeros and ties in d (exact null no longer applies)
    y = [0.3, 0.2, 0.3, 0.3, 0.4, 0.1, 0.1, 0.6, 0.0]
    assert paired_wilcoxon(x, y)[0] == pytest.approx(hand_wilcoxon(x, y), abs=1e-12)
    # all differences of one sign: p = 2 / 2^n
    assert paired_wilcoxon(np.arange(8) + 1.0, np.zeros(8))[0] == pytest.approx(2 / 2**8)


def test_wilcoxon_pairs_drop_na_pairwise_and_needs_enough_pairs() -> None:
    x = np.array([0.9, 0.8, np.nan, 0.7, 0.95, 0.85, 0.6, 0.75, 0.65, 0.99])
    y = np.array([0.1, 0.2, 0.3, np.inf, 0.5, 0.15, 0.05, np.nan, 0.7, 0.2])
    keep = [0, 1, 4, 5, 6, 8, 9]
    p, n = paired_wilcoxon(x, y)
    assert n == 7 and p == pytest.approx(hand_wilcoxon(list(x[keep]), list(y[keep])), abs=1e-12)
    p, n = paired_wilcoxon(x[:6], y[:6])  # 4 complete pairs
    assert n == 4 and math.isnan(p)
    assert MIN_PAIRS == 6
    assert paired_wilcoxon(np.ones(20), np.ones(20)) == (1.0, 20)  # identical: not distinguishable (scipy: NaN)
    with pytest.raises(ValueError, match="equal length"):
        paired_wilcoxon([1.0, 2.0], [1.0])


def test_holm_against_its_definition() -> None:
    p = [0.01, 0.04, 0.03, 0.005, math.nan]
    adj = holm(p)
    np.testing.assert_allclose(adj[:4], [0.03, 0.06, 0.06, 0.02])  # k = 4: NA is not in the family
    assert math.isnan(adj[4])
    rng = np.random.default_rng(1)
    for _ in range(50):
        q = list(rng.random(rng.integers(1, 12)) ** 3)
        a = holm(q)
        assert np.all(a >= np.array(q) - 1e-15) and np.all(a <= 1)
        for alpha in (0.01, 0.05, 0.1, 0.2):
            assert {i for i in range(len(q)) if a[i] <= alpha} == hand_holm_rejections(q, alpha)


def per_image_frame(n: int = 12) -> pd.DataFrame:
    """random_baseline, a method better than random on SI by a small paired shift (large between-image spread), one
    worse than random, one equal to random (values shuffled), and a method with SI NA on some images."""
    rng = np.random.default_rng(3)
    ids = [f"img{i:02d}" for i in range(n)]
    base = rng.random(n) * 0.8  # large spread between images
    rows = {
        "random_baseline": base,
        "paired_up": base + 0.02 + 0.005 * rng.random(n),
        "worse": base - 0.1 - 0.01 * rng.random(n),
        "same": rng.permutation(base),
        "gappy": base + 0.05 + 0.01 * rng.random(n),
    }
    frames = []
    for m, si in rows.items():
        df = pd.DataFrame({"method": m, "image_id": ids, "SI": si, "SD": rng.random(n), "MS": rng.random(n), "RAND": rng.random(n)})
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out.loc[(out.method == "gappy") & out.image_id.isin(ids[:3]), "SI"] = np.nan
    out.loc[(out.method == "random_baseline") & (out.image_id == ids[5]), "SI"] = np.nan
    out.loc[out.image_id.isin(ids[4:]), "RAND"] = np.nan  # RAND on 4 images: no test
    return out.sample(frac=1.0, random_state=0).reset_index(drop=True)  # rows in no particular order


def test_significance_table_pairs_by_image_and_corrects_per_column() -> None:
    per_image = per_image_frame()
    order = ["paired_up", "worse", "same", "gappy", "random_baseline"]
    sig = significance_table(per_image, ["SI", "SD", "MS", "RAND"], order)
    assert sig.available and list(sig.p.index) == order
    assert list(sig.p.columns) == ["p_SI", "p_SD", "p_MS", "p_RAND"]
    assert sig.p.loc["random_baseline"].isna().all()
    ref = per_image[per_image.method == "random_baseline"].set_index("image_id")
    for col in ("SI", "SD", "MS"):
        raw = []
        for m in order[:-1]:
            g = per_image[per_image.method == m].set_index("image_id")
            pairs = [(g.at[i, col], ref.at[i, col]) for i in sorted(g.index) if np.isfinite(g.at[i, col]) and np.isfinite(ref.at[i, col])]
            raw.append(hand_wilcoxon([a for a, _ in pairs], [b for _, b in pairs]))
            assert sig.n.at[m, f"n_{col}"] == len(pairs)
        k = len(raw)
        for alpha in (0.01, 0.05):
            assert {order[i] for i in range(k) if sig.p.at[order[i], f"p_{col}"] <= alpha} == {order[i] for i in hand_holm_rejections(raw, alpha)}
        np.testing.assert_allclose(sig.p.loc[order[:-1], f"p_{col}"], holm(raw), rtol=1e-12)
    assert sig.n.at["gappy", "n_SI"] == 8  # 3 NA of the method, 1 NA of random (another image): dropped pairwise
    assert sig.p.at["paired_up", "p_SI"] < 0.05 and sig.p.at["worse", "p_SI"] < 0.05  # two-sided: worse is different too
    assert sig.p.at["same", "p_SI"] >= 0.05
    assert sig.p["p_RAND"].isna().all() and (sig.n.loc[order[:-1], "n_RAND"] == 4).all()
    assert not sig.not_distinguishable("random_baseline", "SI") and sig.not_distinguishable("same", "SI")
    assert not sig.not_distinguishable("paired_up", "RAND")  # no test: no mark


def test_without_the_random_baseline_there_are_no_tests() -> None:
    per_image = per_image_frame()
    per_image = per_image[per_image.method != "random_baseline"]
    sig = significance_table(per_image, ["SI"], ["paired_up", "same"])
    assert not sig.available and list(sig.p.columns) == [] and list(sig.p.index) == ["paired_up", "same"]
    assert not sig.not_distinguishable("same", "SI")


def test_methods_on_other_view_pairs_are_not_tested() -> None:
    """An interpolation-family method is scored on other pairs than random_baseline (crop_aug): no test, no mark, a note."""
    per_image = per_image_frame()
    order = ["paired_up", "worse", "same", "gappy", "random_baseline"]
    pairs = {"paired_up": "crop_aug", "worse": "interpolation", "same": "interpolation", "gappy": "crop_aug", "random_baseline": "crop_aug"}
    sig = significance_table(per_image, ["SI", "SD"], order, pair_families=pairs)
    assert sig.other_pairs == {"worse": "interpolation", "same": "interpolation"} and sig.reference_pairs == "crop_aug"
    assert sig.p.loc[["worse", "same"]].isna().all().all() and not sig.not_distinguishable("same", "SI")
    ref = per_image[per_image.method == "random_baseline"].set_index("image_id")
    for col in ("SI", "SD"):  # the Holm family: the two crop_aug methods only
        raw = []
        for m in ("paired_up", "gappy"):
            g = per_image[per_image.method == m].set_index("image_id")
            pairs_ = [(g.at[i, col], ref.at[i, col]) for i in sorted(g.index) if np.isfinite(g.at[i, col]) and np.isfinite(ref.at[i, col])]
            raw.append(hand_wilcoxon([a for a, _ in pairs_], [b for _, b in pairs_]))
        np.testing.assert_allclose(sig.p.loc[["paired_up", "gappy"], f"p_{col}"], holm(raw), rtol=1e-12)
    d = {c: a for c, a in metric_directions(ALL).items() if c in ("SI", "SD")}
    md = to_markdown(summary_table(per_image, d, order), d, "t", significance=sig, baselines=["random_baseline"])
    assert not any(c.endswith("†") for c in cells(md, "same‡")) and cells(md, "paired_up")  # the name marked, the cells not
    note = next(line for line in md.splitlines() if line.startswith("† = not distinguishable"))
    assert "across the 2 methods" in note
    assert "‡ = not tested: worse (interpolation), same (interpolation) explained on other view pairs than random_baseline (crop_aug)" in note
    same_pairs = significance_table(per_image, ["SI"], order, pair_families=dict.fromkeys(order, "crop_aug"))
    assert same_pairs.other_pairs == {} and same_pairs.p["p_SI"].iloc[:-1].notna().all()


def test_interpolation_methods_are_tested_against_the_random_baseline_of_their_pairs() -> None:
    """With random_baseline_interpolation in the run, an interpolation-family method pairs with it, not with random_baseline."""
    per_image = per_image_frame()
    rng = np.random.default_rng(8)
    interp = per_image[per_image.method == "random_baseline"].copy()
    interp["method"] = "random_baseline_interpolation"
    interp["SI"] = rng.random(len(interp)) + 5.0  # far from every crop-pair value: a test against the wrong reference shows
    worse = per_image.method == "worse"
    by_id = interp.set_index("image_id")["SI"]
    per_image.loc[worse, "SI"] = per_image.loc[worse, "image_id"].map(by_id).to_numpy() + 0.01 + 0.001 * np.arange(worse.sum())
    per_image = pd.concat([per_image, interp], ignore_index=True)
    order = ["paired_up", "worse", "same", "gappy", "random_baseline", "random_baseline_interpolation"]
    pairs = dict.fromkeys(order, "crop_aug") | {"worse": "interpolation", "random_baseline_interpolation": "interpolation"}
    sig = significance_table(per_image, ["SI"], order, pair_families=pairs)
    assert sig.other_pairs == {} and sig.references["worse"] == "random_baseline_interpolation"
    assert sig.references["paired_up"] == "random_baseline" and "random_baseline_interpolation" not in sig.references
    assert np.isnan(sig.p.at["random_baseline_interpolation", "p_SI"])
    assert not sig.not_distinguishable("random_baseline_interpolation", "SI")
    raw = []
    for m in ("paired_up", "worse", "same", "gappy"):  # one Holm family of four tests
        ref_name = "random_baseline_interpolation" if m == "worse" else "random_baseline"
        ref = per_image[per_image.method == ref_name].set_index("image_id")["SI"]
        g = per_image[per_image.method == m].set_index("image_id")["SI"]
        both = [(g[i], ref[i]) for i in sorted(g.index) if np.isfinite(g[i]) and np.isfinite(ref[i])]
        raw.append(hand_wilcoxon([a for a, _ in both], [b for _, b in both]))
    np.testing.assert_allclose(sig.p.loc[["paired_up", "worse", "same", "gappy"], "p_SI"], holm(raw), rtol=1e-12)
    assert sig.p.at["worse", "p_SI"] < 0.05  # 12 positive differences of 0.01..: distinguishable from its own reference
    d = {c: a for c, a in metric_directions(ALL).items() if c == "SI"}
    md = to_markdown(summary_table(per_image, d, order), d, "t", significance=sig, baselines=["random_baseline", "random_baseline_interpolation"])
    note = next(line for line in md.splitlines() if line.startswith("† = not distinguishable"))
    assert "worse against random_baseline_interpolation" in note and "‡" not in md


def test_duplicate_image_ids_are_refused() -> None:
    per_image = per_image_frame()
    doubled = pd.concat([per_image, per_image[per_image.method == "same"]], ignore_index=True)
    with pytest.raises(ValueError, match="'same' has image ids more than once"):
        significance_table(doubled, ["SI"], ["same", "random_baseline"])


def cells(md: str, method: str) -> list[str]:
    line = next(line for line in md.splitlines() if line.startswith(f"| {method} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def test_markdown_marks_and_note() -> None:
    per_image = per_image_frame()
    d = {c: a for c, a in metric_directions(ALL).items() if c in ("SI", "SD", "MS", "MS_median", "RAND")}
    order = ["paired_up", "worse", "same", "gappy", "random_baseline"]
    table = summary_table(per_image, d, order)
    sig = significance_table(per_image, ["SI", "SD", "MS", "RAND"], order)
    md = to_markdown(table, d, "t", significance=sig, baselines=["random_baseline"])
    header = [c.strip() for c in md.splitlines()[2].strip("|").split("|")][1:]
    assert header == ["SI↑", "SD↓", "MS↓", "MS_median↓", "RAND↓"]
    for m in order:
        row = cells(md, m)
        for c, cell in zip(d, row):
            tested = "MS" if c == "MS_median" else c
            marked = m != "random_baseline" and sig.not_distinguishable(m, tested)
            assert cell == f"{table.at[m, c]:.3f}" + ("†" if marked else ""), (m, c, cell)
    assert cells(md, "same")[0].endswith("†") and not cells(md, "paired_up")[0].endswith("†")
    assert not any(c.endswith("†") for c in cells(md, "random_baseline"))
    assert not any(c.endswith("†") for m in order for c in cells(md, m)[4:])  # RAND: not tested
    assert cells(md, "same")[3].endswith("†") == cells(md, "same")[2].endswith("†")  # MS_median follows MS
    note = next(line for line in md.splitlines() if line.startswith("† = not distinguishable"))
    assert "Wilcoxon signed-rank" in note and "two-sided" in note and "Holm" in note and "paired by image" in note
    assert "across the 4 methods" in note and "n = 12 image pairs" in note and "SI: 8–11" in note
    assert "Not tested (fewer than 6 pairs, no mark): RAND (all methods)." in note
    assert md.rstrip().endswith("Baselines (last rows; maps that ignore the model): random_baseline.")
    absent = per_image[per_image.method != "random_baseline"]
    sig2 = significance_table(absent, ["SI"], order[:-1])
    md2 = to_markdown(summary_table(absent, d, order[:-1]), d, "t", significance=sig2)
    assert "†" not in md2 and "No significance marks: random_baseline is not in this run" in md2


def write_shards(tmp_path: Path, per_image: pd.DataFrame, methods: list[str]) -> list[Path]:
    paths = []
    for m in methods:
        p = tmp_path / f"{m}.csv"
        per_image[per_image.method == m].drop(columns="method").sort_values("image_id").to_csv(p, index=False, na_rep="NA")
        paths.append(p)
    return paths


def test_aggregate_puts_baselines_last_and_writes_p_columns(tmp_path: Path) -> None:
    per_image = per_image_frame(10).replace({"paired_up": "gradcam", "worse": "edge_baseline", "same": "centre_baseline", "gappy": "relax"})
    methods = ["edge_baseline", "gradcam", "random_baseline", "centre_baseline", "relax"]  # config order, baselines mixed in
    paths = write_shards(tmp_path, per_image, methods)
    out = tmp_path / "tables"
    aggregate(paths, methods, ALL, out / "scores.csv", out / "scores.md", out / "per_image.csv", "t / m")
    csv = pd.read_csv(out / "scores.csv", index_col="method", na_values=["NA"], keep_default_na=False)
    assert list(csv.index) == ["gradcam", "relax", "random_baseline", "centre_baseline", "edge_baseline"]
    assert [c for c in csv.columns if c.startswith("p_")] == ["p_SI", "p_SD", "p_MS", "p_RAND"]
    assert csv.loc["random_baseline", ["p_SI", "p_SD"]].isna().all()
    sig = significance_table(per_image, ["SI"], list(csv.index))
    np.testing.assert_allclose(csv["p_SI"].drop("random_baseline"), sig.p["p_SI"].drop("random_baseline"), rtol=1e-3)
    md = (out / "scores.md").read_text(encoding="utf-8")
    rows = [line.split(" | ")[0].lstrip("| ") for line in md.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows == list(csv.index)
    assert "Baselines (last rows; maps that ignore the model): random_baseline, centre_baseline, edge_baseline." in md
    # without random_baseline: no p columns, the note says so
    keep = [m for m in methods if m != "random_baseline"]
    aggregate([p for p, m in zip(paths, methods) if m != "random_baseline"], keep, ALL, out / "s2.csv", out / "s2.md", out / "l2.csv", "t")
    csv2 = pd.read_csv(out / "s2.csv", index_col="method", na_values=["NA"], keep_default_na=False)
    assert not [c for c in csv2.columns if c.startswith("p_")] and list(csv2.index) == ["gradcam", "relax", "centre_baseline", "edge_baseline"]
    assert "No significance marks: random_baseline is not in this run" in (out / "s2.md").read_text(encoding="utf-8")
