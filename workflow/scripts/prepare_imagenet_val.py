"""Snakemake script of rule prepare_imagenet_val: xai_ssl.stages.data.prepare_imagenet_val with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.data import prepare_imagenet_val
from xai_ssl.stages.job import run_rule

run_rule(snakemake, prepare_imagenet_val)  # noqa: F821 (snakemake is injected)
