"""What the results explorer shows: an in-memory dataclass, independent of the workflow's files."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DIRECTIONS = ("↑", "↓")
METRIC_COLUMNS = ("method", "image_id", "column", "value")


@dataclass
class MethodMaps:
    """The raw maps of one method for every image of the explorer."""

    pair_family: str  # the views it explains: a key of ExplorerData.views ("crop_aug", "interpolation")
    map1: np.ndarray  # [N, h, w] float32, raw (not normalised), native resolution, map of view 1
    map2: np.ndarray | None = None  # [N, h2, w2] float32 map of view 2; None for single-map methods
    is_baseline: bool = False  # a reference method (random, centre, edge): shown apart, greyed


@dataclass
class ExplorerData:
    """Everything one explorer page (one dataset x model) shows; see docs/explorer.md for the contract."""

    title: str
    image_ids: list[str]  # [N] explained images, in display (index) order
    views: dict[str, tuple[np.ndarray, np.ndarray]]  # family -> (view 1, view 2), each uint8 [N, 3, S, S]
    base_cosine: dict[str, np.ndarray]  # family -> float [N]: cos(f(view 1), f(view 2)); NaN = unknown
    methods: dict[str, MethodMaps]  # method name -> maps; dict order = display order
    metrics: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(METRIC_COLUMNS)))  # long: method, image_id, column, value (NaN = NA)
    directions: dict[str, str] = field(default_factory=dict)  # column -> "↑" (higher is better) / "↓"; order = table order
    curves: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # method -> curve name (SI, SD, CI_1, ...) -> [N, T+1] float
    subtitle: str = ""  # one line under the title (config hash, code version, ...)

    def validate(self) -> None:
        """Raise ValueError naming the first field whose shape, dtype or keys do not fit the contract."""
        n = len(self.image_ids)
        if n == 0:
            raise ValueError("ExplorerData.image_ids: no images to show")
        if len(set(self.image_ids)) != n:
            raise ValueError("ExplorerData.image_ids: image ids must be unique")
        if not self.methods:
            raise ValueError("ExplorerData.methods: no methods to show")
        for family, pair in self.views.items():
            if len(pair) != 2:
                raise ValueError(f"ExplorerData.views[{family!r}]: expected (view 1, view 2)")
            for k, v in enumerate(pair, 1):
                v = np.asarray(v)
                if v.dtype != np.uint8 or v.ndim != 4 or v.shape[0] != n or v.shape[1] != 3:
                    raise ValueError(f"ExplorerData.views[{family!r}][{k - 1}]: expected uint8 [N={n}, 3, S, S], got {v.dtype} {list(v.shape)}")
        for family, cos in self.base_cosine.items():
            if family not in self.views:
                raise ValueError(f"ExplorerData.base_cosine[{family!r}]: no views of that family")
            if np.asarray(cos).shape != (n,):
                raise ValueError(f"ExplorerData.base_cosine[{family!r}]: expected [N={n}], got {list(np.asarray(cos).shape)}")
        for name, m in self.methods.items():
            if m.pair_family not in self.views:
                raise ValueError(f"ExplorerData.methods[{name!r}].pair_family: {m.pair_family!r} has no views; known: {sorted(self.views)}")
            for key in ("map1", "map2"):
                a = getattr(m, key)
                if a is None and key == "map2":
                    continue
                a = np.asarray(a)
                if a.ndim != 3 or a.shape[0] != n:
                    raise ValueError(f"ExplorerData.methods[{name!r}].{key}: expected [N={n}, h, w], got {list(a.shape)}")
                if not np.issubdtype(a.dtype, np.floating):
                    raise ValueError(f"ExplorerData.methods[{name!r}].{key}: expected float, got {a.dtype}")
        missing = [c for c in METRIC_COLUMNS if c not in self.metrics.columns]
        if missing:
            raise ValueError(f"ExplorerData.metrics: missing column(s) {missing}; expected a long table {list(METRIC_COLUMNS)}")
        unknown = sorted(set(self.metrics["method"].astype(str)) - set(self.methods))
        if unknown:
            raise ValueError(f"ExplorerData.metrics: values for unknown method(s) {unknown}")
        stray = sorted(set(self.metrics["image_id"].astype(str)) - set(self.image_ids))
        if stray:
            raise ValueError(f"ExplorerData.metrics: values for unknown image id(s) {stray[:5]}")
        if self.metrics.duplicated(["method", "image_id", "column"]).any():
            raise ValueError("ExplorerData.metrics: more than one value for some (method, image_id, column)")
        bad = {c: d for c, d in self.directions.items() if d not in DIRECTIONS}
        if bad:
            raise ValueError(f"ExplorerData.directions: {bad} — each direction must be one of {list(DIRECTIONS)}")
        for name, per in self.curves.items():
            if name not in self.methods:
                raise ValueError(f"ExplorerData.curves: curves for unknown method {name!r}")
            for cname, c in per.items():
                c = np.asarray(c)
                if c.ndim != 2 or c.shape[0] != n or c.shape[1] < 2:
                    raise ValueError(f"ExplorerData.curves[{name!r}][{cname!r}]: expected [N={n}, T+1], got {list(c.shape)}")
