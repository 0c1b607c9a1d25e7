"""Snakemake script of rule extract_two4two_archive: xai_ssl.stages.data.extract_two4two_archive with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.data import extract_two4two_archive
from xai_ssl.stages.job import run_rule

run_rule(snakemake, extract_two4two_archive)  # noqa: F821 (snakemake is injected)
