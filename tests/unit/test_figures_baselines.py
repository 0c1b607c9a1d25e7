"""Figures with baselines: families in colour families, baselines grey (dashed curves), the random mean as a line, legends outside."""

from __future__ import annotations

import colorsys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from xai_ssl.plots import curves_figure, metric_bars, metric_panels
from xai_ssl.methods import get_method
from xai_ssl.metrics import metric_directions

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METHODS = [  # the default config's 17 scored methods and the three baselines
    "conditional_occlusion", "context_agnostic_occlusion", "pairwise_occlusion", "gradcam", "interaction_cam_mean",
    "interaction_cam_max", "interaction_cam_sa", "pixel_invariance", "input_x_gradient", "input_x_gradient_g", "smooth_grad",
    "smooth_grad_g", "avg_transforms", "avg_transforms_g", "avg_transforms_n", "avg_transforms_gn", "relax",
    "random_baseline", "centre_baseline", "edge_baseline",
]
FAMILY = {
    **dict.fromkeys(METHODS[:3], "occlusion"), **dict.fromkeys(METHODS[3:7], "cam"), "pixel_invariance": "perturbation",
    "relax": "perturbation", **dict.fromkeys(METHODS[8:16], "gradient"), **dict.fromkeys(METHODS[17:], "baseline"),
}
GROUPED = METHODS[:3] + METHODS[3:7] + METHODS[8:16] + ["pixel_invariance", "relax"] + METHODS[17:]  # family order
REGISTRY_FAMILIES = {m: get_method(m).family for m in METHODS}  # what Plan.method_families passes to the figure rules
ALL = ["insertion_deletion", "average_drop_increase", "max_sensitivity", "model_randomisation", "localisation"]


def fake_per_image(n: int = 32, methods: list[str] = METHODS) -> pd.DataFrame:
    """Per-image scores of a plausible run: each method a level per metric plus image noise; the paper's NA cells."""
    rng = np.random.default_rng(0)
    cols = [c for c in metric_directions(ALL) if not c.endswith("_median")]
    frames = []
    for k, m in enumerate(methods):
        level = rng.random(len(cols))
        df = pd.DataFrame({"method": m, "image_id": [f"i{i}" for i in range(n)]})
        for c, lv in zip(cols, level):
            df[c] = np.clip(lv + 0.15 * rng.standard_normal(n), 0, 1)
        if m in ("pixel_invariance", "relax"):
            df[["SI", "SD", "SAD", "SIC", "MS"]] = np.nan
        if "occlusion" in m:
            df["MS"] = np.nan
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def fake_curves(n: int = 32, steps: int = 48, methods: list[str] = METHODS) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    t = np.linspace(0, 1, steps + 1)
    out = {}
    for m in methods:
        a, b = rng.random(2)
        ins = 0.3 + (0.4 + 0.3 * a) * t ** (0.3 + b) + 0.02 * rng.standard_normal((n, steps + 1))
        dele = 1.0 - (0.7 + 0.2 * a) * t ** (0.2 + b) + 0.02 * rng.standard_normal((n, steps + 1))
        out[m] = {"SI": ins, "SD": dele, "CI_1": ins, "CI_2": ins[::-1], "CD_1": dele, "CD_2": dele[::-1]}
    return out


