"""Snakemake script of rule model_card: xai_ssl.stages.models.model_card with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.models import model_card
from xai_ssl.stages.job import run_rule

run_rule(snakemake, model_card)  # noqa: F821 (snakemake is injected)
