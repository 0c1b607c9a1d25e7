"""Snakemake script of rule download_checkpoint: xai_ssl.stages.models.download_checkpoint with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.models import download_checkpoint
from xai_ssl.stages.job import run_rule

run_rule(snakemake, download_checkpoint)  # noqa: F821 (snakemake is injected)
