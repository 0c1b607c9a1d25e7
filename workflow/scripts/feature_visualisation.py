"""Snakemake script of rule feature_visualisation: xai_ssl.stages.attribution.feature_visualisation with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.attribution import feature_visualisation
from xai_ssl.stages.job import run_rule

run_rule(snakemake, feature_visualisation)  # noqa: F821 (snakemake is injected)
