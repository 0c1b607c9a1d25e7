# xai-ssl: explain self-supervised vision encoders and measure the explanations.
# data -> models -> attribution (pairs -> maps) -> evaluation (metrics -> tables) -> report (figures)
from snakemake.utils import min_version

min_version("9.20")


configfile: "config/config.yaml"


include: "rules/common.smk"


report: "workflow/report/workflow.rst"


include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/attribution.smk"
include: "rules/evaluation.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        PLAN.final_targets(),
