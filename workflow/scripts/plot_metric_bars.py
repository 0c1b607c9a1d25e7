"""Snakemake script: metric bar charts with confidence intervals (combined, and one panel per metric)."""

from xai_ssl.logs import job_log
from xai_ssl.steps import bars_plot

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    out = snakemake.output  # noqa: F821
    bars_plot(snakemake.input.long, snakemake.params.metrics, out.figure, snakemake.params.title, out_panels=out.panels)  # noqa: F821
