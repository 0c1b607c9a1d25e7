"""Snakemake script: one method's maps for one shard of a dataset."""

from xai_ssl.device import set_threads
from xai_ssl.logs import job_log
from xai_ssl.steps import attribute

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    set_threads(snakemake.threads)  # noqa: F821
    p, w = snakemake.params, snakemake.wildcards  # noqa: F821
    attribute(
        snakemake.input.pairs,  # noqa: F821
        snakemake.input.model,  # noqa: F821
        snakemake.output.maps,  # noqa: F821
        method_key=w.method,
        registry_name=p.method,
        params=dict(p.method_params),
        seed=p.seed,
        device_name=p.device,
        batch_size=p.batch_size,
        shard=int(w.shard),
        n_shards=p.n_shards,
        provenance={"dataset": w.dataset, "model": w.model},
        progress=p.progress,
        speed=dict(p.speed),
        index_csv=snakemake.input.index,  # noqa: F821
    )
