"""Snakemake script: verify a Two4Two tar and extract its split folders."""

from xai_ssl.logs import job_log
from xai_ssl.steps import extract_dataset_archive

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    extract_dataset_archive(
        snakemake.input.archive,  # noqa: F821
        snakemake.output.files,  # noqa: F821
        snakemake.params.splits,  # noqa: F821
        snakemake.params.sha256,  # noqa: F821
        snakemake.params.url,  # noqa: F821
    )
