"""Snakemake script of rule plot_curves: xai_ssl.stages.report.plot_curves with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.report import plot_curves
from xai_ssl.stages.job import run_rule

run_rule(snakemake, plot_curves)  # noqa: F821 (snakemake is injected)
