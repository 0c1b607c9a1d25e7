"""Figures: attribution grid, insertion/deletion curves, metric bars (combined and one panel per metric), training loss, model card."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from xai_ssl.io.atomic import atomic_path  # noqa: E402
from xai_ssl.method_roles import BASELINE, BASELINE_ORDER, FAMILY_LABELS, FAMILY_ORDER, default_families  # noqa: E402
from xai_ssl.overlay import normalised_map  # noqa: E402
from xai_ssl.significance import RANDOM_BASELINE  # noqa: E402

CURVE_PANELS = (("SI", "simultaneous insertion ↑"), ("SD", "simultaneous deletion ↓"), ("CI", "conditional insertion ↑"), ("CD", "conditional deletion ↓"))


def _image(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).clamp(0, 1).numpy()


def attribution_grid(
    views: Sequence[tuple[torch.Tensor, torch.Tensor]],
    method_views: dict[str, tuple[torch.Tensor, torch.Tensor]],
    method_maps: dict[str, tuple[torch.Tensor, torch.Tensor | None]],
    image_ids: Sequence[str],
    path: Path,
) -> None:
    """Rows = the two views, then one row per method; columns = (view 1, view 2) of each image.

    Each method's maps are drawn over its own pair (crop_aug or interpolation); single-map methods
    leave the second view without overlay.
    """
    n = len(image_ids)
    names = list(method_maps)
    ncols, nrows = 2 * n, 1 + len(names)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols + 1.2, 1.5 * nrows + 0.4), squeeze=False)
    for r in range(n):
        x1, x2 = views[r]
        size = x1.shape[-1]
        axes[0, 2 * r].imshow(_image(x1))
        axes[0, 2 * r + 1].imshow(_image(x2))
        axes[0, 2 * r].set_title(f"{image_ids[r][:12]}\nview 1", fontsize=7)
        axes[0, 2 * r + 1].set_title("view 2", fontsize=7)
        for j, name in enumerate(names):
            a, b = method_views[name]
            m1, m2 = method_maps[name]
            for k, (img, m) in enumerate(((a[r], m1[r]), (b[r], None if m2 is None else m2[r]))):
                ax = axes[1 + j, 2 * r + k]
                ax.imshow(_image(img))
                if m is not None:
                    ax.imshow(normalised_map(m, size), cmap="jet", alpha=0.5, vmin=0, vmax=1)
    axes[0, 0].set_ylabel("images", fontsize=8)
    for j, name in enumerate(names):
        axes[1 + j, 0].set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    _save(fig, path)


FAMILY_CMAPS = {"occlusion": "Blues", "cam": "Reds", "gradient": "Greens", "perturbation": "Purples", "attention": "RdPu", "other": "YlOrBr", BASELINE: "Greys"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
BASELINE_DASHES = ((0, (5, 2)), (0, (1.5, 1.5)), (0, (6, 2, 1.5, 2)), (0, (3, 1, 1, 1, 1, 1)))
REFERENCE_LINE = {"color": "0.15", "linestyle": (0, (4, 2)), "linewidth": 1.0}  # the random baseline's mean in the bar figures


@dataclass(frozen=True)
class MethodStyle:
    """How a method is drawn: its family's colour shade, a marker (curves) and a line style (dashed for baselines)."""

    family: str
    colour: tuple[float, float, float]
    marker: str
    linestyle: str | tuple


def method_styles(methods: Sequence[str], families: dict[str, str] | None = None) -> dict[str, MethodStyle]:
    """Styles keyed by method, ordered by family (FAMILY_ORDER; baselines last, random, centre, edge), then input order.

    Each family has one colour map (occlusion blues, CAM reds, gradient greens, perturbation purples, attention
    pinks, other yellow-browns, baselines greys); the methods of a family get evenly spaced shades (dark to light) and a marker each; baselines are dashed.
    ``families`` (method -> registry family, ``Plan.method_families``) defaults to the baselines by name, "other" for the rest.
    """
    methods = list(dict.fromkeys(methods))
    families = default_families(methods) if families is None else families
    fam = {m: families.get(m, "other") if families.get(m, "other") in FAMILY_CMAPS else "other" for m in methods}
    out: dict[str, MethodStyle] = {}
    for family in FAMILY_ORDER:
        members = [m for m in methods if fam[m] == family]
        if family == BASELINE:
            rank = {n: i for i, n in enumerate(BASELINE_ORDER)}
            members.sort(key=lambda n: (rank.get(n, len(rank)), n))
        if not members:
            continue
        cmap = matplotlib.colormaps[FAMILY_CMAPS[family]]
        lo, hi = (0.35, 0.75) if family == BASELINE else (0.45, 0.95)
        shades = np.linspace(hi, lo, len(members)) if len(members) > 1 else [0.8]
        for k, (m, shade) in enumerate(zip(members, shades)):
            style = BASELINE_DASHES[k % len(BASELINE_DASHES)] if family == BASELINE else "-"
            out[m] = MethodStyle(family, tuple(cmap(float(shade))[:3]), MARKERS[k % len(MARKERS)], style)
    return out


