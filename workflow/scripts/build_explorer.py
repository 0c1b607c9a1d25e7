"""Snakemake script of rule build_explorer: xai_ssl.stages.report.build_explorer with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.job import run_rule
from xai_ssl.stages.report import build_explorer

run_rule(snakemake, build_explorer)  # noqa: F821 (snakemake is injected)
