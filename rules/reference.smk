# Reference comparison: per-cell difference of a model's scores and the reference results of Sammani et al.
# (config/reference_sammani.csv, methods-sammani.md §5.3), for models with a `reference:` name.


rule compare_reference:
    input:
        scores="results/tables/{dataset}/{model}/scores.csv",
        reference=REFERENCE_CSV,
    output:
        csv="results/tables/{dataset}/{model}/reference_diff.csv",
        md="results/tables/{dataset}/{model}/reference_diff.md",
    params:
        reference_model=lambda wildcards: config["models"][wildcards.model]["reference"],
        title="{dataset} / {model} vs Sammani et al. (reference README tables)",
        code=code_fingerprint("reference", "steps"),
    wildcard_constraints:
        model="|".join(re.escape(m) for m in REFERENCE_MODELS) or "(?!)",
    log:
        "logs/compare_reference/{dataset}/{model}.log",
    localrule: True
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/compare_reference.py"
