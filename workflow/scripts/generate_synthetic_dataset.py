"""Snakemake script: generate a synthetic Two4Two-format dataset."""

from xai_ssl.logs import job_log
from xai_ssl.steps import generate_dataset

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    generate_dataset(snakemake.output.files, snakemake.params.generate, snakemake.params.seed, snakemake.params.progress)  # noqa: F821