def _family_legend_entries(styles: dict[str, MethodStyle], kind: str, extra: Sequence[tuple] = ()) -> tuple[list, list[str], int]:
    """Legend (handles, labels, ncols): one column per family, a bold header then its methods, padded to equal length.

    ``extra`` (handle, label) pairs form a last column headed "reference".
    """
    columns = []
    for family in FAMILY_ORDER:
        members = [m for m, st in styles.items() if st.family == family]
        if not members:
            continue
        header = [(Line2D([], [], linestyle="none"), FAMILY_LABELS[family])]
        if kind == "line":
            rows = [(Line2D([], [], color=styles[m].colour, linestyle=styles[m].linestyle, marker=styles[m].marker, markersize=4), m) for m in members]
        else:
            rows = [(Patch(facecolor=styles[m].colour, edgecolor="0.3", linewidth=0.4), m) for m in members]
        columns.append(header + rows)
    if extra:
        columns.append([(Line2D([], [], linestyle="none"), FAMILY_LABELS["reference"])] + list(extra))
    depth = max((len(c) for c in columns), default=0)
    handles, labels = [], []
    for col in columns:  # matplotlib fills legend columns first: pad each family to the same depth
        col = col + [(Line2D([], [], linestyle="none"), "")] * (depth - len(col))
        handles += [h for h, _ in col]
        labels += [lab for _, lab in col]
    return handles, labels, len(columns)


def _bold_headers(legend: matplotlib.legend.Legend) -> None:
    """Family names in a legend built by :func:`_family_legend_entries` in bold."""
    headers = set(FAMILY_LABELS.values())
    for text in legend.get_texts():
        if text.get_text() in headers:
            text.set_fontweight("bold")


def curves_figure(curves: dict[str, dict[str, np.ndarray]], path: Path, title: str = "", families: dict[str, str] | None = None) -> None:
    """Mean insertion/deletion curves per method; ``curves[method][name]`` is [N, T+1].

    Methods are grouped by family, one colour family each (shades and markers within it), baselines grey and
    dashed; the legend (one column per family) sits below the four panels, outside every axes.
    """
    styles = method_styles(list(curves), families)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.3 + 0.17 * (1 + max(_family_sizes(styles).values(), default=0))), sharey=True, layout="constrained")
    for ax, (name, label) in zip(axes, CURVE_PANELS):
        for method, st in styles.items():
            c = curves[method]
            keys = (f"{name}_1", f"{name}_2") if name in ("CI", "CD") else (name,)  # both conditional directions
            parts = [c[k] for k in keys if k in c]
            if not parts:
                continue
            mean = np.concatenate(parts).mean(0)
            base = st.family == BASELINE
            ax.plot(
                np.linspace(0, 1, len(mean)), mean, color=st.colour, linestyle=st.linestyle, linewidth=1.5 if base else 1.1,
                marker=st.marker, markersize=3.5, markevery=max(1, (len(mean) - 1) // 6), label=method, zorder=3 if base else 2,
            )
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("fraction of pixels")
        ax.grid(alpha=0.25, linewidth=0.5)
    axes[0].set_ylabel("cosine similarity")
    handles, labels, ncols = _family_legend_entries(styles, "line")
    if handles:
        _bold_headers(fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=7, frameon=False, columnspacing=1.5))
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _family_sizes(styles: dict[str, MethodStyle]) -> dict[str, int]:
    """Methods per family (the legend's depth)."""
    out: dict[str, int] = {}
    for st in styles.values():
        out[st.family] = out.get(st.family, 0) + 1
    return out


