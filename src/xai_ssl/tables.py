"""Aggregate tables: per-image long CSV, and the paper-style summary (methods x metrics with arrows)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def read_per_image(paths: Sequence[Path], methods: Sequence[str]) -> pd.DataFrame:
    """Concatenate per-image CSVs (one or more shards per method); ``methods[i]`` names ``paths[i]``."""
    if len(paths) != len(methods):
        raise ValueError("read_per_image: one method name per file")
    frames = []
    for path, method in zip(paths, methods):
        df = pd.read_csv(path, na_values=["NA"], keep_default_na=False, dtype={"image_id": str})
        df.insert(0, "method", method)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


MEDIAN_SUFFIX = "_median"


def _source(column: str, per_image: pd.DataFrame) -> tuple[str, str] | None:
    """(per-image column, statistic) a summary column is computed from, or None if it cannot be."""
    if column in per_image.columns:
        return column, "mean"
    if column.endswith(MEDIAN_SUFFIX) and column[: -len(MEDIAN_SUFFIX)] in per_image.columns:
        return column[: -len(MEDIAN_SUFFIX)], "median"
    return None


def summary_table(per_image: pd.DataFrame, directions: dict[str, str], method_order: Sequence[str]) -> pd.DataFrame:
    """Mean over images per method (rows, in ``method_order``) and metric (columns, in ``directions`` order).

    A column ``<col>_median`` that is not a per-image column is the median of ``<col>`` (e.g. MS_median).
    NA values are skipped; a method without any value in a column gets NA.
    """
    sources = {c: _source(c, per_image) for c in directions}
    cols = [c for c in directions if sources[c] is not None]
    grouped = per_image.groupby("method", sort=False)
    stats = {c: getattr(grouped[sources[c][0]], sources[c][1])() for c in cols}
    means = pd.DataFrame(stats, columns=cols)
    counts = grouped.size().rename("n_images")
    out = means.join(counts).reindex([m for m in method_order if m in counts.index])
    out.index.name = "method"
    return out


def na_counts(per_image: pd.DataFrame, directions: dict[str, str], method_order: Sequence[str]) -> pd.DataFrame:
    """Images without a value per method and reported per-image column (``na_<col>``)."""
    cols = [c for c in directions if c in per_image.columns]
    na = per_image[cols].isna().groupby(per_image["method"], sort=False).sum().astype(int)
    na.columns = [f"na_{c}" for c in cols]
    return na.reindex([m for m in method_order if m in na.index])


def _cell(value: float) -> str:
    return "NA" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def to_markdown(table: pd.DataFrame, directions: dict[str, str], title: str | None = None, na: pd.DataFrame | None = None) -> str:
    """Markdown in the paper's layout: ``| method | SI↑ | SD↓ | ... |``, three decimals, NA cells.

    With ``na`` (from :func:`na_counts`) and ``n_images`` in ``table``, a note below the table lists
    the cells whose mean skips some images (NA for some but not all images of a method).
    """
    cols = [c for c in directions if c in table.columns]
    lines = [f"### {title}", ""] if title else []
    lines.append("| method | " + " | ".join(f"{c}{directions[c]}" for c in cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for method, row in table.iterrows():
        lines.append(f"| {method} | " + " | ".join(_cell(row[c]) for c in cols) + " |")
    if na is not None and "n_images" in table.columns:
        notes = []
        for method in table.index:
            if method not in na.index:
                continue
            total = int(table.loc[method, "n_images"])
            for c in cols:
                k = int(na.loc[method, f"na_{c}"]) if f"na_{c}" in na.columns else 0
                if 0 < k < total:
                    notes.append(f"{method} {c}: {total - k} of {total}")
        if notes:
            lines += ["", "Means over fewer images (the others are NA, e.g. base similarity ≤ 0, ‖e‖ = 0 or an image cap): " + "; ".join(notes) + "."]
    return "\n".join(lines) + "\n"


def write_tables(
    table: pd.DataFrame,
    per_image: pd.DataFrame,
    directions: dict[str, str],
    csv: Path,
    md: Path,
    long_csv: Path,
    title: str,
    na: pd.DataFrame | None = None,
) -> None:
    """Write the summary as CSV (with ``na_<col>`` counts when given) and Markdown, and all per-image values as one long CSV."""
    tmps = [Path(p).with_name(Path(p).name + ".tmp") for p in (csv, md, long_csv)]
    for t in tmps:
        t.parent.mkdir(parents=True, exist_ok=True)
    (table.join(na) if na is not None else table).to_csv(tmps[0], na_rep="NA", float_format="%.6f")
    tmps[1].write_text(to_markdown(table, directions, title, na), encoding="utf-8")
    per_image.to_csv(tmps[2], index=False, na_rep="NA", float_format="%.6f")
    for t, p in zip(tmps, (csv, md, long_csv)):
        t.replace(p)  # all three written before any is renamed into place
