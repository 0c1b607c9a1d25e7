"""Evaluation metrics; importing this package fills the registry."""

from xai_ssl.metrics import insertion_deletion  # noqa: F401  (registration)
from xai_ssl.metrics.base import METRIC_REGISTRY, MetricSpec, get_metric, register_metric

__all__ = ["METRIC_REGISTRY", "MetricSpec", "get_metric", "register_metric"]
