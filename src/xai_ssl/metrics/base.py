"""The metric signature and registry: one module per metric family, found by its config name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from xai_ssl.engine import MethodContext, image_seed
from xai_ssl.methods.base import MethodSpec
from xai_ssl.models.encoder import Encoder
from xai_ssl.registry import Scaler, Spec, lookup

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
    ``masks`` are the label masks of the first view (``mask1`` of the pairs file; localisation metrics) and
    ``has_masks`` says which images have one (the others are NA in localisation columns).
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
    has_masks: torch.Tensor | None = None  # [B] bool: image b has a mask (its row of ``masks`` is zeros otherwise)

    def attribution_seed(self, b: int) -> int:
        """The per-image seed the attribution step gave image ``b`` (see ``compute_attributions``)."""
        return image_seed(self.seed, self.image_ids[b], self.method_key or (self.method.name if self.method else ""))


def require_method(ctx: MethodContext, metric: str) -> MetricContext:
    """``ctx`` as a MetricContext that names the explained method and the images, or a clear error."""
    if not isinstance(ctx, MetricContext) or ctx.method is None or not ctx.image_ids:
        raise ValueError(f"metric {metric!r} re-runs the explained method: pass a MetricContext with method, method_params and image_ids")
    return ctx


@dataclass(frozen=True)
class MetricSpec(Spec):
    """A registered metric family: function, parameter defaults and its reported columns with directions."""

    what: ClassVar[str] = "metric"

    directions: dict[str, str] = field(default_factory=dict)  # column -> "↑" or "↓"


METRIC_REGISTRY: dict[str, MetricSpec] = {}


def register_metric(name: str, defaults: dict[str, Any], directions: dict[str, str], scale: Scaler | None = None) -> Callable[[MetricFn], MetricFn]:
    """Decorator: add a metric function to the registry under ``name`` (``scale``: see :class:`registry.Spec`)."""

    def wrap(fn: MetricFn) -> MetricFn:
        if name in METRIC_REGISTRY:
            raise ValueError(f"metric {name!r} registered twice")
        METRIC_REGISTRY[name] = MetricSpec(name, fn, dict(defaults), scale, dict(directions))
        return fn

    return wrap


def get_metric(name: str) -> MetricSpec:
    """Look a metric up by its registry name; the error lists the accepted names."""
    return lookup(METRIC_REGISTRY, name, "metric")


def metric_directions(metric_names: Sequence[str]) -> dict[str, str]:
    """Reported columns and their arrows: the paper's order (SI, SD, CI, CD, SAD, SIC, CAD, CID, MS) first,
    then the other columns in the order of the given metrics (e.g. RAND); a ``<col>_median`` column
    (e.g. MS_median) follows its ``<col>``."""
    found: dict[str, str] = {}
    for name in metric_names:
        found.update(get_metric(name).directions)
    medians = [c for c in found if c.endswith("_median")]
    plain = [c for c in PAPER_ORDER if c in found] + [c for c in found if c not in PAPER_ORDER and c not in medians]
    order: list[str] = []
    for c in plain:
        order += [c] + [m for m in medians if m == f"{c}_median"]
    order += [m for m in medians if m not in order]
    return {c: found[c] for c in order}
