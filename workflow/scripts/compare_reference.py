"""Snakemake script of rule compare_reference: xai_ssl.stages.evaluation.compare_reference with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.evaluation import compare_reference
from xai_ssl.stages.job import run_rule

run_rule(snakemake, compare_reference)  # noqa: F821 (snakemake is injected)
