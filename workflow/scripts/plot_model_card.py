"""Snakemake script of rule plot_model_card: xai_ssl.stages.report.plot_model_card with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.report import plot_model_card
from xai_ssl.stages.job import run_rule

run_rule(snakemake, plot_model_card)  # noqa: F821 (snakemake is injected)
