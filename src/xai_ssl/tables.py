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


def summary_table(per_image: pd.DataFrame, directions: dict[str, str], method_order: Sequence[str]) -> pd.DataFrame:
    """Mean over images per method (rows, in ``method_order``) and metric (columns, in ``directions`` order)."""
    cols = [c for c in directions if c in per_image.columns]
    means = per_image.groupby("method", sort=False)[cols].mean()
    counts = per_image.groupby("method", sort=False).size().rename("n_images")
    out = means.join(counts).reindex([m for m in method_order if m in means.index])
    out.index.name = "method"
    return out


def _cell(value: float) -> str:
    return "NA" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def to_markdown(table: pd.DataFrame, directions: dict[str, str], title: str | None = None) -> str:
    """Markdown in the seed's layout: ``| method | SI↑ | SD↓ | ... |``, three decimals, NA cells."""
    cols = [c for c in directions if c in table.columns]
    lines = [f"### {title}", ""] if title else []
    lines.append("| method | " + " | ".join(f"{c}{directions[c]}" for c in cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for method, row in table.iterrows():
        lines.append(f"| {method} | " + " | ".join(_cell(row[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_tables(table: pd.DataFrame, per_image: pd.DataFrame, directions: dict[str, str], csv: Path, md: Path, long_csv: Path, title: str) -> None:
    """Write the summary as CSV and Markdown, and all per-image values as one long CSV."""
    tmps = [Path(p).with_name(Path(p).name + ".tmp") for p in (csv, md, long_csv)]
    for t in tmps:
        t.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(tmps[0], na_rep="NA", float_format="%.6f")
    tmps[1].write_text(to_markdown(table, directions, title), encoding="utf-8")
    per_image.to_csv(tmps[2], index=False, na_rep="NA", float_format="%.6f")
    for t, p in zip(tmps, (csv, md, long_csv)):
        t.replace(p)  # all three written before any is renamed into place
