"""Fake ExplorerData for the explorer tests: every kind of map, NA values, curves, a baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xai_ssl.explorer import ExplorerData, MethodMaps

DIRECTIONS = {"SI": "↑", "SD": "↓", "CI": "↑", "CD": "↓", "SAD": "↓", "SIC": "↑", "CAD": "↓", "CID": "↑", "MS": "↓", "RAND": "↓"}
EXTRA_COLUMNS = ("CI_1", "CI_2", "CD_1", "CD_2", "CAD_1", "CAD_2", "CID_1", "CID_2", "ADI_B", "ADI_M_S", "ADI_M_1", "ADI_M_2", "MS_1", "MS_2", "RAND_L1", "RAND_L2")
CURVES = ("SI", "SD", "CI_1", "CI_2", "CD_1", "CD_2")


def fake_views(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Smooth colourful images uint8 [n, 3, size, size] (compress like real renders, not like noise)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, 3, size, size), np.uint8)
    for i in range(n):
        f = rng.uniform(1, 4, size=(3, 2))
        ph = rng.uniform(0, 6.3, size=3)
        for c in range(3):
            out[i, c] = np.round(127.5 + 127.5 * np.sin(f[c, 0] * 3 * xx + f[c, 1] * 2 * yy + ph[c])).astype(np.uint8)
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
        out[i, :, max(0, cy - 5) : cy + 5, max(0, cx - 5) : cx + 5] = rng.integers(0, 255, (3, 1, 1))
    return out


def fake_data(n_images: int = 6, n_methods: int = 5, size: int = 48, seed: int = 0, noise_maps: bool = False, extra_columns: bool = True) -> ExplorerData:
    """An ExplorerData with maps of several shapes and signs, NA metric values, NaN curve rows and a baseline.

    ``noise_maps``: every map is [size, size] uniform noise (the largest PNGs: the size bound's worst case).
    """
    rng = np.random.default_rng(seed)
    ids = [f"img-{i:03d}-{rng.integers(1e6):06d}" for i in range(n_images)]
    x1, x2, xt = (fake_views(rng, n_images, size) for _ in range(3))
    views = {"crop_aug": (x1, x2), "interpolation": (x1, xt)}
    base = {"crop_aug": rng.uniform(0.2, 0.95, n_images), "interpolation": rng.uniform(0.6, 0.99, n_images)}
    shapes = [(6, 6), (18, 18), (size, size), (3, 3)]
    methods: dict[str, MethodMaps] = {}
    for k in range(n_methods):
        baseline = k == n_methods - 1 and n_methods > 1
        name = "random_baseline" if baseline else f"method_{k}"
        h, w = (size, size) if noise_maps else shapes[k % len(shapes)]
        family = "interpolation" if k % 3 == 2 else "crop_aug"
        signed = k % 2 == 1
        m1 = rng.uniform(-1 if signed else 0, 1, (n_images, h, w)).astype(np.float32) * np.float32(10.0 ** (k % 3 - 1))
        m2 = None if k % 4 == 3 else rng.uniform(-0.5 if signed else 0, 2, (n_images, h, w)).astype(np.float32)
        methods[name] = MethodMaps(family, m1, m2, baseline)
    first = next(iter(methods.values()))
    first.map1[0] = 0.25  # a constant map
    if n_images > 1:
        first.map1[1, 0, 0] = np.nan  # a map with a non-finite pixel
    cols = list(DIRECTIONS) + (list(EXTRA_COLUMNS) if extra_columns else [])
    rows = []
    for name, m in methods.items():
        for i, image_id in enumerate(ids):
            for c in cols:
                v = float(rng.normal(0.5, 0.2))
                if c in ("SI", "SD", "SAD", "SIC") and m.map2 is None:
                    v = np.nan  # single-map methods have no simultaneous metrics
                elif c == "SIC":
                    v = float(rng.integers(0, 2))  # an indicator: many ties
                elif rng.uniform() < 0.1:
                    v = np.nan
                rows.append((name, image_id, c, v))
    metrics = pd.DataFrame(rows, columns=["method", "image_id", "column", "value"])
    t1 = size + 1
    curves = {}
    for name, m in methods.items():
        names = CURVES if m.map2 is not None else CURVES[2:]
        per = {}
        for c in names:
            steps = np.cumsum(rng.normal(0, 0.03, (n_images, t1)), axis=1) + rng.uniform(0.2, 0.9, (n_images, 1))
            per[c] = steps
        per[names[-1]][n_images - 1] = np.nan  # an excluded image
        curves[name] = per
    return ExplorerData(
        title="fake dataset · fake model",
        image_ids=ids,
        views=views,
        base_cosine=base,
        methods=methods,
        metrics=metrics,
        directions=dict(DIRECTIONS),
        curves=curves,
        subtitle="test data",
    )
