"""Snakemake script: summary tables (CSV, Markdown) and the long per-image CSV."""

from xai_ssl.logs import job_log
from xai_ssl.steps import aggregate

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    p, out = snakemake.params, snakemake.output  # noqa: F821
    aggregate(snakemake.input.scores, p.methods, p.metrics, out.csv, out.md, out.long, p.title)  # noqa: F821
