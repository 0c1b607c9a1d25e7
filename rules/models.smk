# Models: encoders trained in the workflow with SimCLR (checkpoint, loss table and figure).


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
    log:
        "logs/train_model/{model}.log",
    benchmark:
        "benchmarks/train_model/{model}.tsv"
    threads: 2
    resources:
        gpu=1,
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/train_model.py"
