"""Scoring maps with the registered metrics: per-image table and curves (tensors in, DataFrame and arrays out)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from xai_ssl.engine import chunk_size, chunk_slices, image_seed, map_diagnostics
from xai_ssl.io.maps_file import Attributions
from xai_ssl.io.pairs_file import Pairs
from xai_ssl.methods import MethodSpec
from xai_ssl.metrics import MetricContext, MetricSpec
from xai_ssl.models.encoder import Encoder

MIN_NORM = 1e-8  # embeddings with a smaller L2 norm count as zero (cosine eps of methods.base.cosine)


def resolve_metrics(metrics: Mapping[str, dict[str, Any] | None], image_size: int) -> list[tuple[MetricSpec, dict[str, Any]]]:
    """(spec, resolved parameters) of every metric named in ``metrics`` (name -> parameters), as the config resolves them."""
    from xai_ssl.metrics import get_metric

    return [(get_metric(name), get_metric(name).resolve_params(params, image_size)) for name, params in metrics.items()]


def score_attributions(
    encoder: Encoder,
    pairs: Pairs,
    attributions: Attributions,
    pair_family: str,
    metrics: list[tuple[MetricSpec, dict[str, Any]]],
    device: torch.device,
    batch_size: int,
    progress: bool = True,
    method: MethodSpec | None = None,
    method_params: dict[str, Any] | None = None,
    method_key: str | None = None,
    seed: int = 0,
    timings: dict[str, float] | None = None,
    diagnostics: dict[str, Any] | None = None,
    corpus: Any = None,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Per-image scores (one row per image) and curves [N, T+1] of every metric.

    Bad numbers have defined outcomes, counted in ``diagnostics`` when given: a map with NaN/inf
    (scored with those values set to 0) and an image whose clean view has a zero-norm or non-finite
    embedding get NA in every column and NaN curves; any other non-finite score becomes NA
    (``nonfinite_scores`` per column). Constant maps (min = max) and maps with tied values are
    scored (ranking ties break by pixel index; constant maps as each metric documents) and counted.

    Images are scored a chunk at a time (at most ``min(batch_size, 16)`` images per metric call, as
    in the attribution step). Metrics that re-run the explained method (max-sensitivity, the
    randomisation test) get it through a :class:`MetricContext` (``method``, its resolved
    ``method_params``, its config name ``method_key`` and the config ``seed``). ``timings``, when
    given, receives the wall time of each metric in seconds.
    """
    if list(pairs.image_ids) != list(attributions.image_ids):
        raise ValueError("score_attributions: the maps and the pairs list different images")
    a, b = pairs.pair(pair_family)
    columns: dict[str, list[np.ndarray]] = {}
    curves: dict[str, list[np.ndarray]] = {}
    n = a.shape[0]
    cache: dict[Any, Any] = {}  # randomised encoders etc., shared by the chunks of this job
    bad_embedding: list[np.ndarray] = []  # [b] per chunk: a view's embedding is zero-norm or non-finite
    times = timings if timings is not None else {}
    for sl in tqdm(list(chunk_slices(n, chunk_size(batch_size))), desc="metrics", unit="chunk", disable=not progress):
        ctx = MetricContext(
            device=device,
            batch_size=batch_size,
            seeds=[image_seed(seed, i, method_key or (method.name if method else "")) for i in attributions.image_ids[sl]],
            method=method,
            method_params=dict(method_params or {}),
            method_key=method_key,
            seed=int(seed),
            image_ids=list(attributions.image_ids[sl]),
            indices=[int(i) for i in np.asarray(attributions.indices)[sl]],
            cache=cache,
            corpus=corpus,  # reference images of methods with needs_corpus (re-run by MS / RAND)
            masks=torch.from_numpy(pairs.mask1[sl]) if pairs.mask1 is not None else None,  # [b, S, S] labels of x1
            has_masks=torch.from_numpy(np.asarray(pairs.has_mask1[sl], dtype=bool)) if pairs.mask1 is not None and pairs.has_mask1 is not None else None,  # [b]
        )
        m2 = attributions.map2[sl].to(device) if attributions.map2 is not None else None
        x1, x2, m1 = a[sl].to(device), b[sl].to(device), attributions.map1[sl].to(device)
        m1 = torch.nan_to_num(m1, nan=0.0, posinf=0.0, neginf=0.0)  # flagged rows become NA below
        m2 = torch.nan_to_num(m2, nan=0.0, posinf=0.0, neginf=0.0) if m2 is not None else None
        with torch.inference_mode():
            zn = torch.stack([encoder(x1).norm(dim=1), encoder(x2).norm(dim=1)])  # [2, b]
        bad_embedding.append(((~torch.isfinite(zn)) | (zn < MIN_NORM)).any(0).cpu().numpy())
        for spec, params in metrics:
            t0 = time.perf_counter()
            scores, crv = spec.fn(encoder, x1, x2, m1, m2, params, ctx)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[spec.name] = times.get(spec.name, 0.0) + time.perf_counter() - t0
            for k, v in scores.items():
                columns.setdefault(k, []).append(np.asarray(v, dtype=np.float64))
            for k, v in crv.items():
                curves.setdefault(k, []).append(v)
    lengths = {k: sum(len(p) for p in v) for k, v in columns.items()}
    if any(length != n for length in lengths.values()):
        raise ValueError(f"score_attributions: a metric returned columns for only some chunks: {lengths}")
    table = pd.DataFrame({k: np.concatenate(v) for k, v in columns.items()})
    out_curves = {k: np.concatenate(v).astype(np.float64) for k, v in curves.items()}
    flags = map_diagnostics(attributions.map1, attributions.map2)
    zero = np.concatenate(bad_embedding) if bad_embedding else np.zeros(0, bool)
    excluded = flags["nonfinite"] | zero  # [N] images whose scores cannot be computed
    nonfinite_scores = {k: int((~np.isfinite(table[k].to_numpy()) & ~excluded & table[k].notna().to_numpy()).sum()) for k in table.columns}
    table = table.where(np.isfinite(table.to_numpy(dtype=np.float64)))  # NaN/inf -> NA
    table.loc[excluded, :] = np.nan
    for c in out_curves.values():
        c[excluded] = np.nan
    table.insert(0, "image_id", list(attributions.image_ids))
    if diagnostics is not None:
        without_mask = int((~np.asarray(pairs.has_mask1, dtype=bool)).sum()) if pairs.mask1 is not None and pairs.has_mask1 is not None else 0
        if without_mask:  # a dataset with masks, some images lacking theirs (localisation NA for those)
            diagnostics["images_without_mask"] = without_mask
        diagnostics.update(
            n_images=int(n),
            nonfinite_maps=int(flags["nonfinite"].sum()),
            zero_norm_embeddings=int(zero.sum()),
            excluded_images=int(excluded.sum()),
            constant_maps=int(flags["constant"].sum()),
            maps_with_ties=int(flags["ties"].sum()),
            nonfinite_scores={k: v for k, v in nonfinite_scores.items() if v},
            nonfinite_curves={k: int((~np.isfinite(c[~excluded])).any(1).sum()) for k, c in out_curves.items() if (~np.isfinite(c[~excluded])).any()},
        )
    return table, out_curves
