"""Snakemake script: score one shard of maps."""

from xai_ssl.device import set_threads
from xai_ssl.logs import job_log
from xai_ssl.steps import evaluate

with job_log(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    set_threads(snakemake.threads)  # noqa: F821
    p, w, out = snakemake.params, snakemake.wildcards, snakemake.output  # noqa: F821
    evaluate(
        snakemake.input.pairs,  # noqa: F821
        snakemake.input.model,  # noqa: F821
        snakemake.input.maps,  # noqa: F821
        metrics={k: dict(v) for k, v in p.metrics.items()},
        device_name=p.device,
        batch_size=p.batch_size,
        out_csv=out.scores,
        out_curves=out.curves,
        provenance={"dataset": w.dataset, "model": w.model},
        progress=p.progress,
        speed=dict(p.speed),
        index_csv=snakemake.input.index,  # noqa: F821
    )
