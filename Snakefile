# xai-ssl: explain self-supervised vision encoders and measure the explanations.
# data -> model -> pairs -> attributions (HDF5) -> metrics -> tables -> figures / report
from snakemake.utils import min_version

min_version("9.20")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/common_models.smk"


report: "workflow/report/workflow.rst"


include: "rules/data.smk"
include: "rules/two4two.smk"
include: "rules/models.smk"
include: "rules/attribution.smk"
include: "rules/evaluation.smk"
include: "rules/report.smk"
include: "rules/reference.smk"
include: "rules/feature_visualisation.smk"


rule all:
    default_target: True
    input:
        final_targets(),