def bootstrap_ci(values: Sequence[float] | np.ndarray, n_boot: int = 1000, level: float = 95.0, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, all ``n_boot`` resamples drawn at once ([n_boot, n] indices).

    The interval seaborn's ``errorbar=("ci", level)`` computes, without its per-resample Python loop
    (seaborn's loop took ~25 s for the ~600 bars of the default run's two bar figures).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)  # [n_boot]
    tail = (100.0 - level) / 2
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)


def reference_means(per_image: pd.DataFrame, cols: Sequence[str], reference: str = RANDOM_BASELINE) -> dict[str, float]:
    """Mean over images of ``reference`` (the random baseline) per column; {} when it is not in ``per_image``."""
    ref = per_image[per_image["method"] == reference]
    if ref.empty:
        return {}
    return {c: float(ref[c].mean()) for c in cols if c in ref.columns and ref[c].notna().any()}


def metric_bars(
    per_image: pd.DataFrame, directions: dict[str, str], path: Path, title: str = "", families: dict[str, str] | None = None
) -> None:
    """Bar per method and metric with 95% bootstrap confidence intervals over images.

    Methods are grouped by family (colour families as :func:`curves_figure`, baselines grey, last); a dashed
    line across each metric's group marks the random baseline's mean; the legend (one column per family) is below the axes.
    """
    cols = [c for c in directions if c in per_image.columns and per_image[c].notna().any()]
    styles = method_styles(list(dict.fromkeys(per_image["method"])), families)
    order = list(styles)
    long = per_image.melt(id_vars=["method"], value_vars=cols, var_name="metric", value_name="value").dropna()
    long["metric"] = long["metric"].map(lambda c: f"{c}{directions[c]}")
    ref = reference_means(per_image, cols)
    extra = [(Line2D([], [], **REFERENCE_LINE), f"{RANDOM_BASELINE} mean")] if ref else []
    handles, labels, ncols = _family_legend_entries(styles, "bar", extra)
    depth = len(handles) // max(ncols, 1)
    fig, ax = plt.subplots(figsize=(2.0 + (0.05 * len(order) + 0.3) * len(cols), 3.8 + 0.15 * depth), layout="constrained")
    sns.barplot(
        data=long, x="metric", y="value", hue="method", order=[f"{c}{directions[c]}" for c in cols], hue_order=order,
        palette={m: st.colour for m, st in styles.items()}, errorbar=bootstrap_ci, err_kws={"linewidth": 0.8}, ax=ax, legend=False,
    )
    for i, c in enumerate(cols):
        if c in ref:
            ax.hlines(ref[c], i - 0.42, i + 0.42, **REFERENCE_LINE, zorder=4)
    ax.set_xlabel("")
    ax.set_ylabel("mean over images (95% CI)")
    ax.grid(axis="y", alpha=0.25, linewidth=0.5)
    if handles:
        _bold_headers(fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=7, frameon=False, columnspacing=1.5))
    if title:
        ax.set_title(title, fontsize=10)
    _save(fig, path)


