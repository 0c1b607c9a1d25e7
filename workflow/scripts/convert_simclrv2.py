"""Snakemake script: convert a SimCLRv2 TF checkpoint to the PyTorch {'resnet', 'head'} file (needs TensorFlow)."""

from xai_ssl.logs import job_log
from xai_ssl.steps import convert_simclrv2

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    p = snakemake.params  # noqa: F821
    convert_simclrv2(snakemake.input.index, snakemake.output.checkpoint, p.width, p.ema, p.sha256)  # noqa: F821
