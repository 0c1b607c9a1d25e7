"""Snakemake script of rule plot_feature_visualisation: xai_ssl.stages.report.plot_feature_visualisation with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.report import plot_feature_visualisation
from xai_ssl.stages.job import run_rule

run_rule(snakemake, plot_feature_visualisation)  # noqa: F821 (snakemake is injected)
