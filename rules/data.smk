# Data: generate, download and extract, or index a dataset (or select the ImageNet validation images), then
# store the explained pairs once per dataset.


rule generate_synthetic_dataset:
    output:
        files=directory("results/data/{dataset}/files"),
    params:
        generate=lookup(dpath="datasets/{dataset}/generate", within=config),
        seed=config["seed"],
        progress=config["progress"],
        code=PLAN.code("generate_synthetic_dataset"),
    log:
        "logs/generate_synthetic_dataset/{dataset}.log",
    benchmark:
        "benchmarks/generate_synthetic_dataset/{dataset}.tsv"
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/generate_synthetic_dataset.py"


# Two4Two datasets published as tar archives (source: two4two_archive): download (or place by hand), verify
# (pinned sha256, else trust on first use), extract the split folders; index_dataset reads them like a Two4Two
# folder. Downloads run on the submitting host (compute nodes often have no network); a file placed by hand at
# the archive path is used as it is. A failed download names the URL and that path.
rule download_dataset_archive:
    output:
        archive=ensure("{archive}", non_empty=True, sha256=PLAN.archive_ensured_sha256),
    params:
        url=PLAN.archive_url,
        sha256=PLAN.archive_pin,
    wildcard_constraints:
        archive=alternatives(PLAN.archive_downloads),
    log:
        "logs/download_dataset_archive/{archive}.log",
    localrule: True
    retries: 3
    cache: "omit-software"
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/download_dataset_archive.py"


rule extract_two4two_archive:
    input:
        archive=PLAN.archive,
    output:
        files=directory("results/data/{dataset}/extracted"),
    params:
        splits=lookup(dpath="datasets/{dataset}/extract_splits", within=config),
        sha256=PLAN.archive_pin,
        url=PLAN.dataset_key("url"),
        code=PLAN.code("extract_two4two_archive"),
    wildcard_constraints:
        dataset=alternatives(PLAN.archive_datasets),
    log:
        "logs/extract_two4two_archive/{dataset}.log",
    benchmark:
        "benchmarks/extract_two4two_archive/{dataset}.tsv"
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/extract_two4two_archive.py"


rule index_dataset:
    input:
        unpack(PLAN.dataset_files),
    output:
        index="results/data/{dataset}/index.csv",
        skipped="results/data/{dataset}/index.skipped.csv",
    params:
        source=lookup(dpath="datasets/{dataset}/source", within=config),
        root=PLAN.dataset_root,
        on_bad_image=lookup(dpath="datasets/{dataset}/on_bad_image", within=config),
        max_image_pixels=lookup(dpath="datasets/{dataset}/max_image_pixels", within=config),
        # the folder's content (names, sizes, mtimes of its images), computed at DAG time: a changed image reruns the index
        content=PLAN.dataset_content,
        code=PLAN.code("index_dataset"),
    wildcard_constraints:
        dataset=alternatives(PLAN.indexed_datasets),
    log:
        "logs/index_dataset/{dataset}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/index_dataset.py"


# ImageNet validation: the first n_images by file name from the user's folder (indexed in place) or tar (only
# those members are extracted to images/). The path is a parameter, not an input, so a dry run needs no data;
# its content (file names, sizes, mtimes; the tar's size and mtime) is a parameter too, so a change reruns it.
rule prepare_imagenet_val:
    output:
        index="results/data/{dataset}/index.csv",
        images=directory("results/data/{dataset}/images"),
    params:
        path=PLAN.dataset_path,
        n_images=lookup(dpath="datasets/{dataset}/n_images", within=config),
        pattern=PLAN.dataset_key("pattern"),
        content=PLAN.dataset_content,
        code=PLAN.code("prepare_imagenet_val"),
    wildcard_constraints:
        dataset=alternatives(PLAN.imagenet_datasets),
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
        max_image_pixels=lookup(dpath="datasets/{dataset}/max_image_pixels", within=config),
        seed=config["seed"],
        progress=config["progress"],
        code=PLAN.code("make_pairs"),
    log:
        "logs/make_pairs/{dataset}.log",
    benchmark:
        "benchmarks/make_pairs/{dataset}.tsv"
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/make_pairs.py"
