"""Snakemake script of rule index_dataset: xai_ssl.stages.data.index_dataset with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.data import index_dataset
from xai_ssl.stages.job import run_rule

run_rule(snakemake, index_dataset)  # noqa: F821 (snakemake is injected)
