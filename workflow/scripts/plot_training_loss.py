"""Snakemake script of rule plot_training_loss: xai_ssl.stages.report.plot_training_loss with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.report import plot_training_loss
from xai_ssl.stages.job import run_rule

run_rule(snakemake, plot_training_loss)  # noqa: F821 (snakemake is injected)
