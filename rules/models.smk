# Models: encoders trained in the workflow with SimCLR (checkpoint, loss table and figure), or pretrained
# checkpoints (SimCLRv2, Barlow Twins, SimSiam, torchvision ResNets) that are downloaded, converted or placed
# by hand, verified (sha256) and loaded strictly into the common encoder format.


rule train_model:
    input:
        index=train_index,
    output:
        checkpoint=ensure("results/models/{model}/encoder.pt", non_empty=True),
        history="results/models/{model}/training.csv",
        figure=report(
            "results/models/{model}/training_loss.png",
            caption="../workflow/report/training_loss.rst",
            category="Models",
            labels={"model": "{model}"},
        ),
    params:
        model=lookup(dpath="models/{model}", within=config),
        seed=config["seed"],
        device=config["device"],
        progress=config["progress"],
        code=code_fingerprint("models", "augment", "steps"),
    wildcard_constraints:
        model=_one_of(TRAINED_MODELS),
    log:
        "logs/train_model/{model}.log",
    benchmark:
        "benchmarks/train_model/{model}.tsv"
    threads: 2  # the one job on the critical path: it keeps 2 threads on the CPU too
    resources:
        gpu=TORCH_GPUS,
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/train_model.py"


# Downloads run on the submitting host (localrule: compute nodes often have no network), are cached across
# workflows (--cache, $SNAKEMAKE_OUTPUT_CACHE) and retried. A file placed by hand at the output path is used
# as it is (no download). Digest: pinned (ensure) or trusted on first use (<file>.sha256, verified later).
rule download_checkpoint:
    output:
        checkpoint=ensure("{checkpoint}", non_empty=True, sha256=lambda wildcards: ensured_sha256(wildcards.checkpoint)),
    params:
        url=lambda wildcards: config["models"][DOWNLOADS[wildcards.checkpoint]]["url"],
        sha256=lambda wildcards: pinned_sha256(wildcards.checkpoint),
    wildcard_constraints:
        checkpoint=_one_of(DOWNLOADS),
    log:
        "logs/download_checkpoint/{checkpoint}.log",
    localrule: True
    retries: 3
    cache: "omit-software"
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/download_checkpoint.py"


rule download_simclrv2_tf:
    output:
        index=ensure(tf_path("{tf_name}", "index"), non_empty=True, sha256=tf_ensured_sha256("index")),
        data=ensure(tf_path("{tf_name}", "data"), non_empty=True, sha256=tf_ensured_sha256("data")),
    params:
        urls=lambda wildcards: {part: tf_url(wildcards, part) for part in TF_PARTS},
        sha256=lambda wildcards: {part: KNOWN_SHA256.get(tf_url(wildcards, part)) for part in TF_PARTS},
    wildcard_constraints:
        tf_name=_one_of(TF_CHECKPOINTS),
    log:
        "logs/download_simclrv2_tf/{tf_name}.log",
    localrule: True
    retries: 3
    cache: "omit-software"
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/download_simclrv2_tf.py"


# TF checkpoint -> PyTorch {'resnet', 'head'} (needs TensorFlow: pip install -e '.[tf]', or --sdm conda).
rule convert_simclrv2:
    input:
        index=lambda wildcards: tf_path(_tf_name(CONVERSIONS[wildcards.checkpoint]), "index"),
        data=lambda wildcards: tf_path(_tf_name(CONVERSIONS[wildcards.checkpoint]), "data"),
    output:
        checkpoint=ensure("{checkpoint}", non_empty=True),
    params:
        width=lambda wildcards: config["models"][CONVERSIONS[wildcards.checkpoint]]["width"],
        ema=lambda wildcards: config["models"][CONVERSIONS[wildcards.checkpoint]].get("ema", True),
        sha256=lambda wildcards: pinned_sha256(wildcards.checkpoint),
        code=code_fingerprint("models.simclrv2", "models.checkpoints", "models.download"),
    wildcard_constraints:
        checkpoint=_one_of(CONVERSIONS),
    log:
        "logs/convert_simclrv2/{checkpoint}.log",
    cache: "omit-software"
    conda:
        "../envs/xai-ssl-tf.yaml"
    script:
        "../workflow/scripts/convert_simclrv2.py"


rule prepare_model:
    input:
        checkpoint=model_checkpoint,
    output:
        checkpoint=ensure("results/models/{model}/encoder.pt", non_empty=True),
        info="results/models/{model}/source.json",
    params:
        model=pretrained_params,
        sha256=lambda wildcards: pinned_sha256(config["models"][wildcards.model]["checkpoint"]),
        url=lambda wildcards: config["models"][wildcards.model].get("url"),
        code=code_fingerprint("models", "steps"),
    wildcard_constraints:
        model=_one_of(PRETRAINED_MODELS),
    log:
        "logs/prepare_model/{model}.log",
    benchmark:
        "benchmarks/prepare_model/{model}.tsv"
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/prepare_model.py"
