"""Snakemake script of rule make_pairs: xai_ssl.stages.data.make_pairs with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.data import make_pairs
from xai_ssl.stages.job import run_rule

run_rule(snakemake, make_pairs)  # noqa: F821 (snakemake is injected)
