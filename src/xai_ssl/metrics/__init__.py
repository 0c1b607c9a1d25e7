"""Evaluation metrics; importing this package fills the registry."""

from xai_ssl.metrics import average_drop, insertion_deletion, max_sensitivity, randomisation  # noqa: F401  (registration)
from xai_ssl.metrics.base import METRIC_REGISTRY, PAPER_ORDER, MetricContext, MetricSpec, get_metric, register_metric

__all__ = ["METRIC_REGISTRY", "PAPER_ORDER", "MetricContext", "MetricSpec", "get_metric", "register_metric"]
