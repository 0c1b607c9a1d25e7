"""Snakemake script: select the first N ImageNet validation images (folder or tar) and write the dataset index."""

from xai_ssl.logs import job_log
from xai_ssl.steps import prepare_imagenet

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    p, out = snakemake.params, snakemake.output  # noqa: F821
    prepare_imagenet(p.path, out.index, out.images, p.n_images, p.pattern)