@pytest.fixture
def saved(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The figure handed to savefig, drawn, with the display boxes of its axes and legends."""
    captured: dict = {}
    original = plt.Figure.savefig

    def spy(fig, *args, **kwargs):
        original(fig, *args, **kwargs)  # draws the figure (constrained layout applied)
        renderer = fig.canvas.get_renderer()
        legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        captured.update(
            fig=fig,
            axes=[ax for ax in fig.axes if ax.get_visible() and ax.axison],
            axes_boxes=[ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible() and ax.axison],
            legend_boxes=[lg.get_window_extent(renderer) for lg in legends],
            legends=legends,
            size=fig.bbox,
        )

    monkeypatch.setattr(plt.Figure, "savefig", spy)
    return captured


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def is_grey(rgb) -> bool:
    r, g, b = to_rgb(rgb)
    return max(r, g, b) - min(r, g, b) < 1e-6


def hue_family(rgb) -> str:
    """The colour family of an RGB colour by its hue (HSV): blue, red, green, purple; grey = baseline."""
    if is_grey(rgb):
        return "baseline"
    hue = colorsys.rgb_to_hsv(*to_rgb(rgb))[0] * 360
    for family, (lo, hi) in {"cam": (-20, 20), "gradient": (90, 160), "occlusion": (190, 230), "perturbation": (240, 290)}.items():
        if lo <= (hue if hue < 340 else hue - 360) <= hi:
            return family
    return f"hue {hue:.0f}"


def legend_labels(legend) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


def test_curves_grouped_by_family_baselines_dashed_grey_legend_outside(tmp_path: Path, saved: dict) -> None:
    curves_figure(fake_curves(), tmp_path / "curves.png", "synthetic / simclr_small", REGISTRY_FAMILIES)
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert len(saved["axes"]) == 4 and len(saved["legend_boxes"]) == 1
    box = saved["legend_boxes"][0]
    assert not any(overlaps(box, ax) for ax in saved["axes_boxes"])  # the legend sits outside every panel
    size = saved["size"]
    assert box.x0 >= size.x0 - 1 and box.x1 <= size.x1 + 1 and box.y0 >= size.y0 - 1  # and inside the image
    labels = [lab for lab in legend_labels(saved["legends"][0]) if lab]
    assert [lab for lab in labels if lab in METHODS] == GROUPED  # grouped by family, baselines last
    assert {"occlusion", "CAM / feature maps", "gradient", "perturbation / surrogate", "baselines"} <= set(labels)
    lines = {ln.get_label(): ln for ln in saved["axes"][0].get_lines()}
    assert set(lines) == set(METHODS)
    colours = {m: to_rgb(ln.get_color()) for m, ln in lines.items()}
    assert len(set(colours.values())) == len(METHODS)  # every method its own shade
    for m, ln in lines.items():
        assert hue_family(ln.get_color()) == FAMILY[m], m
        dashed = ln.get_linestyle() not in ("-", "solid")
        assert dashed == (FAMILY[m] == "baseline"), m


def test_curves_without_families_still_plot(tmp_path: Path, saved: dict) -> None:
    curves_figure(fake_curves(methods=["mine", "gradcam", "random_baseline"]), tmp_path / "c.png", "")
    lines = {ln.get_label(): ln for ln in saved["axes"][0].get_lines()}
    assert set(lines) == {"mine", "gradcam", "random_baseline"} and not is_grey(lines["mine"].get_color())
    assert is_grey(lines["random_baseline"].get_color())  # the baselines by name


def bar_colours(ax) -> list:
    return [p.get_facecolor()[:3] for p in ax.patches if p.get_height() and np.isfinite(p.get_height())]


def test_metric_panels_reference_line_grey_baselines(tmp_path: Path, saved: dict) -> None:
    per_image = fake_per_image()
    d = metric_directions(ALL)
    metric_panels(per_image, d, tmp_path / "panels.png", "t", families=REGISTRY_FAMILIES)
    assert (tmp_path / "panels.png").stat().st_size > 0
    axes = saved["axes"]
    cols = [c for c in d if c in per_image.columns]
    assert len(axes) == len(cols)
    ref = per_image[per_image.method == "random_baseline"]
    for ax, c in zip(axes, cols):
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert ticks == GROUPED
        ys = [ln.get_ydata()[0] for ln in ax.get_lines() if len(set(ln.get_ydata())) == 1 and len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == 0]
        assert ys == [pytest.approx(ref[c].mean())], c  # one horizontal line at the random baseline's mean
        present = [m for m in GROUPED if per_image.loc[per_image.method == m, c].notna().any()]
        for m, colour in zip(present, bar_colours(ax)):
            assert is_grey(colour) == (FAMILY[m] == "baseline"), (c, m)
    for box in saved["legend_boxes"]:
        assert not any(overlaps(box, ax) for ax in saved["axes_boxes"])
    assert "random_baseline mean" in legend_labels(saved["legends"][0])


def test_metric_bars_reference_line_and_legend_outside(tmp_path: Path, saved: dict) -> None:
    per_image = fake_per_image()
    d = metric_directions(ALL)
    metric_bars(per_image, d, tmp_path / "bars.png", "t", REGISTRY_FAMILIES)
    (ax,) = saved["axes"]
    cols = [c for c in d if c in per_image.columns]
    ref = per_image[per_image.method == "random_baseline"]
    segments = [seg for coll in ax.collections if hasattr(coll, "get_segments") for seg in coll.get_segments()]
    horizontal = sorted((round((s[0][0] + s[1][0]) / 2), s[0][1]) for s in segments if len(s) == 2 and s[0][1] == s[1][1])
    assert [x for x, _ in horizontal] == list(range(len(cols)))
    np.testing.assert_allclose([y for _, y in horizontal], [ref[c].mean() for c in cols])
    box = saved["legend_boxes"][0]
    assert not any(overlaps(box, a) for a in saved["axes_boxes"])
    assert [lab for lab in legend_labels(saved["legends"][0]) if lab in METHODS] == GROUPED
    greys = [is_grey(c) for c in bar_colours(ax)]
    assert sum(greys) == 3 * len(cols)  # the three baselines in every metric group


def test_bar_figures_without_the_random_baseline(tmp_path: Path, saved: dict) -> None:
    per_image = fake_per_image(methods=["gradcam", "smooth_grad", "centre_baseline"])
    d = metric_directions(ALL)
    metric_panels(per_image, d, tmp_path / "p.png", "t")
    assert not any(len(set(ln.get_ydata())) == 1 and len(ln.get_xdata()) == 2 for ax in saved["axes"] for ln in ax.get_lines())
    assert "random_baseline mean" not in legend_labels(saved["legends"][0])
    metric_bars(per_image, d, tmp_path / "b.png", "t")
    assert (tmp_path / "b.png").stat().st_size > 0 and (tmp_path / "p.png").stat().st_size > 0
