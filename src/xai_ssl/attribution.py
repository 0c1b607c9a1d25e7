"""Computing a method's maps for a set of pairs and storing them as one HDF5 file.

HDF5 layout (one file per dataset x model x method x shard):
``image_id`` [N] str, ``index`` [N] int (position in the pairs file), ``map1`` float32 [N, h, w]
(explanation of the first view), ``map2`` float32 [N, h, w] (second view; absent for
single-map methods), ``extra/<name>`` float32 [N, ...] (per-image arrays a method adds through
``MethodContext.extras``, e.g. ``extra/heads`` [N, heads, h, w] of vit_attention); attributes: method, registry_method, pair_family, params (JSON), seed,
shard, n_shards, wall_time_s, versions and device.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from tqdm import tqdm

from xai_ssl.h5io import atomic_h5, get_json_attr, read_strings, set_attrs, write_strings
from xai_ssl.methods import MethodContext, MethodSpec
from xai_ssl.models.encoder import Encoder
from xai_ssl.pairs import Pairs
from xai_ssl.seeding import derive_seed


@dataclass
class Attributions:
    """Maps of one method for a set of images."""

    image_ids: list[str]
    indices: np.ndarray  # [N]
    map1: torch.Tensor  # [N, h, w]
    map2: torch.Tensor | None  # [N, h, w]
    attrs: dict[str, Any]


def compute_attributions(
    encoder: Encoder,
    pairs: Pairs,
    spec: MethodSpec,
    params: dict[str, Any],
    seed: int,
    device: torch.device,
    batch_size: int,
    method_key: str | None = None,
    progress: bool = True,
    corpus: Any = None,
    extras: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``spec`` on every pair of its family, a chunk of images at a time; maps on the CPU [N, h, w].

    ``corpus`` (xai_ssl.corpus.Corpus) is the reference images of methods registered with needs_corpus.
    ``extras``, when given, receives the per-image arrays the method put in ``ctx.extras`` (concatenated).
    """
    a, b = pairs.pair(spec.pair_family)
    n = a.shape[0]
    chunk = max(1, min(batch_size, 16))
    maps1, maps2 = [], []
    found: dict[str, list[torch.Tensor]] = {}
    key = method_key or spec.name
    for start in tqdm(range(0, n, chunk), desc=f"attribution {key}", unit="chunk", disable=not progress):
        ids = pairs.image_ids[start : start + chunk]
        ctx = MethodContext(device=device, batch_size=batch_size, seeds=[derive_seed(seed, i, key) for i in ids], image_ids=list(ids), corpus=corpus)
        m1, m2 = spec.fn(encoder, a[start : start + chunk].to(device), b[start : start + chunk].to(device), params, ctx)
        maps1.append(m1.detach().float().cpu())
        if m2 is not None:
            maps2.append(m2.detach().float().cpu())
        for name, value in ctx.extras.items():
            found.setdefault(name, []).append(value.detach().float().cpu())
    if extras is not None:
        extras.update({name: torch.cat(parts) for name, parts in found.items()})
    return torch.cat(maps1), (torch.cat(maps2) if maps2 else None)


def save_attributions(
    path: Path, image_ids: list[str], indices: np.ndarray, map1: torch.Tensor, map2: torch.Tensor | None, attrs: dict[str, Any],
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
            f.create_dataset(f"extra/{name}", data=value.numpy().astype(np.float32))
        set_attrs(f, attrs)


def load_attributions(path: Path) -> Attributions:
    """Read a file written by :func:`save_attributions`."""
    with h5py.File(path, "r") as f:
        attrs = {k: (get_json_attr(f, k) if k in ("params",) else f.attrs[k]) for k in f.attrs}
        map2 = torch.from_numpy(f["map2"][()]) if "map2" in f else None
        return Attributions(read_strings(f, "image_id"), f["index"][()], torch.from_numpy(f["map1"][()]), map2, attrs)


def load_extra(path: Path, name: str) -> torch.Tensor | None:
    """The extra array ``extra/<name>`` of an attribution file (None when the method stored none)."""
    with h5py.File(path, "r") as f:
        return torch.from_numpy(f[f"extra/{name}"][()]) if f"extra/{name}" in f else None


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Call ``fn`` and return (result, seconds), synchronising CUDA so the time is real."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0
