"""Snakemake script: download the two files of a SimCLRv2 TF checkpoint (index and data) and verify or record their sha256."""

from xai_ssl.logs import job_log
from xai_ssl.models.download import fetch

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    p = snakemake.params  # noqa: F821
    for part in ("index", "data"):
        fetch(p.urls[part], snakemake.output[part], p.sha256[part])  # noqa: F821
