"""Stage ``evaluation`` (rules/evaluation.smk): score each shard of maps, aggregate the tables, compare with the paper."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from xai_ssl.io.scores_file import read_curves_attrs
from xai_ssl.method_roles import BASELINE, baselines_last, default_families
from xai_ssl.provenance import config_hash
from xai_ssl.reference import write_comparison
from xai_ssl.significance import significance_table
from xai_ssl.tables import diagnostic_counts, na_counts, read_per_image, summary_table, table_provenance, write_tables

log = logging.getLogger(__name__)


def compute_metrics(
    pairs: str,
    encoder: str,
    maps: str,
    scores: str,
    curves: str,
    metrics: dict[str, dict[str, Any]],
    device: str,
    batch_size: int | str,
    dataset: str,
    model: str,
    index: str | None = None,
    speed: dict[str, Any] | None = None,
    torch_threads: int | None = None,
    progress: bool = True,
) -> None:
    """Score one shard of maps with the configured metrics; per-image CSV and curves HDF5.

    The explained method, its resolved parameters, its config name and the seed come from the
    attribution file's attributes (metrics such as max-sensitivity re-run the method with them; corpus
    methods get the same reference images as in the attribution step, from the dataset index ``index``).
    The resolved parameters of every metric, the method's parameters, each metric's wall time and the
    NA counts per column are written into the curves HDF5 attributes.
    """
    from xai_ssl.data.corpus import corpus_for
    from xai_ssl.io.maps_file import load_attributions
    from xai_ssl.io.pairs_file import read_pairs
    from xai_ssl.io.scores_file import save_scores
    from xai_ssl.methods import get_method
    from xai_ssl.scoring import resolve_metrics, score_attributions
    from xai_ssl.stages.inference import job_provenance, load_for_inference, resolve_batch_size
    from xai_ssl.stages.job import log_diagnostics

    net, torch_device, _ = load_for_inference(encoder, device, speed, torch_threads)
    attributions = load_attributions(maps)
    data = read_pairs(pairs, attributions.indices)
    size = data.x1.shape[-1]
    batch = resolve_batch_size(batch_size, net, size, torch_device)
    specs = resolve_metrics(metrics, size)
    aattrs = attributions.attrs
    method_key = str(aattrs["method"])
    method_spec = get_method(str(aattrs.get("registry_method", method_key)))
    method_params = dict(aattrs.get("params") or {})
    seed = int(aattrs.get("seed", 0))
    corpus = corpus_for(method_spec.needs_corpus, method_params, index, data.attrs, seed)
    timings: dict[str, float] = {}
    diagnostics: dict[str, Any] = {}
    t0 = time.perf_counter()
    table, curve_arrays = score_attributions(
        net, data, attributions, str(aattrs["pair_family"]), specs, torch_device, batch, progress,
        method=method_spec, method_params=method_params, method_key=method_key, seed=seed, timings=timings,
        diagnostics=diagnostics, corpus=corpus,
    )
    wall = time.perf_counter() - t0
    na = {c: int(table[c].isna().sum()) for c in table.columns if c != "image_id"}
    attrs = {
        "metrics": {s.name: p for s, p in specs},
        "method": method_key,
        "registry_method": method_spec.name,
        "method_params": method_params,
        "seed": seed,
        "wall_time_s": wall,
        "metric_wall_time_s": timings,
        "na_counts": na,
        "diagnostics": diagnostics,
        "config_hash": config_hash({"metrics": {s.name: p for s, p in specs}, "attributions": str(aattrs.get("config_hash", ""))}),
        "batch_size": batch,
        **job_provenance(torch_device, torch_threads, dataset=dataset, model=model),
    }
    save_scores(table, curve_arrays, scores, curves, attrs)
    for name, sec in timings.items():
        log.info("%s: %s in %.2f s", method_key, name, sec)
    log_diagnostics(method_key, diagnostics)
    partial = {c: k for c, k in na.items() if 0 < k}
    if partial:
        log.info("NA values per column: %s", partial)
    log.info("scored %d images in %.2f s", len(table), wall)


def aggregate_tables(
    scores: Sequence[str],
    curves: Sequence[str],
    csv: str,
    md: str,
    long: str,
    provenance: str,
    methods: Sequence[str],
    directions: dict[str, str],
    title: str,
    families: dict[str, str] | None = None,
    pair_families: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Merge per-image scores of all methods (and shards) into the summary table and a long CSV.

    ``scores[i]`` and ``curves[i]`` are one shard of method ``methods[i]``. Summary: mean over images per
    method and column (``<col>_median`` columns: the median of ``<col>``), methods in config order with the
    baselines last (``families``: family by config name, ``Plan.method_families``; None = the baselines by their
    registry names), columns in ``directions`` order (``metrics.metric_directions``: the paper's order); the CSV also
    carries ``n_images``, ``na_<col>`` (images without a value) and ``p_<col>`` (Holm-adjusted p against
    ``random_baseline``, :mod:`xai_ssl.significance`), the Markdown notes partial NA counts and marks the means
    not distinguishable from random (only methods on the reference's view pairs, ``pair_families``: pair family by
    config name, ``Plan.method_pair_families``); ``provenance`` (JSON beside the CSV) the hashes of its inputs.
    """
    if not len(scores) == len(curves) == len(methods):
        raise ValueError("aggregate_tables: one scores file, one curves file and one method name per shard")
    per_image = read_per_image([Path(p) for p in scores], list(methods))
    families = default_families(list(dict.fromkeys(methods))) if families is None else families
    order = baselines_last(list(methods), families)
    table = summary_table(per_image, directions, order)
    shard_attrs = [read_curves_attrs(p) for p in curves]
    counts = diagnostic_counts(shard_attrs, list(methods), order)
    for method, row in counts.iterrows():
        if row.any():
            log.info("%s: bad-number counts %s", method, {k: int(v) for k, v in row.items() if v})
    record = table_provenance(shard_attrs, [Path(p) for p in scores], list(methods))
    significance = significance_table(per_image, [c for c in directions if c in per_image.columns], order, pair_families=pair_families)
    write_tables(table, per_image, directions, Path(csv), Path(md), Path(long), title,
                 na=na_counts(per_image, directions, order), counts=counts, provenance=record, provenance_path=Path(provenance),
                 significance=significance, baselines=[m for m in order if families.get(m) == BASELINE],
                 notes=mask_notes(shard_attrs, list(methods), directions))
    return table


