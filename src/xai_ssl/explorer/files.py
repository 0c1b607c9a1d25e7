"""Building :class:`ExplorerData` from the workflow's files (pairs HDF5, attribution shards, per-image CSVs, curves HDF5)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from xai_ssl.explorer.data import ExplorerData, MethodMaps
from xai_ssl.io.hdf5 import open_h5, read_strings
from xai_ssl.io.maps_file import load_attributions
from xai_ssl.io.pairs_file import Pairs, read_pairs
from xai_ssl.io.scores_file import read_scores
from xai_ssl.pairs import to_uint8

BASELINE_METHODS = ("random_baseline", "centre_baseline", "edge_baseline")  # reference maps, shown greyed


def default_directions() -> dict[str, str]:
    """Columns and arrows of every registered metric: the paper's order first, then registry order."""
    from xai_ssl.metrics import METRIC_REGISTRY, PAPER_ORDER

    found: dict[str, str] = {}
    for spec in METRIC_REGISTRY.values():
        found.update(spec.directions)
    return {c: found[c] for c in [*[c for c in PAPER_ORDER if c in found], *[c for c in found if c not in PAPER_ORDER]]}


def base_cosines(encoder: torch.nn.Module, pairs: Pairs, families: Sequence[str], batch_size: int = 32, device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """cos(f(view 1), f(view 2)) [N] of every pair family, as the methods compute it (eps 1e-8)."""
    from xai_ssl.engine import cosine, embed_batched

    encoder = encoder.to(device).eval()
    out = {}
    for family in families:
        a, b = pairs.pair(family)  # [N, 3, S, S] each
        za, zb = embed_batched(encoder, a.to(device), batch_size), embed_batched(encoder, b.to(device), batch_size)
        out[family] = cosine(za, zb).double().cpu().numpy()
    return out


def _load_maps(name: str, paths: Sequence[Path], baselines: Collection[str]) -> tuple[MethodMaps, np.ndarray]:
    """Concatenate a method's shards; maps in pairs-file order and the pairs-file rows they cover."""
    if not paths:
        raise ValueError(f"explorer: no attribution files for method {name!r}")
    shards = [load_attributions(Path(p)) for p in paths]
    families = {str(s.attrs.get("pair_family")) for s in shards}
    if len(families) != 1:
        raise ValueError(f"explorer: the shards of method {name!r} name different pair families {sorted(families)}: {[str(p) for p in paths]}")
    if len({s.map2 is None for s in shards}) != 1:
        raise ValueError(f"explorer: some shards of method {name!r} have map2 and some do not: {[str(p) for p in paths]}")
    index = np.concatenate([np.asarray(s.indices, dtype=np.int64) for s in shards])
    order = np.argsort(index, kind="stable")
    map1 = torch.cat([s.map1 for s in shards]).numpy().astype(np.float32)[order]
    map2 = None if shards[0].map2 is None else torch.cat([s.map2 for s in shards]).numpy().astype(np.float32)[order]
    registry = str(shards[0].attrs.get("registry_method", name))
    baseline = name in baselines or registry in baselines
    return MethodMaps(families.pop(), map1, map2, baseline), index[order]


def _read_scores(method: str, paths: Sequence[Path]) -> pd.DataFrame:
    """Per-image CSVs of one method -> long rows (method, image_id, column, value); inf and text -> NA."""
    frames = []
    for path in paths:
        df = read_scores(path)
        if "image_id" not in df.columns:
            raise ValueError(f"explorer: {path} has no image_id column; is it a per-image metrics CSV?")
        values = df.drop(columns=["image_id"]).apply(pd.to_numeric, errors="coerce").astype(np.float64)
        values = values.where(np.isfinite(values.to_numpy()))
        values.insert(0, "image_id", df["image_id"])
        frames.append(values.melt(id_vars="image_id", var_name="column", value_name="value"))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["image_id", "column", "value"])
    out.insert(0, "method", method)
    return out


