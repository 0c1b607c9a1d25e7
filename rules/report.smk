# Figures for the report: attribution grid, insertion/deletion curves, metric bars (combined and per metric),
# training loss, feature visualisation. Figure rules only read what compute rules wrote.


rule plot_attribution_grid:
    input:
        pairs="results/pairs/{dataset}.h5",
        maps=PLAN.method_shard_files("results/attributions/{dataset}/{model}/{method}/shard-{shard}.h5"),
    output:
        figure=report(
            "results/figures/{dataset}/{model}/attribution_grid.png",
            caption="../workflow/report/attribution_grid.rst",
            category="Attribution maps",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "attribution grid"},
        ),
    params:
        methods=PLAN.shard_methods,
        n_images=lookup(dpath="report/n_grid_images", within=config),
        code=PLAN.code("plot_attribution_grid"),
    log:
        "logs/plot_attribution_grid/{dataset}/{model}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/plot_attribution_grid.py"


rule plot_curves:
    input:
        curves=PLAN.method_shard_files("results/metrics/{dataset}/{model}/{method}/shard-{shard}.curves.h5"),
    output:
        figure=report(
            "results/figures/{dataset}/{model}/insertion_deletion_curves.png",
            caption="../workflow/report/curves.rst",
            category="Faithfulness",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "insertion/deletion curves"},
        ),
    params:
        methods=PLAN.shard_methods,
        families=PLAN.method_families(),  # colour per family, baselines grey
        title="{dataset} / {model}",
        code=PLAN.code("plot_curves"),
    log:
        "logs/plot_curves/{dataset}/{model}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/plot_curves.py"


rule plot_metric_bars:
    input:
        long="results/tables/{dataset}/{model}/per_image.csv",
    output:
        figure=report(
            "results/figures/{dataset}/{model}/metric_bars.png",
            caption="../workflow/report/metric_bars.rst",
            category="Faithfulness",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "metric bars"},
        ),
        panels=report(
            "results/figures/{dataset}/{model}/metric_panels.png",
            caption="../workflow/report/metric_panels.rst",
            category="Faithfulness",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "metric panels"},
        ),
    params:
        directions=PLAN.metric_directions(),
        families=PLAN.method_families(),  # colour per family, baselines grey
        title="{dataset} / {model}",
        code=PLAN.code("plot_metric_bars"),
    log:
        "logs/plot_metric_bars/{dataset}/{model}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/plot_metric_bars.py"


rule plot_training_loss:
    input:
        history="results/models/{model}/training.csv",
    output:
        figure=report(
            "results/models/{model}/training_loss.png",
            caption="../workflow/report/training_loss.rst",
            category="Models",
            labels={"model": "{model}", "figure": "training loss"},
        ),
    params:
        code=PLAN.code("plot_training_loss"),
    wildcard_constraints:
        model=alternatives(PLAN.trained_models),
    log:
        "logs/plot_training_loss/{model}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/plot_training_loss.py"


rule plot_model_card:
    input:
        quality="results/models/{model}/quality.json",
    output:
        figure=report(
            "results/models/{model}/quality.png",
            caption="../workflow/report/model_card.rst",
            category="Models",
            labels={"model": "{model}", "figure": "model card"},
        ),
    params:
        code=PLAN.code("plot_model_card"),
    wildcard_constraints:
        model=alternatives(PLAN.trained_models),
    log:
        "logs/plot_model_card/{model}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/plot_model_card.py"


rule plot_feature_visualisation:
    input:
        images="results/feature_visualisation/{dataset}/{model}/{method}.h5",
        pairs="results/pairs/{dataset}.h5",
    output:
        figure=report(
            "results/figures/{dataset}/{model}/feature_visualisation_{method}.png",
            caption="../workflow/report/feature_visualisation.rst",
            category="Feature visualisation",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "{method}"},
        ),
    params:
        n_images=lookup(dpath="report/n_grid_images", within=config),
        title="{dataset} / {model} / {method}",
        code=PLAN.code("plot_feature_visualisation"),
    log:
        "logs/plot_feature_visualisation/{dataset}/{model}/{method}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/plot_feature_visualisation.py"


# The offline results explorer: one self-contained HTML page per dataset x model (docs/explorer.md).
rule build_explorer:
    input:
        pairs="results/pairs/{dataset}.h5",
        encoder="results/models/{model}/encoder.pt",
        maps=PLAN.method_shard_files("results/attributions/{dataset}/{model}/{method}/shard-{shard}.h5"),
        scores=PLAN.method_shard_files("results/metrics/{dataset}/{model}/{method}/shard-{shard}.csv"),
        curves=PLAN.method_shard_files("results/metrics/{dataset}/{model}/{method}/shard-{shard}.curves.h5"),
    output:
        explorer=report(
            directory("results/explorer/{dataset}/{model}"),
            caption="../workflow/report/explorer.rst",
            htmlindex="index.html",
            category="Explorer",
            subcategory="{dataset}",
            labels={"model": "{model}", "page": "results explorer"},
        ),
    params:
        methods=PLAN.shard_methods,
        directions=PLAN.metric_directions(),
        title="{dataset} / {model}",
        families=PLAN.method_families(),  # baselines shown apart
        batch_size=config["batch_size"],
        code=PLAN.code("build_explorer"),
    log:
        "logs/build_explorer/{dataset}/{model}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/build_explorer.py"