def mask_notes(shard_attrs: Sequence[dict[str, Any]], methods: Sequence[str], directions: dict[str, str]) -> list[str]:
    """A note below the table when some explained images of a dataset with masks have none (their localisation is NA)."""
    if not methods or not any(c.startswith(("PG_", "TKI_", "RRA_", "RMA_")) for c in directions):
        return []
    first = methods[0]  # every method explains the same images
    missing = sum(int(a.get("diagnostics", {}).get("images_without_mask", 0)) for a, m in zip(shard_attrs, methods) if m == first)
    if not missing:
        return []
    log.warning("%d explained image(s) have no mask: their localisation columns are NA (see the make_pairs log)", missing)
    return [f"Localisation (PG, TKI, RRA, RMA): {missing} explained image(s) have no mask; their cells are NA and the means skip them (listed in the make_pairs log)."]


def compare_reference(scores: str, reference: str, csv: str, md: str, reference_model: str, title: str) -> pd.DataFrame:
    """Per-cell difference (ours − reference) of a scores table and the reference CSV; CSV + Markdown."""
    long = write_comparison(Path(scores), Path(reference), reference_model, Path(csv), Path(md), title)
    log.info("compared %d of %d cells with %s", int(long["difference"].notna().sum()), len(long), reference_model)
    return long
