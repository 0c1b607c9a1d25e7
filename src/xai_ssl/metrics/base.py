"""The metric signature and registry: one module per metric family, found by its config name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xai_ssl.methods.base import MethodContext
from xai_ssl.models.encoder import Encoder

# (per-image values per column [N], curves per name [N, T+1])
MetricResult = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]
MetricFn = Callable[[Encoder, torch.Tensor, torch.Tensor, torch.Tensor, "torch.Tensor | None", dict[str, Any], MethodContext], MetricResult]


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric family: function, parameter defaults and its reported columns with directions."""

    name: str
    fn: MetricFn
    defaults: dict[str, Any]
    directions: dict[str, str]  # column -> "↑" or "↓"

    def resolve_params(self, params: dict[str, Any] | None, image_size: int) -> dict[str, Any]:
        """Defaults overridden by ``params``; unknown keys are refused."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise KeyError(f"metric {self.name!r}: unknown parameter(s) {unknown}; accepted: {sorted(self.defaults)}")
        merged = {**self.defaults, **params}
        scaler = SCALERS.get(self.name)
        return scaler(merged, image_size) if scaler else merged


METRIC_REGISTRY: dict[str, MetricSpec] = {}
SCALERS: dict[str, Callable[[dict[str, Any], int], dict[str, Any]]] = {}


def register_metric(name: str, defaults: dict[str, Any], directions: dict[str, str]) -> Callable[[MetricFn], MetricFn]:
    """Decorator: add a metric function to the registry under ``name``."""

    def wrap(fn: MetricFn) -> MetricFn:
        if name in METRIC_REGISTRY:
            raise ValueError(f"metric {name!r} registered twice")
        METRIC_REGISTRY[name] = MetricSpec(name, fn, dict(defaults), dict(directions))
        return fn

    return wrap


def get_metric(name: str) -> MetricSpec:
    """Look a metric up by its registry name; the error lists the accepted names."""
    if name not in METRIC_REGISTRY:
        raise KeyError(f"unknown metric {name!r}; accepted: {sorted(METRIC_REGISTRY)}")
    return METRIC_REGISTRY[name]
