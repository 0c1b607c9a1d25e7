# Models: encoders trained in the workflow with SimCLR (checkpoint and loss table), or pretrained checkpoints
# (SimCLRv2, Barlow Twins, SimSiam, torchvision ResNets) that are downloaded, converted or placed by hand,
# verified (sha256) and loaded strictly into the common encoder format.


rule train_model:
    input:
        index=PLAN.train_index,
    output:
        encoder=ensure("results/models/{model}/encoder.pt", non_empty=True),
        history="results/models/{model}/training.csv",
    params:
        model=PLAN.training_params,
        seed=config["seed"],
        device=config["device"],
        progress=config["progress"],
        code=PLAN.code("train_model"),
    wildcard_constraints:
        model=alternatives(PLAN.trained_models),
    log:
        "logs/train_model/{model}.log",
    benchmark:
        "benchmarks/train_model/{model}.tsv"
    threads: PLAN.training_threads  # training.threads: torch's threads whatever --cores (same weights), capped by --cores
    resources:
        gpu=TORCH_GPUS,
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/train_model.py"


# The model card (models/quality.py): view cosine of the explained pairs and linear probes of the encoder, of raw
# pixels and of a random encoder of the same architecture (docs/configuration.md "Model card").
rule model_card:
    input:
        encoder="results/models/{model}/encoder.pt",
        index=PLAN.train_index,
        pairs=expand("results/pairs/{dataset}.h5", dataset=PLAN.datasets),
    output:
        quality="results/models/{model}/quality.json",
    params:
        model=lookup(dpath="models/{model}", within=config),
        datasets=PLAN.datasets,
        seed=config["seed"],
        device=config["device"],
        code=PLAN.code("model_card"),
    wildcard_constraints:
        model=alternatives(PLAN.trained_models),
    log:
        "logs/model_card/{model}.log",
    benchmark:
        "benchmarks/model_card/{model}.tsv"
    threads: 1  # the card sets one torch thread itself (same bytes whatever --cores)
    resources:
        gpu=TORCH_GPUS,
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/model_card.py"


# Downloads run on the submitting host (localrule: compute nodes often have no network), are cached across
# workflows (--cache, $SNAKEMAKE_OUTPUT_CACHE) and retried. A file placed by hand at the output path is used
# as it is (no download). Digest: pinned (ensure) or trusted on first use (<file>.sha256, verified later).
rule download_checkpoint:
    output:
        checkpoint=ensure("{checkpoint}", non_empty=True, sha256=PLAN.ensured_sha256),
    params:
        url=PLAN.checkpoint_url,
        sha256=PLAN.checkpoint_pin,
    wildcard_constraints:
        checkpoint=alternatives(PLAN.downloads),
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
        index=ensure(PLAN.tf_path("{tf_name}", "index"), non_empty=True, sha256=PLAN.tf_ensured_sha256("index")),
        data=ensure(PLAN.tf_path("{tf_name}", "data"), non_empty=True, sha256=PLAN.tf_ensured_sha256("data")),
    params:
        urls=PLAN.tf_urls,
        sha256=PLAN.tf_pins,
    wildcard_constraints:
        tf_name=alternatives(PLAN.tf_checkpoints),
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
        index=PLAN.conversion_input("index"),
        data=PLAN.conversion_input("data"),
    output:
        checkpoint=ensure("{checkpoint}", non_empty=True),
    params:
        width=PLAN.conversion_key("width"),
        ema=PLAN.conversion_key("ema", True),
        sha256=PLAN.checkpoint_pin,
        code=PLAN.code("convert_simclrv2"),
    wildcard_constraints:
        checkpoint=alternatives(PLAN.conversions),
    log:
        "logs/convert_simclrv2/{checkpoint}.log",
    cache: "omit-software"
    conda:
        "../envs/xai-ssl-tf.yaml"
    script:
        "../workflow/scripts/convert_simclrv2.py"


rule prepare_model:
    input:
        checkpoint=PLAN.model_checkpoint,
    output:
        encoder=ensure("results/models/{model}/encoder.pt", non_empty=True),
        info="results/models/{model}/source.json",
    params:
        model=PLAN.pretrained_params,
        sha256=PLAN.checkpoint_pin,
        url=PLAN.model_url,
        code=PLAN.code("prepare_model"),
    wildcard_constraints:
        model=alternatives(PLAN.pretrained_models),
    log:
        "logs/prepare_model/{model}.log",
    benchmark:
        "benchmarks/prepare_model/{model}.tsv"
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/prepare_model.py"
