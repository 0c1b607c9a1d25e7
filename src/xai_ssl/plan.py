"""The workflow's plan: pure functions of the validated config (no Snakemake), used by the rule files.

Which datasets, models and methods run; which checkpoint and archive files the workflow downloads or
converts, with their pinned digests; the parameters each job gets; the final targets; and each rule's
code fingerprint. The rule files (``rules/*.smk``) build one :class:`Plan` and use its attributes as
wildcard constraints and its methods as input and parameter functions (they take Snakemake's
``wildcards`` object; any object with the same attributes works, which is how the tests call them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import yaml

from xai_ssl.data.manifest import USER_SOURCES, dataset_content
from xai_ssl.fingerprint import rule_fingerprint
from xai_ssl.models.simclrv2 import TF_CHECKPOINT_NAME

# the model keys a pretrained source's loader reads (prepare_model's ``model`` parameter: only these rerun it)
PRETRAINED_CONFIG_KEYS = (
    "source", "checkpoint", "width", "ema", "variant", "normalise",
    "arch", "layout", "network", "embedding", "mean", "std", "input_size", "model_kwargs", "factory", "kwargs",
)
TF_PARTS = {"index": ".index", "data": ".data-00000-of-00001"}
TRAINED_SOURCE = "simclr_trained"


def alternatives(names: Iterable[str]) -> str:
    """A wildcard constraint matching exactly the given names (one that never matches when there are none)."""
    return "|".join(re.escape(n) for n in sorted(set(names))) or "(?!)"


def read_checksums(path: Path) -> dict[str, str | None]:
    """Pinned digests by URL (``config/checksums.yaml``); {} when the file is absent."""
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


class Plan:
    """Everything the rules need to know about a validated config."""

    def __init__(self, config: dict[str, Any], checksums: dict[str, str | None] | None = None, reference_csv: str | None = None) -> None:
        from xai_ssl.config import method_models, method_registry_name
        from xai_ssl.methods import get_method

        self.config = config
        self.known_sha256 = dict(checksums or {})
        self.reference_csv = reference_csv
        run = config["run"]
        self.datasets: list[str] = list(run["datasets"])
        self.models: list[str] = list(run["models"])
        self.metrics: list[str] = list(run["metrics"])
        self.registry_name = {m: method_registry_name(config, m) for m in config["methods"]}
        self.specs = {m: get_method(self.registry_name[m]) for m in run["methods"]}
        # image methods (feature visualisation) write images, not maps; the map methods are attributed and scored
        self.image_methods = [m for m in run["methods"] if self.specs[m].kind == "image"]
        self.methods = [m for m in run["methods"] if m not in self.image_methods]
        # per model: the run methods that explain it (a method's ``models`` list can leave models out)
        explained_by = {m: method_models(config, m) for m in run["methods"]}
        self.model_methods = {model: [m for m in self.methods if model in explained_by[m]] for model in self.models}
        self.model_image_methods = {model: [m for m in self.image_methods if model in explained_by[m]] for model in self.models}
        models = config["models"]
        self.trained_models = [m for m, c in models.items() if c["source"] == TRAINED_SOURCE]
        self.pretrained_models = [m for m, c in models.items() if c["source"] != TRAINED_SOURCE]
        self.downloads = {models[m]["checkpoint"]: m for m in self.pretrained_models if models[m].get("url") and models[m]["source"] != "simclrv2"}
        self.conversions = {models[m]["checkpoint"]: m for m in self.pretrained_models if models[m].get("url") and models[m]["source"] == "simclrv2"}
        self.tf_checkpoints = {self.tf_name(m): models[m]["url"].rstrip("/") for m in self.conversions.values()}
        datasets = config["datasets"]
        self.imagenet_datasets = [d for d, c in datasets.items() if c["source"] == "imagenet_val"]
        self.indexed_datasets = [d for d in datasets if d not in self.imagenet_datasets]
        self.archive_datasets = [d for d, c in datasets.items() if c["source"] == "two4two_archive"]
        self.archive_downloads = {datasets[d]["archive"]: d for d in self.archive_datasets if datasets[d].get("url")}
        self.reference_models = [m for m, c in models.items() if c.get("reference")]
        self._content: dict[str, str] = {}  # dataset -> content manifest (computed when a rule first asks)

    # --- datasets ---------------------------------------------------------------------------------
    def shards(self, dataset: str) -> list[int]:
        """Shard numbers of a dataset."""
        return list(range(self.config["datasets"][dataset]["n_shards"]))

    def dataset_files(self, wildcards: Any) -> dict[str, str]:
        """The generated or extracted folder a dataset is indexed from (nothing for user folders)."""
        source = self.config["datasets"][wildcards.dataset]["source"]
        if source == "synthetic_two4two":
            return {"files": f"results/data/{wildcards.dataset}/files"}
        if source == "two4two_archive":
            return {"files": f"results/data/{wildcards.dataset}/extracted"}
        return {}

    def dataset_root(self, wildcards: Any) -> str:
        """Folder the index is built from."""
        files = self.dataset_files(wildcards)
        return files["files"] if files else str(Path(self.config["datasets"][wildcards.dataset]["path"]).resolve())

    def dataset_content(self, wildcards: Any) -> str:
        """The ``content`` parameter of a dataset's index: a manifest of its folder (names, sizes, mtimes), computed once.

        Generated and extracted folders are rule outputs (their producing job reruns what follows), so they get a constant.
        """
        c = self.config["datasets"][wildcards.dataset]
        if c["source"] not in USER_SOURCES:
            return "made by the workflow"
        if wildcards.dataset not in self._content:
            self._content[wildcards.dataset] = dataset_content(c["source"], Path(c["path"]).resolve(), c.get("pattern"))
        return self._content[wildcards.dataset]

    def dataset_path(self, wildcards: Any) -> str:
        """The user's folder or tar of an ImageNet validation dataset (absolute)."""
        return str(Path(self.config["datasets"][wildcards.dataset]["path"]).resolve())

    def dataset_key(self, key: str, default: Any = None) -> Callable[[Any], Any]:
        """A parameter function: the dataset entry's ``key`` (``default`` when absent)."""
        return lambda wildcards: self.config["datasets"][wildcards.dataset].get(key, default)

    def archive(self, wildcards: Any) -> str:
        """The archive file of a Two4Two archive dataset."""
        return self.config["datasets"][wildcards.dataset]["archive"]

    def archive_sha256(self, dataset: str) -> str | None:
        """Pinned digest of a dataset archive: the entry's sha256, else config/checksums.yaml by URL, else None."""
        c = self.config["datasets"][dataset]
        return c.get("sha256") or self.known_sha256.get(c.get("url"))

    def archive_url(self, wildcards: Any) -> str:
        """Where a downloaded archive comes from."""
        return self.config["datasets"][self.archive_downloads[wildcards.archive]]["url"]

    def archive_pin(self, wildcards: Any) -> str | None:
        """The pinned digest of an archive file (download rule) or of a dataset's archive (extraction rule)."""
        dataset = self.archive_downloads[wildcards.archive] if hasattr(wildcards, "archive") else wildcards.dataset
        return self.archive_sha256(dataset)

    def archive_ensured_sha256(self, wildcards: Any) -> str:
        """For ``ensure()``: the pinned digest of a downloaded archive, else the one the download recorded."""
        from xai_ssl.io.download import expected_digest, sha256_file

        return expected_digest(wildcards.archive, self.archive_pin(wildcards)) or sha256_file(wildcards.archive)

    # --- models -----------------------------------------------------------------------------------
    def train_index(self, wildcards: Any) -> str:
        """Index of the dataset a model is trained on."""
        return f"results/data/{self.config['models'][wildcards.model]['train_dataset']}/index.csv"

    def training_params(self, wildcards: Any) -> dict[str, Any]:
        """A trained model's entry without its ``card`` (a card change does not retrain)."""
        return {k: v for k, v in self.config["models"][wildcards.model].items() if k != "card"}

    def training_threads(self, wildcards: Any) -> int:
        """torch threads of a trained model's training (``training.threads``, default 1)."""
        return int(self.config["models"][wildcards.model].get("training", {}).get("threads", 1))

    def model_entry(self, wildcards: Any) -> dict[str, Any]:
        """A model's config entry."""
        return self.config["models"][wildcards.model]

    def model_checkpoint(self, wildcards: Any) -> str:
        """The checkpoint file of a pretrained model (downloaded, converted or placed by hand)."""
        return self.config["models"][wildcards.model]["checkpoint"]

    def model_url(self, wildcards: Any) -> str | None:
        """The URL a pretrained model's checkpoint is downloaded from (None: placed by hand)."""
        return self.config["models"][wildcards.model].get("url")

    def pretrained_params(self, wildcards: Any) -> dict[str, Any]:
        """The model keys the loader uses (so unrelated config changes do not rerun the preparation)."""
        c = self.config["models"][wildcards.model]
        return {k: c[k] for k in PRETRAINED_CONFIG_KEYS if c.get(k) is not None}

    def pinned_sha256(self, checkpoint: str) -> str | None:
        """Pinned digest of a checkpoint file: the model entry's sha256, else config/checksums.yaml by URL."""
        for m in self.pretrained_models:
            c = self.config["models"][m]
            if c["checkpoint"] == checkpoint:
                if c.get("sha256"):
                    return c["sha256"].lower()
                if c.get("url") and c["source"] != "simclrv2":
                    return self.known_sha256.get(c["url"])
        return None

    def checkpoint_pin(self, wildcards: Any) -> str | None:
        """The pinned digest of the checkpoint of a download/conversion job (``checkpoint``) or of a model (``model``)."""
        checkpoint = wildcards.checkpoint if hasattr(wildcards, "checkpoint") else self.model_checkpoint(wildcards)
        return self.pinned_sha256(checkpoint)

    def checkpoint_url(self, wildcards: Any) -> str:
        """Where a downloaded checkpoint comes from."""
        return self.config["models"][self.downloads[wildcards.checkpoint]]["url"]

    def ensured_sha256(self, wildcards: Any) -> str:
        """For ``ensure()``: the pinned digest of a downloaded checkpoint, else the one the job recorded (TOFU)."""
        from xai_ssl.io.download import expected_digest, sha256_file

        return expected_digest(wildcards.checkpoint, self.pinned_sha256(wildcards.checkpoint)) or sha256_file(wildcards.checkpoint)

    def tf_name(self, model: str) -> str:
        """Folder of a SimCLRv2 model's TF checkpoint: the last part of its URL (e.g. r50_2x_sk0)."""
        return PurePosixPath(urlparse(self.config["models"][model]["url"]).path).name

    def tf_url(self, tf_name: str, part: str) -> str:
        """URL of one file (``index`` or ``data``) of a TF checkpoint."""
        return f"{self.tf_checkpoints[tf_name]}/{TF_CHECKPOINT_NAME}{TF_PARTS[part]}"

    @staticmethod
    def tf_path(tf_name: str, part: str) -> str:
        """Where one file of a TF checkpoint is downloaded to."""
        return f"resources/checkpoints/simclrv2/tf/{tf_name}/{TF_CHECKPOINT_NAME}{TF_PARTS[part]}"

    def tf_urls(self, wildcards: Any) -> dict[str, str]:
        """Both URLs of a TF checkpoint."""
        return {part: self.tf_url(wildcards.tf_name, part) for part in TF_PARTS}

    def tf_pins(self, wildcards: Any) -> dict[str, str | None]:
        """The pinned digests of both files of a TF checkpoint (config/checksums.yaml by URL)."""
        return {part: self.known_sha256.get(self.tf_url(wildcards.tf_name, part)) for part in TF_PARTS}

    def tf_ensured_sha256(self, part: str) -> Callable[[Any], str]:
        """For ``ensure()``: the pinned or recorded digest of one file of a TF checkpoint."""

        def digest(wildcards: Any) -> str:
            from xai_ssl.io.download import expected_digest, sha256_file

            path = self.tf_path(wildcards.tf_name, part)
            return expected_digest(path, self.known_sha256.get(self.tf_url(wildcards.tf_name, part))) or sha256_file(path)

        return digest

    def conversion_input(self, part: str) -> Callable[[Any], str]:
        """The downloaded TF file (``index`` or ``data``) a converted checkpoint is made from."""
        return lambda wildcards: self.tf_path(self.tf_name(self.conversions[wildcards.checkpoint]), part)

    def conversion_key(self, key: str, default: Any = None) -> Callable[[Any], Any]:
        """A parameter function: the converted model entry's ``key``."""
        return lambda wildcards: self.config["models"][self.conversions[wildcards.checkpoint]].get(key, default)

    def reference_model(self, wildcards: Any) -> str:
        """The reference table's name of a model (``reference:``)."""
        return self.config["models"][wildcards.model]["reference"]

    # --- methods and metrics ----------------------------------------------------------------------
    def method_name(self, wildcards: Any) -> str:
        """Registry name of the configured method."""
        return self.registry_name[wildcards.method]

    def method_params(self, wildcards: Any) -> dict[str, Any]:
        """The configured parameters of a method, with its per-model overrides for this model."""
        from xai_ssl.config import method_params

        return method_params(self.config, wildcards.method, wildcards.model)

    def metric_params(self, wildcards: Any = None) -> dict[str, dict[str, Any]]:
        """Parameters of every metric that is run."""
        return {m: self.config["metrics"][m]["params"] for m in self.metrics}

    def metric_directions(self) -> dict[str, str]:
        """Reported columns and their arrows, in the paper's order."""
        from xai_ssl.metrics import metric_directions

        return metric_directions(self.metrics)

    def method_families(self) -> dict[str, str]:
        """Registry family of every map method by config name ("baseline" for baselines): table order and figure colours."""
        return {m: self.specs[m].family for m in self.methods}

    def method_pair_families(self) -> dict[str, str]:
        """Pair family of every map method by config name: significance tests only methods on random_baseline's pairs."""
        return {m: self.specs[m].pair_family for m in self.methods}

    def methods_for(self, model: str) -> list[str]:
        """The map methods that explain ``model``, in run order."""
        return self.model_methods[model]

    def image_methods_for(self, model: str) -> list[str]:
        """The image methods (feature visualisation) run on ``model``, in run order."""
        return self.model_image_methods[model]

    def method_shard_files(self, pattern: str) -> Callable[[Any], list[str]]:
        """An input function: ``pattern`` expanded over the map methods of a model and the shards of a dataset."""

        def inputs(wildcards: Any) -> list[str]:
            return [
                pattern.format(dataset=wildcards.dataset, model=wildcards.model, method=m, shard=s)
                for m in self.methods_for(wildcards.model)
                for s in self.shards(wildcards.dataset)
            ]

        return inputs

    def shard_methods(self, wildcards: Any) -> list[str]:
        """The method name of every file listed by :meth:`method_shard_files`."""
        return [m for m in self.methods_for(wildcards.model) for _ in self.shards(wildcards.dataset)]

    # --- code fingerprints ------------------------------------------------------------------------
    def code(self, rule: str) -> str:
        """The ``code`` parameter of a rule whose jobs run no registry plugin."""
        return rule_fingerprint(rule)

    def method_code(self, rule: str) -> Callable[[Any], str]:
        """The ``code`` parameter of a per-method rule: its stage's code and the configured method's module."""
        return lambda wildcards: rule_fingerprint(rule, [self.specs[wildcards.method].module])

    def metrics_code(self, rule: str) -> Callable[[Any], str]:
        """The ``code`` of a metric job: its stage, the run's metric modules and the scored method's module."""
        from xai_ssl.metrics import get_metric

        modules = [get_metric(m).module for m in self.metrics]
        return lambda wildcards: rule_fingerprint(rule, [*modules, self.specs[wildcards.method].module])

    # --- targets ----------------------------------------------------------------------------------
    def model_targets(self) -> list[str]:
        """Per model: the training loss and model card figures (trained here) or the provenance record (pretrained)."""
        out: list[str] = []
        for m in self.models:
            trained = m in self.trained_models
            out += [f"results/models/{m}/training_loss.png", f"results/models/{m}/quality.png"] if trained else [f"results/models/{m}/source.json"]
        return out

    def reference_targets(self) -> list[str]:
        """Difference tables of every (dataset, model) whose model has a reference."""
        return [
            f"results/tables/{d}/{m}/reference_diff.{ext}"
            for d in self.datasets
            for m in self.models
            if m in self.reference_models
            for ext in ("csv", "md")
        ]

    def final_targets(self) -> list[str]:
        """Tables, figures and model artefacts of the whole grid."""
        out: list[str] = []
        for d in self.datasets:
            for m in self.models:
                out += [f"results/figures/{d}/{m}/feature_visualisation_{k}.png" for k in self.image_methods_for(m)]
                if not self.methods_for(m):
                    continue
                out += [
                    f"results/tables/{d}/{m}/scores.md",
                    f"results/tables/{d}/{m}/scores.csv",
                    f"results/figures/{d}/{m}/attribution_grid.png",
                    f"results/figures/{d}/{m}/insertion_deletion_curves.png",
                    f"results/figures/{d}/{m}/metric_bars.png",
                    f"results/explorer/{d}/{m}",
                ]
        return out + self.model_targets() + self.reference_targets()

