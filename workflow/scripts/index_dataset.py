"""Snakemake script: list a dataset's images into its index CSV."""

from xai_ssl.logs import job_log
from xai_ssl.steps import index_dataset

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    index_dataset(snakemake.params.source, snakemake.params.root, snakemake.output.index)  # noqa: F821
