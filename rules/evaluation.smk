# Evaluation: per-image metric values and curves per shard, then tables per dataset x model, and the
# difference to the paper's tables for models with a `reference:` name.
# Metrics: SI/SD/CI/CD, SAD/SIC/CAD/CID, MS (+ median), RAND (parameter randomisation sanity check), localisation.


rule compute_metrics:
    input:
        pairs="results/pairs/{dataset}.h5",
        encoder="results/models/{model}/encoder.pt",
        maps="results/attributions/{dataset}/{model}/{method}/shard-{shard}.h5",
        index="results/data/{dataset}/index.csv",  # corpus methods re-run by MS / RAND need their reference images
    output:
        scores=ensure("results/metrics/{dataset}/{model}/{method}/shard-{shard}.csv", non_empty=True),
        curves=ensure("results/metrics/{dataset}/{model}/{method}/shard-{shard}.curves.h5", non_empty=True),
    params:
        metrics=PLAN.metric_params,
        device=config["device"],
        batch_size=config["batch_size"],
        speed={"channels_last": config["channels_last"], "autocast": config["autocast"]},
        torch_threads=config["cpu_threads"],
        progress=config["progress"],
        # metrics such as max-sensitivity re-run the method: its code is part of the fingerprint
        code=PLAN.metrics_code("compute_metrics"),
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
        scores=PLAN.method_shard_files("results/metrics/{dataset}/{model}/{method}/shard-{shard}.csv"),
        curves=PLAN.method_shard_files("results/metrics/{dataset}/{model}/{method}/shard-{shard}.curves.h5"),
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
        provenance="results/tables/{dataset}/{model}/scores.provenance.json",
    params:
        methods=PLAN.shard_methods,
        directions=PLAN.metric_directions(),
        families=PLAN.method_families(),  # baselines last; significance against random_baseline
        pair_families=PLAN.method_pair_families(),  # tested against random_baseline: the methods on its view pairs
        title="{dataset} / {model}",
        code=PLAN.code("aggregate_tables"),
    log:
        "logs/aggregate_tables/{dataset}/{model}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/aggregate_tables.py"


# Reference comparison: per-cell difference of a model's scores and the reference results of Sammani et al.
# (config/reference_sammani.csv, methods-sammani.md §5.3), for models with a `reference:` name.
rule compare_reference:
    input:
        scores="results/tables/{dataset}/{model}/scores.csv",
        reference=PLAN.reference_csv,
    output:
        csv="results/tables/{dataset}/{model}/reference_diff.csv",
        md="results/tables/{dataset}/{model}/reference_diff.md",
    params:
        reference_model=PLAN.reference_model,
        title="{dataset} / {model} vs Sammani et al. (reference README tables)",
        code=PLAN.code("compare_reference"),
    wildcard_constraints:
        model=alternatives(PLAN.reference_models),
    log:
        "logs/compare_reference/{dataset}/{model}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/compare_reference.py"
