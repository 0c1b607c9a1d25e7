"""Snakemake script of rule compute_attributions: xai_ssl.stages.attribution.compute_attributions with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.attribution import compute_attributions
from xai_ssl.stages.job import run_rule

run_rule(snakemake, compute_attributions)  # noqa: F821 (snakemake is injected)
