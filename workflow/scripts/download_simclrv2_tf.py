"""Snakemake script of rule download_simclrv2_tf: xai_ssl.stages.models.download_simclrv2_tf with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.models import download_simclrv2_tf
from xai_ssl.stages.job import run_rule

run_rule(snakemake, download_simclrv2_tf)  # noqa: F821 (snakemake is injected)
