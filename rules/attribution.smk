# Attributions: one HDF5 per dataset x model x method x shard; image methods (feature visualisation): dreamed
# images per dataset x model x method (not attributed, not scored; their figure is a report rule).


rule compute_attributions:
    input:
        pairs="results/pairs/{dataset}.h5",
        encoder="results/models/{model}/encoder.pt",
        index="results/data/{dataset}/index.csv",  # reference images of corpus methods (COCOA, VDSN, embedded Grad-CAM)
    output:
        maps=ensure("results/attributions/{dataset}/{model}/{method}/shard-{shard}.h5", non_empty=True),
    params:
        registry_method=PLAN.method_name,
        method_params=PLAN.method_params,
        n_shards=lookup(dpath="datasets/{dataset}/n_shards", within=config),
        seed=config["seed"],
        device=config["device"],
        batch_size=config["batch_size"],
        speed={"channels_last": config["channels_last"], "autocast": config["autocast"]},
        torch_threads=config["cpu_threads"],
        progress=config["progress"],
        code=PLAN.method_code("compute_attributions"),
    log:
        "logs/compute_attributions/{dataset}/{model}/{method}/shard-{shard}.log",
    benchmark:
        "benchmarks/compute_attributions/{dataset}/{model}/{method}/shard-{shard}.tsv"
    threads: TORCH_THREADS
    resources:
        gpu=TORCH_GPUS,
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/compute_attributions.py"


rule feature_visualisation:
    input:
        pairs="results/pairs/{dataset}.h5",
        encoder="results/models/{model}/encoder.pt",
    output:
        images=ensure("results/feature_visualisation/{dataset}/{model}/{method}.h5", non_empty=True),
    params:
        registry_method=PLAN.method_name,
        method_params=PLAN.method_params,
        seed=config["seed"],
        device=config["device"],
        batch_size=config["batch_size"],
        speed={"channels_last": config["channels_last"], "autocast": config["autocast"]},
        torch_threads=config["cpu_threads"],
        progress=config["progress"],
        code=PLAN.method_code("feature_visualisation"),
    log:
        "logs/feature_visualisation/{dataset}/{model}/{method}.log",
    benchmark:
        "benchmarks/feature_visualisation/{dataset}/{model}/{method}.tsv"
    threads: TORCH_THREADS
    resources:
        gpu=TORCH_GPUS,
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/feature_visualisation.py"
