# Helper functions only: config validation, targets, wildcard constraints, code fingerprints.
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

from xai_ssl.config import ConfigError, method_registry_name, run_methods_for, validate_config
from xai_ssl.hardware import nvidia_gpu_visible, torch_job_resources
from xai_ssl.methods import get_method
from xai_ssl.provenance import code_fingerprint, sibling_dependencies

try:
    validate_config(config, Path(workflow.basedir) / "config" / "config.schema.yaml")
except ConfigError as exc:
    raise WorkflowError(f"Invalid configuration: {exc}") from None

# Torch jobs (attributions, metrics, feature visualisation, training) hold the GPU when there is one: gpu=1 each,
# one at a time under `--resources gpu=1`. Without a GPU they request none and the compute jobs take
# `cpu_threads` threads each, so `--cores all` runs several at once. The SLURM profile requests gpu=1 on these
# rules whatever the submitting host has.
TORCH_GPUS, TORCH_THREADS = torch_job_resources(config["device"], config["cpu_threads"], nvidia_gpu_visible())

RUN = config["run"]
DATASETS = RUN["datasets"]
MODELS = RUN["models"]
# image methods (MethodSpec.kind == "image", e.g. feature visualisation) write images, not maps:
# rules/feature_visualisation.smk; METHODS = the map methods that are attributed and scored
IMAGE_METHODS = [m for m in RUN["methods"] if get_method(method_registry_name(config, m)).kind == "image"]
METHODS = [m for m in RUN["methods"] if m not in IMAGE_METHODS]
METRICS = RUN["metrics"]


def model_methods(model):
    """The map methods that explain ``model`` (a method's ``models`` list can leave models out)."""
    return [m for m in run_methods_for(config, model) if m in METHODS]


def model_image_methods(model):
    """The image methods (feature visualisation) run on ``model``."""
    return [m for m in run_methods_for(config, model) if m in IMAGE_METHODS]


def _alternatives(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    dataset=_alternatives(config["datasets"]),
    model=_alternatives(config["models"]),
    method=_alternatives(config["methods"]),
    shard=r"\d+",


def shards(dataset):
    """Shard numbers of a dataset."""
    return list(range(config["datasets"][dataset]["n_shards"]))


def dataset_files(wildcards):
    """Generated files of a synthetic dataset (nothing for user folders)."""
    if config["datasets"][wildcards.dataset]["source"] == "synthetic_two4two":
        return {"files": f"results/data/{wildcards.dataset}/files"}
    if config["datasets"][wildcards.dataset]["source"] == "two4two_archive":
        return {"files": f"results/data/{wildcards.dataset}/extracted"}  # rules/two4two.smk
    return {}


def dataset_root(wildcards):
    """Folder the index is built from."""
    ds = config["datasets"][wildcards.dataset]
    if ds["source"] == "synthetic_two4two":
        return f"results/data/{wildcards.dataset}/files"
    if ds["source"] == "two4two_archive":
        return f"results/data/{wildcards.dataset}/extracted"
    return str(Path(ds["path"]).resolve())


def train_index(wildcards):
    """Index of the dataset a model is trained on."""
    return f"results/data/{config['models'][wildcards.model]['train_dataset']}/index.csv"


def method_name(wildcards):
    """Registry name of the configured method."""
    return method_registry_name(config, wildcards.method)


def method_params(wildcards):
    """The configured parameters of a method, with its per-model overrides for this model."""
    entry = config["methods"][wildcards.method]
    return {**entry.get("params", {}), **entry.get("model_params", {}).get(wildcards.model, {})}


def method_code(wildcards):
    """Fingerprint of the code a method's attributions depend on (its own module, not the others)."""
    spec = get_method(method_registry_name(config, wildcards.method))
    corpus = ("corpus",) if spec.needs_corpus else ()  # reference-image loading (COCOA, VDSN, embedded Grad-CAM)
    return code_fingerprint(*sibling_dependencies(spec.fn.__module__), "methods.base", "attribution", "models", "pairs", "augment", "steps", *corpus)


def metric_params(wildcards):
    """Parameters of every metric that is run."""
    return {m: config["metrics"][m]["params"] for m in METRICS}


def method_shard_files(pattern):
    """Input function: ``pattern`` expanded over all methods and shards of a (dataset, model)."""

    def inputs(wildcards):
        return [
            pattern.format(dataset=wildcards.dataset, model=wildcards.model, method=m, shard=s)
            for m in model_methods(wildcards.model)
            for s in shards(wildcards.dataset)
        ]

    return inputs


def shard_methods(wildcards):
    """The method name of every file listed by :func:`method_shard_files`."""
    return [m for m in model_methods(wildcards.model) for _ in shards(wildcards.dataset)]


def final_targets():
    """Tables, figures and model artefacts of the whole grid."""
    out = []
    for d in DATASETS:
        for m in MODELS:
            out += [
                f"results/figures/{d}/{m}/feature_visualisation_{k}.png" for k in model_image_methods(m)
            ]  # rules/feature_visualisation.smk
            if not model_methods(m):
                continue
            out += [
                f"results/tables/{d}/{m}/scores.md",
                f"results/tables/{d}/{m}/scores.csv",
                f"results/figures/{d}/{m}/attribution_grid.png",
                f"results/figures/{d}/{m}/insertion_deletion_curves.png",
                f"results/figures/{d}/{m}/metric_bars.png",
            ]
    out += model_targets(MODELS)  # rules/models.smk: loss figure (trained here) or source.json (pretrained)
    out += reference_targets(DATASETS, MODELS)  # rules/reference.smk: difference tables vs the paper
    return out
