"""Snakemake script: store the explained views of a dataset."""

from xai_ssl.logs import job_log
from xai_ssl.steps import make_pairs

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    p = snakemake.params  # noqa: F821
    make_pairs(snakemake.input.index, snakemake.output.pairs, p.split, p.n_images, p.image_size, p.seed, p.crop_scale, p.progress)  # noqa: F821
