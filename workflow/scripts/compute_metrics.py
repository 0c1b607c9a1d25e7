"""Snakemake script of rule compute_metrics: xai_ssl.stages.evaluation.compute_metrics with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.evaluation import compute_metrics
from xai_ssl.stages.job import run_rule

run_rule(snakemake, compute_metrics)  # noqa: F821 (snakemake is injected)
