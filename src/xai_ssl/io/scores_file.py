"""Per-image scores (``shard-<k>.csv``) and curves (``shard-<k>.curves.h5``) of one metric job.

CSV: ``image_id`` then one column per metric value, NA where a value is not applicable. Curves HDF5:
``image_id`` [N] and one float32 [N, T+1] dataset per curve (SI, SD, CI, CD, ...); attributes: the
metrics' resolved parameters, the method and its parameters, wall times, NA counts, diagnostics,
config hash, code version, seed, versions and device.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xai_ssl.io.atomic import atomic_path
from xai_ssl.io.hdf5 import atomic_h5, get_json_attr, open_h5, set_attrs, write_strings
from xai_ssl.io.tables_file import read_csv_output


def save_scores(table: pd.DataFrame, curves: dict[str, np.ndarray], csv_path: Path | str, curves_path: Path | str, attrs: dict[str, Any]) -> None:
    """Write the per-image CSV (NA for not applicable) and the curves HDF5, each atomically."""
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, na_rep="NA", float_format="%.6f")
    with atomic_h5(curves_path) as f:
        write_strings(f, "image_id", list(table["image_id"]))
        for name, c in curves.items():
            f.create_dataset(name, data=c.astype(np.float32))
        set_attrs(f, attrs)


def read_scores(path: Path | str) -> pd.DataFrame:
    """A per-image CSV as written by :func:`save_scores` (NA -> NaN, ids as strings); a damaged one is named."""
    return read_csv_output(path, "per-image scores file", ["image_id"], na_values=["NA"], keep_default_na=False, dtype={"image_id": str})


def read_curves(paths: Sequence[Path | str]) -> dict[str, np.ndarray]:
    """The curves of one method's shards, concatenated in order: name -> [N, T+1]."""
    merged: dict[str, list[np.ndarray]] = {}
    for path in paths:
        with open_h5(path, "curves file") as f:
            for k in f:
                if k != "image_id":
                    merged.setdefault(k, []).append(f[k][()])
    return {k: np.concatenate(v) for k, v in merged.items()}


def read_curves_attrs(path: Path | str) -> dict[str, Any]:
    """Provenance and bad-number counts of one metric shard (attributes of its curves HDF5)."""
    with open_h5(path, "curves file") as f:
        out = {k: f.attrs[k] for k in ("config_hash", "code_version", "seed") if k in f.attrs}
        out["diagnostics"] = get_json_attr(f, "diagnostics") if "diagnostics" in f.attrs else {}
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in out.items()}
