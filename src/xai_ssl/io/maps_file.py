"""Attribution files (one per dataset x model x method x shard) and dreamed-image files (feature visualisation).

Attribution HDF5: ``image_id`` [N] str, ``index`` [N] int (position in the pairs file), ``map1`` float32
[N, h, w] (explanation of the first view), ``map2`` float32 [N, h, w] (second view; absent for single-map
methods), ``extra/<name>`` float32 [N, ...] (per-image arrays a method adds through ``MethodContext.extras``,
e.g. ``extra/heads`` [N, heads, h, w] of vit_attention; absent for most methods); attributes: method, registry_method, pair_family, params (JSON), seed, shard, n_shards,
wall_time_s, versions and device.

Dreamed-image HDF5: ``image_id`` [N], ``index`` [N], ``image`` float32 [N, 3, H, W] (dreamed images),
``detail`` float32 [N, 3, H, W] (dreamed - initial noise); provenance attributes as attribution files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xai_ssl.io.hdf5 import atomic_h5, get_json_attr, open_h5, read_strings, set_attrs, write_strings


@dataclass
class Attributions:
    """Maps of one method for a set of images."""

    image_ids: list[str]
    indices: np.ndarray  # [N]
    map1: torch.Tensor  # [N, h, w]
    map2: torch.Tensor | None  # [N, h, w]
    attrs: dict[str, Any]


def save_attributions(
    path: Path | str, image_ids: list[str], indices: np.ndarray, map1: torch.Tensor, map2: torch.Tensor | None, attrs: dict[str, Any],
    extras: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write maps, the method's extra arrays (``extra/<name>``) and provenance atomically (temporary file, then rename)."""
    with atomic_h5(path) as f:
        write_strings(f, "image_id", list(image_ids))
        f.create_dataset("index", data=np.asarray(indices, dtype=np.int64))
        f.create_dataset("map1", data=map1.numpy().astype(np.float32))
        if map2 is not None:
            f.create_dataset("map2", data=map2.numpy().astype(np.float32))
        for name, value in (extras or {}).items():
            if value.shape[0] != len(image_ids):
                raise ValueError(f"{path}: extra array {name!r} has {value.shape[0]} rows for {len(image_ids)} images")
            f.create_dataset(f"extra/{name}", data=value.numpy().astype(np.float32))
        set_attrs(f, attrs)


def load_extra(path: Path | str, name: str) -> torch.Tensor | None:
    """The extra array ``extra/<name>`` [N, ...] of an attribution file (None when the method stored none)."""
    with open_h5(path, "attribution file") as f:
        return torch.from_numpy(f[f"extra/{name}"][()]) if f"extra/{name}" in f else None


def load_attributions(path: Path | str) -> Attributions:
    """Read a file written by :func:`save_attributions`."""
    with open_h5(path, "attribution file") as f:
        attrs = {k: (get_json_attr(f, k) if k in ("params",) else f.attrs[k]) for k in f.attrs}
        map2 = torch.from_numpy(f["map2"][()]) if "map2" in f else None
        return Attributions(read_strings(f, "image_id"), f["index"][()], torch.from_numpy(f["map1"][()]), map2, attrs)


def load_attribution_shards(paths: list[Path]) -> Attributions:
    """The shards of one method concatenated in order (attributes of the first shard)."""
    parts = [load_attributions(p) for p in paths]
    map2 = torch.cat([p.map2 for p in parts]) if parts[0].map2 is not None else None
    return Attributions(
        [i for p in parts for i in p.image_ids], np.concatenate([p.indices for p in parts]), torch.cat([p.map1 for p in parts]), map2, parts[0].attrs
    )


@dataclass
class DreamedImages:
    """Images of an image method (feature visualisation) and their details."""

    image_ids: list[str]
    indices: np.ndarray  # [N]
    image: torch.Tensor  # [N, 3, H, W]
    detail: torch.Tensor  # [N, 3, H, W]
    attrs: dict[str, Any]


def save_dreamed(path: Path | str, images: DreamedImages) -> None:
    """Write dreamed images, details and provenance atomically."""
    with atomic_h5(path) as f:
        write_strings(f, "image_id", list(images.image_ids))
        f.create_dataset("index", data=np.asarray(images.indices, dtype=np.int64))
        f.create_dataset("image", data=images.image.numpy().astype(np.float32))
        f.create_dataset("detail", data=images.detail.numpy().astype(np.float32))
        set_attrs(f, images.attrs)


def load_dreamed(path: Path | str) -> DreamedImages:
    """Read a file written by :func:`save_dreamed`."""
    with open_h5(path, "feature visualisation file") as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
        return DreamedImages(
            read_strings(f, "image_id"), f["index"][()], torch.from_numpy(f["image"][()]), torch.from_numpy(f["detail"][()]), attrs
        )
