"""Snakemake script of rule prepare_model: xai_ssl.stages.models.prepare_model with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.models import prepare_model
from xai_ssl.stages.job import run_rule

run_rule(snakemake, prepare_model)  # noqa: F821 (snakemake is injected)
