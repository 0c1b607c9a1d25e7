"""Snakemake script: verify a pretrained checkpoint, load it strictly and save it as the common encoder."""

from xai_ssl.device import set_threads
from xai_ssl.logs import job_log
from xai_ssl.steps import prepare_model

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    set_threads(snakemake.threads)  # noqa: F821
    p, out = snakemake.params, snakemake.output  # noqa: F821
    prepare_model(dict(p.model), snakemake.input.checkpoint, out.checkpoint, out.info, p.sha256, p.url)  # noqa: F821
