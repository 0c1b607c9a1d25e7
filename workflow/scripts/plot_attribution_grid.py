"""Snakemake script of rule plot_attribution_grid: xai_ssl.stages.report.plot_attribution_grid with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.report import plot_attribution_grid
from xai_ssl.stages.job import run_rule

run_rule(snakemake, plot_attribution_grid)  # noqa: F821 (snakemake is injected)