def _read_curves(path: Path, positions: Mapping[str, int], n: int, into: dict[str, np.ndarray]) -> None:
    """Add the curves [n_shard, T+1] of one curves HDF5 to ``into`` (name -> [N, T+1], NaN rows = absent)."""
    with open_h5(path, "curves file") as f:
        ids = read_strings(f, "image_id")
        unknown = [i for i in ids if i not in positions]
        if unknown:
            raise ValueError(f"explorer: {path} has curves of images without maps: {unknown[:3]}")
        rows = [positions[i] for i in ids]
        for name in f:
            if name == "image_id" or f[name].ndim != 2:
                continue
            c = f[name][()].astype(np.float64)
            if name not in into:
                into[name] = np.full((n, c.shape[1]), np.nan)
            if into[name].shape[1] != c.shape[1]:
                raise ValueError(f"explorer: {path}: curve {name!r} has {c.shape[1]} points, other shards {into[name].shape[1]}")
            into[name][rows] = c


def explorer_data_from_files(
    pairs_h5: Path,
    attribution_files: Mapping[str, Sequence[Path]],
    score_csvs: Mapping[str, Sequence[Path]],
    curve_files: Mapping[str, Sequence[Path]],
    base_cosine: Mapping[str, np.ndarray] | None = None,
    title: str = "xai-ssl results",
    directions: Mapping[str, str] | None = None,
    baselines: Collection[str] = BASELINE_METHODS,
    subtitle: str = "",
) -> ExplorerData:
    """Read one dataset x model's workflow outputs into :class:`ExplorerData`.

    ``attribution_files`` / ``score_csvs`` / ``curve_files``: method config name -> its shard files (any order);
    ``base_cosine``: pair family -> cos(f(view 1), f(view 2)) for every row of the pairs file (or for every
    explained image), e.g. from :func:`base_cosines`; ``directions`` default to every registered metric's.
    """
    pairs = read_pairs(Path(pairs_h5))
    methods: dict[str, MethodMaps] = {}
    rows: np.ndarray | None = None
    first = ""
    for name, paths in attribution_files.items():
        methods[name], index = _load_maps(name, paths, baselines)
        if rows is None:
            rows, first = index, name
        elif not np.array_equal(index, rows):
            raise ValueError(f"explorer: method {name!r} explains other images than {first!r} ({len(index)} vs {len(rows)} rows of {pairs_h5}); "
                             "every method of one explorer must cover the same images")
    if rows is None:
        raise ValueError("explorer: no attribution files given")
    if len(rows) and (rows.max() >= len(pairs.image_ids) or len(set(rows.tolist())) != len(rows)):
        raise ValueError(f"explorer: the attribution files index rows that {pairs_h5} does not have (or twice); were they made from another pairs file?")
    image_ids = [pairs.image_ids[i] for i in rows]
    positions = {image_id: k for k, image_id in enumerate(image_ids)}
    views = {}
    for family in dict.fromkeys(m.pair_family for m in methods.values()):
        a, b = pairs.pair(family)
        views[family] = (to_uint8(a[rows]).numpy(), to_uint8(b[rows]).numpy())
    cosines = {}
    for family, cos in (base_cosine or {}).items():
        cos = np.asarray(cos, dtype=np.float64)
        if cos.shape == (len(pairs.image_ids),):
            cos = cos[rows]
        elif cos.shape != (len(rows),):
            raise ValueError(f"explorer: base_cosine[{family!r}] has shape {list(cos.shape)}; expected one value per row of {pairs_h5} or per explained image")
        if family in views:
            cosines[family] = cos
    frames = [_read_scores(name, [Path(p) for p in paths]) for name, paths in score_csvs.items()]
    metrics = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["method", "image_id", "column", "value"])
    stray = sorted(set(metrics["image_id"]) - set(positions))
    if stray:
        raise ValueError(f"explorer: metric CSVs list images without maps: {stray[:3]}")
    curves: dict[str, dict[str, np.ndarray]] = {}
    for name, paths in curve_files.items():
        per: dict[str, np.ndarray] = {}
        for p in paths:
            _read_curves(Path(p), positions, len(image_ids), per)
        curves[name] = per
    data = ExplorerData(
        title=title,
        image_ids=image_ids,
        views=views,
        base_cosine=cosines,
        methods=methods,
        metrics=metrics,
        directions=dict(directions) if directions is not None else default_directions(),
        curves=curves,
        subtitle=subtitle,
    )
    data.validate()
    return data
