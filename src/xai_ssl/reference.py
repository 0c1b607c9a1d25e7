"""Compare a produced scores table with the reference results of Sammani et al. (``methods-sammani.md`` §5.3).

The reference CSV (``config/reference_sammani.csv``) has one row per (model, method) with the columns
SI, SD, CI, CD, SAD, SIC, CAD, CID, MS (``NA`` = not applicable). The comparison is per cell:
difference = ours − reference, NA where either side is missing (a method we did not run, a metric we did
not compute, or an NA cell of the paper). Rows: the reference's methods in its order, then methods we ran
that the reference lacks.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from xai_ssl.io.atomic import atomic_paths

REFERENCE_COLUMNS: tuple[str, ...] = ("SI", "SD", "CI", "CD", "SAD", "SIC", "CAD", "CID", "MS")


def _read(path: Path | str) -> pd.DataFrame:
    return pd.read_csv(path, na_values=["NA"], keep_default_na=False)


def read_reference(path: Path | str, model: str) -> pd.DataFrame:
    """The reference rows of ``model`` (methods × REFERENCE_COLUMNS, NaN = NA)."""
    ref = _read(path)
    missing = [c for c in ("model", "method", *REFERENCE_COLUMNS) if c not in ref.columns]
    if missing:
        raise ValueError(f"{path}: reference table lacks column(s) {missing}")
    rows = ref[ref["model"] == model]
    if rows.empty:
        raise ValueError(f"{path}: no reference rows for model {model!r}; models: {sorted(ref['model'].unique())}")
    return rows.set_index("method")[list(REFERENCE_COLUMNS)].astype(float)


def read_scores(path: Path | str) -> pd.DataFrame:
    """Our scores table (``results/tables/<dataset>/<model>/scores.csv``), indexed by method; a damaged one is named."""
    from xai_ssl.io.tables_file import read_csv_output

    return read_csv_output(path, "scores table", ["method"], na_values=["NA"], keep_default_na=False).set_index("method")


def compare(ours: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Long table: method, metric, ours, reference, difference (NaN where either side is missing)."""
    methods = list(reference.index) + [m for m in ours.index if m not in reference.index]
    rows = []
    for method in methods:
        for col in REFERENCE_COLUMNS:
            a = float(ours.at[method, col]) if method in ours.index and col in ours.columns else math.nan
            b = float(reference.at[method, col]) if method in reference.index else math.nan
            rows.append({"method": method, "metric": col, "ours": a, "reference": b, "difference": a - b})
    return pd.DataFrame(rows)


def difference_table(long: pd.DataFrame) -> pd.DataFrame:
    """Wide table: one row per method, one column per metric, cells = ours − reference (NaN = NA)."""
    wide = long.pivot(index="method", columns="metric", values="difference")
    return wide.loc[list(dict.fromkeys(long["method"])), list(REFERENCE_COLUMNS)]


def _num(v: float, signed: bool = False) -> str:
    if v is None or math.isnan(v):
        return "NA"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def to_markdown(long: pd.DataFrame, title: str) -> str:
    """Markdown: per cell ``difference (ours / reference)``, NA where either side is missing."""
    header = "| method | " + " | ".join(REFERENCE_COLUMNS) + " |"
    lines = [f"### {title}", "", "Cells: ours − reference (ours / reference); NA where either side is missing.", "", header,
             "|" + "---|" * (len(REFERENCE_COLUMNS) + 1)]
    for method, group in long.groupby("method", sort=False):
        cells = []
        for r in group.itertuples():
            cells.append("NA" if math.isnan(r.difference) else f"{_num(r.difference, True)} ({_num(r.ours)} / {_num(r.reference)})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    n = int(long["difference"].notna().sum())
    lines += ["", f"{n} of {len(long)} cells compared."]
    if n:
        mad = long["difference"].abs().mean()
        lines.append(f"Mean absolute difference over the compared cells: {mad:.3f}.")
    return "\n".join(lines) + "\n"


def write_comparison(scores_csv: Path | str, reference_csv: Path | str, reference_model: str, out_csv: Path | str, out_md: Path | str, title: str) -> pd.DataFrame:
    """Write the per-cell difference table (CSV: method × metric, NA cells) and its Markdown; returns the long table."""
    long = compare(read_scores(scores_csv), read_reference(reference_csv, reference_model))
    with atomic_paths([out_csv, out_md]) as (tmp_csv, tmp_md):
        difference_table(long).to_csv(tmp_csv, na_rep="NA", float_format="%.6f")
        tmp_md.write_text(to_markdown(long, title), encoding="utf-8")
    return long
