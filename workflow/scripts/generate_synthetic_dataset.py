"""Snakemake script of rule generate_synthetic_dataset: xai_ssl.stages.data.generate_synthetic_dataset with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.data import generate_synthetic_dataset
from xai_ssl.stages.job import run_rule

run_rule(snakemake, generate_synthetic_dataset)  # noqa: F821 (snakemake is injected)
