# Data: generate or index a dataset (or select the ImageNet validation images), then store the explained
# pairs once per dataset.


rule generate_synthetic_dataset:
    output:
        files=directory("results/data/{dataset}/files"),
    params:
        generate=lookup(dpath="datasets/{dataset}/generate", within=config),
        seed=config["seed"],
        progress=config["progress"],
        code=code_fingerprint("data"),
    log:
        "logs/generate_synthetic_dataset/{dataset}.log",
    benchmark:
        "benchmarks/generate_synthetic_dataset/{dataset}.tsv"
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/generate_synthetic_dataset.py"


rule index_dataset:
    input:
        unpack(dataset_files),
    output:
        index="results/data/{dataset}/index.csv",
        skipped="results/data/{dataset}/index.skipped.csv",
    params:
        source=lookup(dpath="datasets/{dataset}/source", within=config),
        root=dataset_root,
        on_bad_image=lookup(dpath="datasets/{dataset}/on_bad_image", within=config),
        code=code_fingerprint("data", "steps"),
    wildcard_constraints:
        dataset=_dataset_names(INDEXED_DATASETS),
    log:
        "logs/index_dataset/{dataset}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/index_dataset.py"


# ImageNet validation: the first n_images by file name from the user's folder (indexed in place) or tar (only
# those members are extracted to images/). The path is a parameter, not an input, so a dry run needs no data.
rule prepare_imagenet_val:
    output:
        index="results/data/{dataset}/index.csv",
        images=directory("results/data/{dataset}/images"),
    params:
        path=lambda wildcards: str(Path(config["datasets"][wildcards.dataset]["path"]).resolve()),
        n_images=lookup(dpath="datasets/{dataset}/n_images", within=config),
        pattern=lambda wildcards: config["datasets"][wildcards.dataset].get("pattern"),
        code=code_fingerprint("data", "steps"),
    wildcard_constraints:
        dataset=_dataset_names(IMAGENET_DATASETS),
    log:
        "logs/prepare_imagenet_val/{dataset}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/prepare_imagenet_val.py"


rule make_pairs:
    input:
        index="results/data/{dataset}/index.csv",
    output:
        pairs=ensure("results/pairs/{dataset}.h5", non_empty=True),
    params:
        split=lookup(dpath="datasets/{dataset}/split", within=config),
        n_images=lookup(dpath="datasets/{dataset}/n_images", within=config),
        image_size=lookup(dpath="datasets/{dataset}/image_size", within=config),
        crop_scale=lookup(dpath="datasets/{dataset}/view_crop_scale", within=config),
        seed=config["seed"],
        progress=config["progress"],
        code=code_fingerprint("pairs", "augment", "data", "steps"),
    log:
        "logs/make_pairs/{dataset}.log",
    benchmark:
        "benchmarks/make_pairs/{dataset}.tsv"
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/make_pairs.py"
