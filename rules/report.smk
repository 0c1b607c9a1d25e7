# Figures for the report: attribution grid, insertion/deletion curves, metric bars (combined and per metric).


rule plot_attribution_grid:
    input:
        pairs="results/pairs/{dataset}.h5",
        maps=method_shard_files("results/attributions/{dataset}/{model}/{method}/shard-{shard}.h5"),
    output:
        figure=report(
            "results/figures/{dataset}/{model}/attribution_grid.png",
            caption="../workflow/report/attribution_grid.rst",
            category="Attribution maps",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "attribution grid"},
        ),
    params:
        methods=shard_methods,
        n_images=lookup(dpath="report/n_grid_images", within=config),
        code=code_fingerprint("plots", "steps"),
    log:
        "logs/plot_attribution_grid/{dataset}/{model}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/plot_attribution_grid.py"


rule plot_curves:
    input:
        curves=method_shard_files("results/metrics/{dataset}/{model}/{method}/shard-{shard}.curves.h5"),
    output:
        figure=report(
            "results/figures/{dataset}/{model}/insertion_deletion_curves.png",
            caption="../workflow/report/curves.rst",
            category="Faithfulness",
            subcategory="{dataset}",
            labels={"model": "{model}", "figure": "insertion/deletion curves"},
        ),
    params:
        methods=shard_methods,
        title="{dataset} / {model}",
        code=code_fingerprint("plots", "method_roles", "significance", "steps"),
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
        metrics=METRICS,
        title="{dataset} / {model}",
        code=code_fingerprint("plots", "method_roles", "significance", "steps"),
    log:
        "logs/plot_metric_bars/{dataset}/{model}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/plot_metric_bars.py"
