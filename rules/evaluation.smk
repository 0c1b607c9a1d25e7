# Evaluation: per-image metric values and curves per shard, then tables per dataset x model.
# Metrics: SI/SD/CI/CD, SAD/SIC/CAD/CID, MS (+ median), RAND (parameter randomisation sanity check).


rule compute_metrics:
    input:
        pairs="results/pairs/{dataset}.h5",
        model="results/models/{model}/encoder.pt",
        maps="results/attributions/{dataset}/{model}/{method}/shard-{shard}.h5",
        index="results/data/{dataset}/index.csv",  # corpus methods re-run by MS / RAND need their reference images
    output:
        scores=ensure("results/metrics/{dataset}/{model}/{method}/shard-{shard}.csv", non_empty=True),
        curves=ensure("results/metrics/{dataset}/{model}/{method}/shard-{shard}.curves.h5", non_empty=True),
    params:
        metrics=metric_params,
        device=config["device"],
        batch_size=config["batch_size"],
        speed={"channels_last": config["channels_last"], "autocast": config["autocast"]},
        progress=config["progress"],
        # metrics such as max-sensitivity re-run the method: its code is part of the fingerprint
        code=lambda wildcards: code_fingerprint("metrics", "evaluation", "models", "pairs", "steps") + method_code(wildcards),
    log:
        "logs/compute_metrics/{dataset}/{model}/{method}/shard-{shard}.log",
    benchmark:
        "benchmarks/compute_metrics/{dataset}/{model}/{method}/shard-{shard}.tsv"
    threads: TORCH_THREADS
    resources:
        gpu=TORCH_GPUS,
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/compute_metrics.py"


rule aggregate_tables:
    input:
        scores=method_shard_files("results/metrics/{dataset}/{model}/{method}/shard-{shard}.csv"),
    output:
        csv=report(
            "results/tables/{dataset}/{model}/scores.csv",
            caption="../workflow/report/scores.rst",
            category="Tables",
            subcategory="{dataset}",
            labels={"model": "{model}", "table": "mean scores"},
        ),
        md="results/tables/{dataset}/{model}/scores.md",
        long="results/tables/{dataset}/{model}/per_image.csv",
        provenance="results/tables/{dataset}/{model}/scores.provenance.json",  # written beside scores.csv
    params:
        methods=shard_methods,
        metrics=METRICS,
        title="{dataset} / {model}",
        code=code_fingerprint("tables", "significance", "method_roles", "steps"),
    log:
        "logs/aggregate_tables/{dataset}/{model}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/aggregate_tables.py"
