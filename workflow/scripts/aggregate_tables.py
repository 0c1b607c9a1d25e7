"""Snakemake script of rule aggregate_tables: xai_ssl.stages.evaluation.aggregate_tables with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.evaluation import aggregate_tables
from xai_ssl.stages.job import run_rule

run_rule(snakemake, aggregate_tables)  # noqa: F821 (snakemake is injected)
