"""Snakemake script: per-cell difference of a scores table and the reference results."""

from xai_ssl.logs import job_log
from xai_ssl.steps import compare_reference

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    p, out = snakemake.params, snakemake.output  # noqa: F821
    compare_reference(snakemake.input.scores, snakemake.input.reference, p.reference_model, out.csv, out.md, p.title)  # noqa: F821
