"""Snakemake script: mean insertion/deletion curves per method."""

from xai_ssl.logs import job_log
from xai_ssl.steps import curves_plot

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    files: dict[str, list[str]] = {}
    for method, path in zip(snakemake.params.methods, snakemake.input.curves):  # noqa: F821
        files.setdefault(method, []).append(path)
    curves_plot(files, snakemake.output.figure, snakemake.params.title)  # noqa: F821
