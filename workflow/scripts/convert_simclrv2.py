"""Snakemake script of rule convert_simclrv2: xai_ssl.stages.models.convert_simclrv2 with the rule's named input, output, params and wildcards."""

from xai_ssl.stages.models import convert_simclrv2
from xai_ssl.stages.job import run_rule

run_rule(snakemake, convert_simclrv2)  # noqa: F821 (snakemake is injected)
