"""Snakemake script: download one dataset archive (urllib) and verify or record its sha256."""

from xai_ssl.logs import job_log
from xai_ssl.models.download import fetch

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    fetch(snakemake.params.url, snakemake.output.archive, snakemake.params.sha256, timeout=120.0)  # noqa: F821