def metric_panels(
    per_image: pd.DataFrame, directions: dict[str, str], path: Path, title: str = "", ncols: int = 5, families: dict[str, str] | None = None
) -> None:
    """One panel per metric (own y-axis): bar per method with a 95 % bootstrap confidence interval over images.

    Methods are grouped by family (colour families as :func:`curves_figure`; baselines grey and last) and keep
    their colour in every panel; a dashed line marks the random baseline's mean; a method without values for a
    metric (NA) has no bar there, and the panel says so. The family legend sits below the panels.
    """
    cols = [c for c in directions if c in per_image.columns and per_image[c].notna().any()]
    styles = method_styles(list(dict.fromkeys(per_image["method"])), families)
    methods = list(styles)
    palette = {m: st.colour for m, st in styles.items()}
    ref = reference_means(per_image, cols)
    n = max(len(cols), 1)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    width = max(2.3, 0.55 + 0.13 * len(methods))
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.5 + width * ncols, 1.4 + 2.9 * nrows), squeeze=False, layout="constrained")
    for ax, c in zip(axes.flat, cols):
        data = per_image[["method", c]].dropna()
        sns.barplot(
            data=data, x="method", y=c, hue="method", order=methods, hue_order=methods, palette=palette,
            errorbar=bootstrap_ci, err_kws={"linewidth": 0.8}, ax=ax, legend=False,
        )
        if c in ref:
            ax.axhline(ref[c], **REFERENCE_LINE, zorder=4)
        missing = [m for m in methods if m not in set(data["method"])]
        na = textwrap.fill(f"(NA: {', '.join(missing)})", width=int(22 * width)) if missing else ""
        ax.set_title(f"{c}{directions[c]}" + (f"\n{na}" if na else ""), fontsize=8 if not na else 7)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.grid(axis="y", alpha=0.25, linewidth=0.5)
        ax.tick_params(axis="x", labelrotation=60, labelsize=6)
        ax.tick_params(axis="y", labelsize=7)
        for lab in ax.get_xticklabels():
            lab.set_horizontalalignment("right")
            lab.set_rotation_mode("anchor")
    for ax in list(axes.flat)[len(cols) :]:
        ax.axis("off")
    axes[0, 0].set_ylabel("mean over images (95% CI)", fontsize=7)
    families_shown = [f for f in FAMILY_ORDER if any(st.family == f for st in styles.values())]
    handles = [Patch(facecolor=matplotlib.colormaps[FAMILY_CMAPS[f]](0.7), edgecolor="0.3", linewidth=0.4) for f in families_shown]
    labels = [FAMILY_LABELS[f] for f in families_shown]
    if ref:
        handles.append(Line2D([], [], **REFERENCE_LINE))
        labels.append(f"{RANDOM_BASELINE} mean")
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)


def loss_curve(history: pd.DataFrame, path: Path, title: str = "") -> None:
    """Training loss per epoch."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(history["epoch"], history["loss"], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("NT-Xent loss")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def model_card(card: dict[str, Any], path: Path, title: str = "") -> None:
    """The model card (models/quality.py): probe accuracy per label (encoder, raw pixels, random encoder; majority as a line)
    and the view-cosine quartiles in the title."""
    labels = list(card["probe"]["labels"])
    arms = (("encoder", "tab:blue"), ("raw_pixels", "0.55"), ("random_encoder", "0.8"))
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(labels), 3.4))
    width = 0.26
    for j, name in enumerate(labels):
        p = card["probe"]["labels"][name]
        for i, (arm, colour) in enumerate(arms):
            x = j + (i - 1) * width
            ax.bar(x, p[arm], width, color=colour, label=arm.replace("_", " ") if j == 0 else None)
            ax.text(x, p[arm] + 0.01, f"{p[arm]:.2f}", ha="center", va="bottom", fontsize=7)
        ax.hlines(p["majority"], j - 1.5 * width, j + 1.5 * width, colors="k", linestyles="dashed", label="majority" if j == 0 else None)
    ax.set_xticks(range(len(labels)), ["class" if n == "label" else n.replace("_", " ") for n in labels])
    ax.set_ylim(0, 1.3)
    ax.set_ylabel(f"linear probe accuracy ({card['test_split']})")
    ax.legend(fontsize=7, loc="upper center", ncol=4)
    cos = "; ".join(f"{d}: median {v['median']:.2f} [{v['q25']:.2f}, {v['q75']:.2f}]" for d, v in card["view_cosine"].items())
    ax.set_title(f"{title}\nview cosine {cos}" if title else f"view cosine {cos}", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> None:
    """Write a figure atomically and close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)


def dream_grid(
    dreamed: torch.Tensor, conditions: torch.Tensor, details: torch.Tensor, image_ids: Sequence[str], path: Path, title: str = ""
) -> None:
    """Feature visualisation: rows = images; columns = dreamed image, condition x2, detail (clipped to [0, 1])."""
    n = len(image_ids)
    fig, axes = plt.subplots(n, 3, figsize=(5.0, 1.7 * n + 0.5), squeeze=False)
    for r in range(n):
        for c, img in enumerate((dreamed[r], conditions[r], details[r])):
            axes[r, c].imshow(_image(img.float()))
        axes[r, 0].set_ylabel(image_ids[r][:12], fontsize=7)
    for c, t in enumerate(("dreamed image", "condition x2", "detail")):
        axes[0, c].set_title(t, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    _save(fig, path)
