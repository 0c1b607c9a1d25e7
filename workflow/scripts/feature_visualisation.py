"""Snakemake script: feature visualisation (dreamed images and details) of one dataset x model x image method."""

from xai_ssl.device import set_threads
from xai_ssl.logs import job_log
from xai_ssl.steps import feature_visualisation

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    set_threads(snakemake.threads)  # noqa: F821
    p, w = snakemake.params, snakemake.wildcards  # noqa: F821
    feature_visualisation(
        snakemake.input.pairs,  # noqa: F821
        snakemake.input.model,  # noqa: F821
        snakemake.output.images,  # noqa: F821
        snakemake.output.figure,  # noqa: F821
        method_key=w.method,
        registry_name=p.method,
        params=dict(p.method_params),
        seed=p.seed,
        device_name=p.device,
        batch_size=p.batch_size,
        n_grid_images=p.n_images,
        provenance={"dataset": w.dataset, "model": w.model},
        progress=p.progress,
        speed=dict(p.speed),
    )
