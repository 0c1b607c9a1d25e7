"""Snakemake script of rule train_model: xai_ssl.stages.models.train_model with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.models import train_model
from xai_ssl.stages.job import run_rule

run_rule(snakemake, train_model)  # noqa: F821 (snakemake is injected)
