"""Snakemake script: list a dataset's images into its index CSV."""

from xai_ssl.logs import job_log
from xai_ssl.steps import index_dataset

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    p = snakemake.params  # noqa: F821
    index_dataset(p.source, p.root, snakemake.output.index, p.on_bad_image, snakemake.output.skipped)  # noqa: F821
