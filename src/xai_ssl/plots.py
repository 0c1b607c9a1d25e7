"""Figures: attribution grid, insertion/deletion curves, metric bars (combined and one panel per metric), training loss."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402

from xai_ssl.io.atomic import atomic_path  # noqa: E402
from xai_ssl.overlay import normalised_map  # noqa: E402

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


def curves_figure(curves: dict[str, dict[str, np.ndarray]], path: Path, title: str = "") -> None:
    """Mean insertion/deletion curves per method; ``curves[method][name]`` is [N, T+1]."""
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), sharey=True)
    palette = sns.color_palette("tab10", n_colors=max(len(curves), 1))
    for ax, (name, label) in zip(axes, CURVE_PANELS):
        for color, (method, c) in zip(palette, curves.items()):
            keys = (f"{name}_1", f"{name}_2") if name in ("CI", "CD") else (name,)  # both conditional directions
            parts = [c[k] for k in keys if k in c]
            if not parts:
                continue
            mean = np.concatenate(parts).mean(0)
            ax.plot(np.linspace(0, 1, len(mean)), mean, color=color, label=method)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("fraction of pixels")
    axes[0].set_ylabel("cosine similarity")
    axes[-1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


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


def metric_bars(per_image: pd.DataFrame, directions: dict[str, str], path: Path, title: str = "") -> None:
    """Bar per method and metric with 95% bootstrap confidence intervals over images."""
    cols = [c for c in directions if c in per_image.columns and per_image[c].notna().any()]
    long = per_image.melt(id_vars=["method"], value_vars=cols, var_name="metric", value_name="value").dropna()
    long["metric"] = long["metric"].map(lambda c: f"{c}{directions[c]}")
    fig, ax = plt.subplots(figsize=(1.2 + 1.3 * len(cols), 3.6))
    sns.barplot(data=long, x="metric", y="value", hue="method", errorbar=bootstrap_ci, ax=ax)
    ax.set_xlabel("")
    ax.set_ylabel("mean over images (95% CI)")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def metric_panels(per_image: pd.DataFrame, directions: dict[str, str], path: Path, title: str = "", ncols: int = 5) -> None:
    """One panel per metric (own y-axis): bar per method with a 95 % bootstrap confidence interval over images.

    Methods keep their order in ``per_image`` (config order) and their colour in every panel; a
    method without values for a metric (NA) has no bar there, and the panel says so.
    """
    cols = [c for c in directions if c in per_image.columns and per_image[c].notna().any()]
    methods = list(dict.fromkeys(per_image["method"]))
    palette = dict(zip(methods, sns.color_palette("tab10" if len(methods) <= 10 else "tab20", n_colors=max(len(methods), 1))))
    n = max(len(cols), 1)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.5 + 2.3 * ncols, 0.6 + 2.6 * nrows), squeeze=False)
    for ax, c in zip(axes.flat, cols):
        data = per_image[["method", c]].dropna()
        sns.barplot(
            data=data, x="method", y=c, hue="method", order=methods, hue_order=methods, palette=palette,
            errorbar=bootstrap_ci, ax=ax, legend=False,
        )
        missing = [m for m in methods if m not in set(data["method"])]
        na = textwrap.fill(f"(NA: {', '.join(missing)})", width=48) if missing else ""
        ax.set_title(f"{c}{directions[c]}" + (f"\n{na}" if na else ""), fontsize=8 if not na else 7)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelrotation=60, labelsize=6)
        ax.tick_params(axis="y", labelsize=7)
        for lab in ax.get_xticklabels():
            lab.set_horizontalalignment("right")
    for ax in list(axes.flat)[len(cols) :]:
        ax.axis("off")
    axes[0, 0].set_ylabel("mean over images (95% CI)", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
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
