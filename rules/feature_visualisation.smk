# Feature visualisation (image methods, MethodSpec.kind == "image"): dreamed images + details per
# dataset x model x method, and a figure. Not attributed, not scored.


rule feature_visualisation:
    input:
        pairs="results/pairs/{dataset}.h5",
        model="results/models/{model}/encoder.pt",
    output:
        images=ensure("results/feature_visualisation/{dataset}/{model}/{method}.h5", non_empty=True),
        figure=report(
            "results/figures/{dataset}/{model}/feature_visualisation_{method}.png",
            caption="../workflow/report/feature_visualisation.rst",
            category="Feature visualisation",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "{method}"},
        ),
    params:
        method=method_name,
        method_params=method_params,
        seed=config["seed"],
        device=config["device"],
        batch_size=config["batch_size"],
        speed={"channels_last": config["channels_last"], "autocast": config["autocast"]},
        progress=config["progress"],
        n_images=lookup(dpath="report/n_grid_images", within=config),
        code=lambda wildcards: method_code(wildcards) + code_fingerprint("plots"),
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
