"""Snakemake script: metric bar chart with confidence intervals."""

from xai_ssl.logs import job_log
from xai_ssl.steps import bars_plot

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    bars_plot(snakemake.input.long, snakemake.params.metrics, snakemake.output.figure, snakemake.params.title)  # noqa: F821
