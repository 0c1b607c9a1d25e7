"""Tables and figures of all metrics in the paper's layout: column order, arrows, NA cells, medians, NA counts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import aggregate
from xai_ssl.metrics import metric_directions
from xai_ssl.plots import metric_panels
from xai_ssl.stages.report import plot_metric_bars
from xai_ssl.tables import na_counts, summary_table, to_markdown

ALL = ["insertion_deletion", "average_drop_increase", "max_sensitivity", "model_randomisation"]
HEADER = "| method | SI↑ | SD↓ | CI↑ | CD↓ | SAD↓ | SIC↑ | CAD↓ | CID↑ | MS↓ | MS_median↓ | RAND↓ |"


def shard(method_rows: int, seed: int, single: bool = False, no_ms: bool = False) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    df = pd.DataFrame({"image_id": [f"i{k}" for k in range(method_rows)]})
    for c in ("SI", "SD", "CI", "CD", "SAD", "SIC", "CAD", "CID", "MS", "RAND", "RAND_L1"):
        df[c] = r.random(method_rows)
    if single:
        df[["SI", "SD", "SAD", "SIC"]] = np.nan
    if no_ms:
        df["MS"] = np.nan
    return df


def test_paper_column_order_whatever_the_config_order() -> None:
    d = metric_directions(list(reversed(ALL)))
    assert list(d) == ["SI", "SD", "CI", "CD", "SAD", "SIC", "CAD", "CID", "MS", "MS_median", "RAND"]
    assert [d[c] for c in d] == ["↑", "↓", "↑", "↓", "↓", "↑", "↓", "↑", "↓", "↓", "↓"]
    assert list(metric_directions(["model_randomisation", "insertion_deletion"])) == ["SI", "SD", "CI", "CD", "RAND"]


def test_summary_na_cells_median_and_counts() -> None:
    per_image = pd.concat(
        [
            shard(4, 0).assign(method="occ", MS=np.nan),
            shard(4, 1, single=True).assign(method="single"),
            shard(4, 2).assign(method="grad"),
        ],
        ignore_index=True,
    )
    per_image.loc[(per_image.method == "grad") & (per_image.image_id == "i1"), "CAD"] = np.nan  # e.g. B <= 0
    per_image.loc[per_image.method == "grad", "MS"] = [0.1, 0.2, 0.3, 100.0]  # heavy tail
    d = metric_directions(ALL)
    table = summary_table(per_image, d, ["grad", "single", "occ"])
    assert list(table.index) == ["grad", "single", "occ"]
    assert list(table.columns) == list(d) + ["n_images"]
    assert table.loc["grad", "MS"] == pytest.approx(25.15) and table.loc["grad", "MS_median"] == pytest.approx(0.25)
    g = per_image[per_image.method == "grad"]
    assert table.loc["grad", "CAD"] == pytest.approx(g["CAD"].dropna().mean())
    for c in ("SI", "SD", "SAD", "SIC"):
        assert math.isnan(table.loc["single", c]), c
    assert math.isnan(table.loc["occ", "MS"]) and math.isnan(table.loc["occ", "MS_median"])
    na = na_counts(per_image, d, ["grad", "single", "occ"])
    assert na.loc["grad", "na_CAD"] == 1 and na.loc["single", "na_SI"] == 4 and na.loc["occ", "na_MS"] == 4
    assert "na_MS_median" not in na.columns
    md = to_markdown(table, d, "synthetic / simclr_small", na).splitlines()
    assert md[0] == "### synthetic / simclr_small"
    assert md[2] == HEADER
    assert md[3] == "|---|" + "---|" * 11
    single = md[5].split(" | ")
    assert single[0] == "| single" and single[1:3] == ["NA", "NA"] and single[5:7] == ["NA", "NA"]
    assert single[3] == f"{table.loc['single', 'CI']:.3f}"
    occ = md[6].split(" | ")
    assert occ[9:11] == ["NA", "NA"]
    assert md[-1].startswith("Means over fewer images") and "grad CAD: 3 of 4" in md[-1]
    assert "single" not in md[-1] and "occ" not in md[-1]  # all-NA cells are NA, not notes


def test_aggregate_writes_paper_tables_and_figures(tmp_path: Path) -> None:
    paths = []
    for k, (name, kw) in enumerate((("conditional_occlusion", {"no_ms": True}), ("pixel_like", {"single": True}), ("gradcam", {}))):
        p = tmp_path / f"{name}.csv"
        shard(3, k, **kw).to_csv(p, index=False, na_rep="NA")
        paths.append(p)
    methods = ["conditional_occlusion", "pixel_like", "gradcam"]
    out = tmp_path / "tables"
    aggregate(paths, methods, ALL, out / "scores.csv", out / "scores.md", out / "per_image.csv", "t / m")
    md = (out / "scores.md").read_text(encoding="utf-8")
    assert HEADER in md
    assert "| pixel_like | NA | NA |" in md
    csv = pd.read_csv(out / "scores.csv", index_col="method", na_values=["NA"], keep_default_na=False)
    assert list(csv.index) == methods
    assert {"MS_median", "RAND", "n_images", "na_MS", "na_SI"} <= set(csv.columns)
    assert csv.loc["conditional_occlusion", "na_MS"] == 3 and math.isnan(csv.loc["conditional_occlusion", "MS"])
    long = pd.read_csv(out / "per_image.csv", na_values=["NA"], keep_default_na=False)
    assert len(long) == 9 and "RAND_L1" in long.columns
    plot_metric_bars(out / "per_image.csv", tmp_path / "bars.png", tmp_path / "panels.png", metric_directions(ALL), "t / m")
    assert (tmp_path / "bars.png").stat().st_size > 0 and (tmp_path / "panels.png").stat().st_size > 0


def test_metric_panels_one_panel_per_metric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt

    per_image = pd.concat([shard(5, 0).assign(method="a"), shard(5, 1, single=True).assign(method="b")], ignore_index=True)
    captured = {}
    original = plt.Figure.savefig

    def spy(fig, *args, **kwargs):  # record the axes titles of the saved figure
        captured["titles"] = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.axison]
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", spy)
    metric_panels(per_image, metric_directions(ALL), tmp_path / "p.png", "title")
    titles = captured["titles"]
    assert len(titles) == 10  # SI .. MS and RAND (MS_median is a summary statistic, not a per-image column)
    assert titles[0] == "SI↑\n(NA: b)" and titles[2] == "CI↑" and titles[-1] == "RAND↓"


def test_bootstrap_ci_agrees_with_seaborn() -> None:
    """The vectorised bootstrap gives seaborn's percentile interval of the mean (up to resampling noise)."""
    from seaborn.algorithms import bootstrap

    from xai_ssl.plots import bootstrap_ci

    values = np.array([0.1, 0.5, 0.35, 0.9, 0.2, 0.7, 0.05, 0.6])
    lo, hi = bootstrap_ci(values, n_boot=20000)
    boots = bootstrap(values, n_boot=20000, seed=0)
    want_lo, want_hi = np.percentile(boots, [2.5, 97.5])
    assert lo < values.mean() < hi
    assert abs(lo - want_lo) < 0.02 and abs(hi - want_hi) < 0.02
    assert bootstrap_ci(values) == bootstrap_ci(values)  # seeded
    assert bootstrap_ci([0.3]) == (0.3, 0.3)
    assert np.isnan(bootstrap_ci([np.nan])[0])
