"""The metric signature and registry: one module per metric family, found by its config name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from xai_ssl.methods.base import MethodContext, MethodSpec
from xai_ssl.models.encoder import Encoder
from xai_ssl.seeding import derive_seed

# (per-image values per column [N], curves per name [N, T+1])
MetricResult = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]
MetricFn = Callable[[Encoder, torch.Tensor, torch.Tensor, torch.Tensor, "torch.Tensor | None", dict[str, Any], MethodContext], MetricResult]


# Column order of the paper's tables (Sammani et al., README tables); other columns follow in registry order.
PAPER_ORDER = ("SI", "SD", "CI", "CD", "SAD", "SIC", "CAD", "CID", "MS")


@dataclass
class MetricContext(MethodContext):
    """A :class:`MethodContext` plus what metrics that re-run the explained method need.

    ``method``/``method_params``/``method_key`` are the registry spec, the resolved parameters and the
    config name of the method whose maps are scored (from the attribution file); ``seed`` is the
    config seed; ``image_ids``/``indices`` name the images of the batch (``indices`` = rows in the
    pairs file); ``cache`` survives across the calls of one evaluation job (randomised encoders).
    ``masks`` are the label masks of the first view (``mask1`` of the pairs file; localisation metrics).
    Plain :class:`MethodContext` objects still work for metrics that do not need any of this.
    """

    method: MethodSpec | None = None
    method_params: dict[str, Any] = field(default_factory=dict)
    method_key: str | None = None
    seed: int = 0
    image_ids: list[str] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    cache: dict[Any, Any] = field(default_factory=dict)
    masks: torch.Tensor | None = None  # [B, H, W] uint8 label masks of x1 (0 = background), None without masks

    def attribution_seed(self, b: int) -> int:
        """The per-image seed the attribution step gave image ``b`` (see ``compute_attributions``)."""
        return derive_seed(self.seed, self.image_ids[b], self.method_key or (self.method.name if self.method else ""))


def require_method(ctx: MethodContext, metric: str) -> MetricContext:
    """``ctx`` as a MetricContext that names the explained method and the images, or a clear error."""
    if not isinstance(ctx, MetricContext) or ctx.method is None or not ctx.image_ids:
        raise ValueError(f"metric {metric!r} re-runs the explained method: pass a MetricContext with method, method_params and image_ids")
    return ctx


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
