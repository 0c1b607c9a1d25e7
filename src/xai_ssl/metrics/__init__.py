"""Evaluation metrics; importing this package imports every module in it, which fills the registry."""

import importlib
import pkgutil

from xai_ssl.metrics.base import METRIC_REGISTRY, PAPER_ORDER, MetricContext, MetricSpec, get_metric, metric_directions, register_metric

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    importlib.import_module(f"{__name__}.{_module}")  # registration happens at import

__all__ = ["METRIC_REGISTRY", "PAPER_ORDER", "MetricContext", "MetricSpec", "get_metric", "metric_directions", "register_metric"]
