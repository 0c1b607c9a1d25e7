"""Scoring stored maps with the registered metrics: per-image table and curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from xai_ssl.attribution import Attributions
from xai_ssl.h5io import atomic_h5, set_attrs, write_strings
from xai_ssl.methods import MethodContext
from xai_ssl.metrics import MetricSpec
from xai_ssl.models.encoder import Encoder
from xai_ssl.pairs import Pairs


def score_attributions(
    encoder: Encoder,
    pairs: Pairs,
    attributions: Attributions,
    pair_family: str,
    metrics: list[tuple[MetricSpec, dict[str, Any]]],
    device: torch.device,
    batch_size: int,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Per-image scores (one row per image) and curves [N, T+1] of every metric."""
    if list(pairs.image_ids) != list(attributions.image_ids):
        raise ValueError("score_attributions: the maps and the pairs list different images")
    a, b = pairs.pair(pair_family)
    columns: dict[str, list[np.ndarray]] = {}
    curves: dict[str, list[np.ndarray]] = {}
    ctx = MethodContext(device=device, batch_size=batch_size)
    for i in tqdm(range(a.shape[0]), desc="metrics", unit="img", disable=not progress):
        sl = slice(i, i + 1)
        m2 = attributions.map2[sl].to(device) if attributions.map2 is not None else None
        for spec, params in metrics:
            scores, crv = spec.fn(encoder, a[sl].to(device), b[sl].to(device), attributions.map1[sl].to(device), m2, params, ctx)
            for k, v in scores.items():
                columns.setdefault(k, []).append(v)
            for k, v in crv.items():
                curves.setdefault(k, []).append(v)
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
