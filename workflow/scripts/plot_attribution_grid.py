"""Snakemake script: grid of images and every method's maps."""

from xai_ssl.logs import job_log
from xai_ssl.steps import grid_figure

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    files: dict[str, list[str]] = {}
    for method, path in zip(snakemake.params.methods, snakemake.input.maps):  # noqa: F821
        files.setdefault(method, []).append(path)
    grid_figure(snakemake.input.pairs, files, snakemake.params.n_images, snakemake.output.figure)  # noqa: F821
