"""Snakemake script of rule download_dataset_archive: xai_ssl.stages.data.download_dataset_archive with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.data import download_dataset_archive
from xai_ssl.stages.job import run_rule

run_rule(snakemake, download_dataset_archive)  # noqa: F821 (snakemake is injected)
