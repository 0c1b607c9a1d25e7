"""Scoring stored maps with the registered metrics: per-image table and curves."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from xai_ssl.attribution import Attributions
from xai_ssl.h5io import atomic_h5, set_attrs, write_strings
from xai_ssl.methods import MethodSpec
from xai_ssl.metrics import MetricContext, MetricSpec
from xai_ssl.models.encoder import Encoder
from xai_ssl.pairs import Pairs
from xai_ssl.seeding import derive_seed


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
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Per-image scores (one row per image) and curves [N, T+1] of every metric.

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
    chunk = max(1, min(batch_size, 16))
    cache: dict[Any, Any] = {}  # randomised encoders etc., shared by the chunks of this job
    times = timings if timings is not None else {}
    for start in tqdm(range(0, n, chunk), desc="metrics", unit="chunk", disable=not progress):
        sl = slice(start, min(n, start + chunk))
        ctx = MetricContext(
            device=device,
            batch_size=batch_size,
            seeds=[derive_seed(seed, i, method_key or (method.name if method else "")) for i in attributions.image_ids[sl]],
            method=method,
            method_params=dict(method_params or {}),
            method_key=method_key,
            seed=int(seed),
            image_ids=list(attributions.image_ids[sl]),
            indices=[int(i) for i in np.asarray(attributions.indices)[sl]],
            cache=cache,
        )
        m2 = attributions.map2[sl].to(device) if attributions.map2 is not None else None
        x1, x2, m1 = a[sl].to(device), b[sl].to(device), attributions.map1[sl].to(device)
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
    table.insert(0, "image_id", list(attributions.image_ids))
    return table, {k: np.concatenate(v) for k, v in curves.items()}


def save_scores(table: pd.DataFrame, curves: dict[str, np.ndarray], csv_path: Path, curves_path: Path, attrs: dict[str, Any]) -> None:
    """Write the per-image CSV (NA for not applicable) and the curves HDF5, each atomically."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    table.to_csv(tmp, index=False, na_rep="NA", float_format="%.6f")
    tmp.replace(csv_path)
    with atomic_h5(curves_path) as f:
        write_strings(f, "image_id", list(table["image_id"]))
        for name, c in curves.items():
            f.create_dataset(name, data=c.astype(np.float32))
        set_attrs(f, attrs)
