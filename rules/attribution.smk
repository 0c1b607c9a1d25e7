# Attributions: one HDF5 per dataset x model x method x shard.


rule compute_attributions:
    input:
        pairs="results/pairs/{dataset}.h5",
        model="results/models/{model}/encoder.pt",
    output:
        maps=ensure("results/attributions/{dataset}/{model}/{method}/shard-{shard}.h5", non_empty=True),
    params:
        method=method_name,
        method_params=lookup(dpath="methods/{method}/params", within=config),
        n_shards=lookup(dpath="datasets/{dataset}/n_shards", within=config),
        seed=config["seed"],
        device=config["device"],
        batch_size=config["batch_size"],
        progress=config["progress"],
        code=method_code,
    log:
        "logs/compute_attributions/{dataset}/{model}/{method}/shard-{shard}.log",
    benchmark:
        "benchmarks/compute_attributions/{dataset}/{model}/{method}/shard-{shard}.tsv"
    threads: 2
    resources:
        gpu=1,
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/compute_attributions.py"
