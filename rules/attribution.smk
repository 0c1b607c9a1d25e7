# Attributions: one HDF5 per dataset x model x method x shard.


rule compute_attributions:
    input:
        pairs="results/pairs/{dataset}.h5",
        model="results/models/{model}/encoder.pt",
        index="results/data/{dataset}/index.csv",  # reference images of corpus methods (COCOA, VDSN, embedded Grad-CAM)
    output:
        maps=ensure("results/attributions/{dataset}/{model}/{method}/shard-{shard}.h5", non_empty=True),
    params:
        method=method_name,
        method_params=method_params,
        n_shards=lookup(dpath="datasets/{dataset}/n_shards", within=config),
        seed=config["seed"],
        device=config["device"],
        batch_size=config["batch_size"],
        speed={"channels_last": config["channels_last"], "autocast": config["autocast"]},
        progress=config["progress"],
        code=method_code,
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
