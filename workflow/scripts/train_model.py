"""Snakemake script: train an encoder with SimCLR."""

from xai_ssl.device import set_threads
from xai_ssl.logs import job_log
from xai_ssl.steps import train_model

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    set_threads(snakemake.threads)  # noqa: F821
    p, out = snakemake.params, snakemake.output  # noqa: F821
    train_model(snakemake.input.index, dict(p.model), p.seed, p.device, out.checkpoint, out.history, out.figure, p.progress)  # noqa: F821
