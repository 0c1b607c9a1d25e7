"""ExplorerData -> the JSON-able object the page reads: PNG data URIs, 8-bit maps, means, ranks, curves."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from xai_ssl.explorer.data import ExplorerData

FORMAT = "xai_ssl.explorer/1"
CURVE_ORDER = ("SI", "SD", "CI_1", "CI_2", "CD_1", "CD_2")  # names of metrics/insertion_deletion.py's curves
CURVE_DECIMALS = 5  # curves are drawn, not recomputed: 1e-5 is far below a pixel


def png_data_uri(pixels: np.ndarray) -> str:
    """uint8 [H, W] (grey) or [H, W, 3] (RGB) -> ``data:image/png;base64,...`` (deterministic bytes)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", optimize=False, compress_level=9)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def quantise_map(m: np.ndarray) -> tuple[np.ndarray, float, float, int]:
    """Raw map [h, w] -> (uint8 [h, w], lo, hi, non-finite count); value = lo + q / 255 * (hi - lo).

    lo/hi are the min/max of the finite values; non-finite pixels and constant maps (hi = lo) get q = 0.
    """
    m = np.asarray(m, dtype=np.float64)
    finite = np.isfinite(m)
    if not finite.any():
        return np.zeros(m.shape, np.uint8), math.nan, math.nan, int(m.size)
    lo, hi = float(m[finite].min()), float(m[finite].max())
    q = np.zeros(m.shape, np.uint8)
    if hi > lo:
        q[finite] = np.clip(np.round((m[finite] - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)
    return q, lo, hi, int((~finite).sum())


def _num(x: Any) -> float | None:
    """A finite float, or None (JSON null = NA)."""
    x = float(x)
    return x if math.isfinite(x) else None


def ranks_by_direction(values: np.ndarray, direction: str) -> np.ndarray:
    """Competition rank [N] among the finite values, 1 = best (largest for ↑, smallest for ↓); 0 = NA.

    Ties share the best rank of their group (1, 2, 2, 4).
    """
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    out = np.zeros(len(v), np.int64)
    sign = 1.0 if direction == "↑" else -1.0
    s = sign * v[ok]  # larger = better
    ordered = np.sort(s)
    out[ok] = 1 + len(s) - np.searchsorted(ordered, s, side="right")  # 1 + number of strictly better images
    return out


def _views(data: ExplorerData, families: list[str], pngs: dict[str, str]) -> dict[str, Any]:
    """Views of each family as keys into ``pngs`` (identical images, e.g. x1 of both families, stored once)."""
    seen: dict[str, str] = {}
    out = {}
    for family in families:
        keys = []
        for i in range(len(data.image_ids)):
            pair = []
            for v in data.views[family]:
                uri = png_data_uri(np.asarray(v[i]).transpose(1, 2, 0))
                if uri not in seen:
                    seen[uri] = f"v{len(seen)}"
                    pngs[seen[uri]] = uri
                pair.append(seen[uri])
            keys.append(pair)
        cos = data.base_cosine.get(family)
        out[family] = {"views": keys, "base_cosine": None if cos is None else [_num(c) for c in np.asarray(cos)]}
    return out


def _map_entry(m: np.ndarray) -> dict[str, Any]:
    q, lo, hi, bad = quantise_map(m)
    return {"png": png_data_uri(q), "lo": _num(lo), "hi": _num(hi), "h": int(q.shape[0]), "w": int(q.shape[1]), "nonfinite": bad}


def _columns(data: ExplorerData) -> list[dict[str, Any]]:
    """Metric columns present in ``data.metrics``: the ``directions`` order first, then the others as they appear."""
    present = list(dict.fromkeys(data.metrics["column"].astype(str)))
    order = [c for c in data.directions if c in present] + [c for c in present if c not in data.directions]
    return [{"name": c, "direction": data.directions.get(c)} for c in order]


def _metrics(data: ExplorerData, columns: list[dict[str, Any]]) -> dict[str, Any]:
    """method -> column -> {values [N], ranks [N] (0 = NA or no direction), mean, n} over the finite values."""
    pos = {image_id: i for i, image_id in enumerate(data.image_ids)}
    n = len(data.image_ids)
    out: dict[str, Any] = {}
    df = data.metrics.astype({"method": str, "column": str, "image_id": str})
    groups = dict(list(df.groupby(["method", "column"], sort=False)))  # (method, column) -> rows, one pass
    for method in data.methods:
        per: dict[str, Any] = {}
        for col in columns:
            rows = groups.get((method, col["name"]))
            if rows is None:
                continue
            v = np.full(n, np.nan)
            idx = [pos[i] for i in rows["image_id"]]
            v[idx] = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=np.float64)
            ok = np.isfinite(v)
            ranks = ranks_by_direction(v, col["direction"]) if col["direction"] else np.zeros(n, np.int64)
            per[col["name"]] = {
                "values": [_num(x) for x in v],
                "ranks": [int(r) for r in ranks],
                "mean": _num(v[ok].mean()) if ok.any() else None,
                "n": int(ok.sum()),
            }
        out[method] = per
    return out


def _curves(data: ExplorerData) -> tuple[list[str], dict[str, Any]]:
    """Curve names (insertion/deletion order first) and method -> name -> {values [N][T+1] | null rows, mean}."""
    names = list(dict.fromkeys(k for per in data.curves.values() for k in per))
    names = [c for c in CURVE_ORDER if c in names] + [c for c in names if c not in CURVE_ORDER]
    out: dict[str, Any] = {}
    for method, per in data.curves.items():
        out[method] = {}
        for name, c in per.items():
            c = np.asarray(c, dtype=np.float64)
            ok = np.isfinite(c).all(1)
            rows = [[round(float(x), CURVE_DECIMALS) for x in row] if good else None for row, good in zip(c, ok)]
            mean = [round(float(x), CURVE_DECIMALS) for x in c[ok].mean(0)] if ok.any() else None
            out[method][name] = {"values": rows, "mean": mean}
    return names, out


def build_payload(data: ExplorerData) -> dict[str, Any]:
    """The whole page content as one JSON-able dict (format ``xai_ssl.explorer/1``)."""
    data.validate()
    families = list(dict.fromkeys(m.pair_family for m in data.methods.values()))
    pngs: dict[str, str] = {}
    views = _views(data, families, pngs)
    methods = []
    for name, m in data.methods.items():
        maps = []
        for i in range(len(data.image_ids)):
            m1 = _map_entry(np.asarray(m.map1[i]))
            m2 = _map_entry(np.asarray(m.map2[i])) if m.map2 is not None else None
            maps.append([m1, m2])
        methods.append({"name": name, "family": m.pair_family, "baseline": bool(m.is_baseline), "maps": maps})
    columns = _columns(data)
    curve_names, curves = _curves(data)
    return {
        "format": FORMAT,
        "title": data.title,
        "subtitle": data.subtitle,
        "images": list(data.image_ids),
        "families": views,
        "pngs": pngs,
        "methods": methods,
        "columns": columns,
        "metrics": _metrics(data, columns),
        "curve_names": curve_names,
        "curves": curves,
    }
