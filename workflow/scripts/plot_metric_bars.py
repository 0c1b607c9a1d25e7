"""Snakemake script of rule plot_metric_bars: xai_ssl.stages.report.plot_metric_bars with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.report import plot_metric_bars
from xai_ssl.stages.job import run_rule

run_rule(snakemake, plot_metric_bars)  # noqa: F821 (snakemake is injected)
