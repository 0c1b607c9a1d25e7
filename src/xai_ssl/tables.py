"""Aggregate tables: per-image long CSV, and the paper-style summary (methods x metrics with arrows)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xai_ssl.io.atomic import atomic_paths
from xai_ssl.io.scores_file import read_scores
from xai_ssl.provenance import config_hash
from xai_ssl.significance import MARK, UNTESTED_MARK, Significance, significance_note

log = logging.getLogger(__name__)


def read_per_image(paths: Sequence[Path], methods: Sequence[str]) -> pd.DataFrame:
    """Concatenate per-image CSVs (one or more shards per method); ``methods[i]`` names ``paths[i]``.

    Values that are not finite (inf, -inf, NaN written as text) become NA, so they are counted in
    ``na_<col>`` and never reach a mean; each such file is logged.
    """
    if len(paths) != len(methods):
        raise ValueError("read_per_image: one method name per file")
    frames = []
    for path, method in zip(paths, methods):
        df = read_scores(path)
        values = df.drop(columns=["image_id"]).apply(pd.to_numeric, errors="coerce")  # [N, C] floats
        infinite = int(np.isinf(values.to_numpy(dtype=np.float64)).sum())
        if infinite:
            log.warning("%s: %d infinite value(s) read as NA", path, infinite)
        df[values.columns] = values.where(np.isfinite(values.to_numpy(dtype=np.float64)))
        df.insert(0, "method", method)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


DIAGNOSTIC_COUNTS = ("excluded_images", "nonfinite_maps", "zero_norm_embeddings", "constant_maps", "maps_with_ties")


def diagnostic_counts(shard_attrs: Sequence[dict[str, Any]], methods: Sequence[str], method_order: Sequence[str]) -> pd.DataFrame:
    """Sum of every bad-number count over a method's shards (rows in ``method_order``)."""
    rows: dict[str, dict[str, int]] = {}
    for attrs, method in zip(shard_attrs, methods):
        row = rows.setdefault(method, dict.fromkeys(DIAGNOSTIC_COUNTS, 0))
        for k in DIAGNOSTIC_COUNTS:
            row[k] += int(attrs.get("diagnostics", {}).get(k, 0))
    out = pd.DataFrame.from_dict(rows, orient="index", columns=list(DIAGNOSTIC_COUNTS))
    return out.reindex([m for m in method_order if m in out.index])


def table_provenance(shard_attrs: Sequence[dict[str, Any]], paths: Sequence[Path], methods: Sequence[str]) -> dict[str, Any]:
    """Provenance of a summary table: the config hash over its inputs, the code versions and seeds of its shards."""
    inputs = {str(p): {"method": m, "config_hash": a.get("config_hash"), "code_version": a.get("code_version"), "seed": a.get("seed")} for p, m, a in zip(paths, methods, shard_attrs)}
    return {
        "config_hash": config_hash(sorted(str(a.get("config_hash")) for a in shard_attrs)),
        "code_version": sorted({str(a.get("code_version")) for a in shard_attrs}),
        "seed": sorted({int(a["seed"]) for a in shard_attrs if a.get("seed") is not None}),
        "inputs": inputs,
    }


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


def _tested_column(column: str, sig: Significance) -> str:
    """The per-image column whose test marks a summary column (``MS_median`` -> ``MS``)."""
    if f"p_{column}" not in sig.p.columns and column.endswith(MEDIAN_SUFFIX):
        return column[: -len(MEDIAN_SUFFIX)]
    return column


def to_markdown(
    table: pd.DataFrame,
    directions: dict[str, str],
    title: str | None = None,
    na: pd.DataFrame | None = None,
    significance: Significance | None = None,
    baselines: Sequence[str] = (),
) -> str:
    """Markdown in the paper's layout: ``| method | SI↑ | SD↓ | ... |``, three decimals, NA cells.

    With ``na`` (from :func:`na_counts`) and ``n_images`` in ``table``, a note below the table lists
    the cells whose mean skips some images (NA for some but not all images of a method). With
    ``significance`` (:func:`xai_ssl.significance.significance_table`), a mean that is not
    distinguishable from the reference (random baseline) gets a † and a note explains the test (or says
    that the reference is not in the run); a method on other view pairs than the reference (not tested) gets a ‡. ``baselines`` in ``table`` are named in a last note.
    """
    cols = [c for c in directions if c in table.columns]
    lines = [f"### {title}", ""] if title else []
    lines.append("| method | " + " | ".join(f"{c}{directions[c]}" for c in cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for method, row in table.iterrows():
        cells = []
        for c in cols:
            text = _cell(row[c])
            if significance is not None and text != "NA" and significance.not_distinguishable(str(method), _tested_column(c, significance)):
                text += MARK
            cells.append(text)
        name = f"{method}{UNTESTED_MARK}" if significance is not None and method in significance.other_pairs else method
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
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
    if significance is not None:
        tested = [c for c in cols if f"p_{c}" in significance.p.columns]
        lines += ["", significance_note(significance, table, tested)]
    shown = [b for b in baselines if b in table.index]
    if shown:
        lines += ["", f"Baselines (last rows; maps that ignore the model): {', '.join(shown)}."]
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
    counts: pd.DataFrame | None = None,
    provenance: dict[str, Any] | None = None,
    provenance_path: Path | None = None,
    significance: Significance | None = None,
    baselines: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> None:
    """Write the summary as CSV (with ``na_<col>``, bad-number ``counts`` and Holm-adjusted ``p_<col>`` when given) and Markdown, and all per-image values as one long CSV.

    The Markdown marks and notes significance and baselines as :func:`to_markdown`.

    ``notes`` are paragraphs added below the table (e.g. images without a mask). With ``provenance``, the Markdown ends with a provenance line and the same is written as JSON
    at ``provenance_path`` (default: beside the CSV, ``scores.csv`` -> ``scores.provenance.json``).
    """
    outs = [Path(p) for p in (csv, md, long_csv)]
    if provenance is not None:
        outs.append(Path(provenance_path) if provenance_path is not None else default_provenance_path(csv))
    with atomic_paths(outs) as tmps:  # all written before any is renamed into place
        wide = table.join(na) if na is not None else table
        wide = wide.join(counts) if counts is not None else wide
        if significance is not None and significance.available:  # p values as text, 4 significant digits (%.6f would print 0.000000)
            wide = wide.join(significance.p.apply(lambda col: col.map(lambda v: "NA" if not np.isfinite(v) else f"{v:.4g}")))
        wide.to_csv(tmps[0], na_rep="NA", float_format="%.6f")
        text = to_markdown(table, directions, title, na, significance, baselines) + "".join(f"\n{note}\n" for note in notes)
        if provenance is not None:
            text += f"\nProvenance: config hash {provenance['config_hash']}, code {', '.join(provenance['code_version'])}, seed {', '.join(map(str, provenance['seed']))}.\n"
            tmps[3].write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmps[1].write_text(text, encoding="utf-8")
        per_image.to_csv(tmps[2], index=False, na_rep="NA", float_format="%.6f")


def default_provenance_path(csv: Path) -> Path:
    """The JSON provenance beside a summary CSV (``scores.csv`` -> ``scores.provenance.json``)."""
    csv = Path(csv)
    return csv.with_name(csv.name.removesuffix(".csv") + ".provenance.json")
