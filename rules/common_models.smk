# Helper functions of the pretrained-model, ImageNet and reference rules (rules/models.smk, rules/data.smk,
# rules/reference.smk): which models are trained or pretrained, the checkpoint files the workflow can make
# (download, TF conversion) and their digests, the ImageNet datasets, and the extra targets.

from pathlib import PurePosixPath
from urllib.parse import urlparse

import yaml

from xai_ssl.models.download import expected_digest, sha256_file
from xai_ssl.models.simclrv2 import TF_CHECKPOINT_NAME

PRETRAINED_CONFIG_KEYS = ("source", "checkpoint", "width", "ema", "variant", "normalise",
                          "arch", "layout", "network", "embedding", "mean", "std", "input_size", "model_kwargs", "factory", "kwargs")
TF_PARTS = {"index": ".index", "data": ".data-00000-of-00001"}
_CHECKSUMS_FILE = Path(workflow.basedir) / "config" / "checksums.yaml"
KNOWN_SHA256 = (yaml.safe_load(_CHECKSUMS_FILE.read_text()) or {}) if _CHECKSUMS_FILE.is_file() else {}


def _one_of(names):
    """Wildcard constraint matching exactly the given names (never matches when there are none)."""
    return "|".join(re.escape(n) for n in sorted(set(names))) or "(?!)"


TRAINED_MODELS = [m for m, c in config["models"].items() if c["source"] == "simclr_trained"]
PRETRAINED_MODELS = [m for m, c in config["models"].items() if c["source"] != "simclr_trained"]


def _tf_name(model):
    """Folder of a SimCLRv2 model's TF checkpoint: the last part of its URL (e.g. r50_2x_sk0)."""
    return PurePosixPath(urlparse(config["models"][model]["url"]).path).name


# checkpoint file -> model, for the checkpoints the workflow can make (downloaded, or converted from TF)
DOWNLOADS = {
    config["models"][m]["checkpoint"]: m
    for m in PRETRAINED_MODELS
    if config["models"][m].get("url") and config["models"][m]["source"] != "simclrv2"
}
CONVERSIONS = {
    config["models"][m]["checkpoint"]: m
    for m in PRETRAINED_MODELS
    if config["models"][m].get("url") and config["models"][m]["source"] == "simclrv2"
}
TF_CHECKPOINTS = {_tf_name(m): config["models"][m]["url"].rstrip("/") for m in CONVERSIONS.values()}


def pinned_sha256(checkpoint):
    """Pinned digest of a checkpoint file: the model entry's sha256, else config/checksums.yaml by URL."""
    for m in PRETRAINED_MODELS:
        c = config["models"][m]
        if c["checkpoint"] == checkpoint:
            if c.get("sha256"):
                return c["sha256"].lower()
            if c.get("url") and c["source"] != "simclrv2":
                return KNOWN_SHA256.get(c["url"])
    return None


def ensured_sha256(path):
    """For ensure(): the pinned digest, else the one the job recorded (trust on first use)."""
    return expected_digest(path, pinned_sha256(path)) or sha256_file(path)


def tf_url(wildcards, part):
    return f"{TF_CHECKPOINTS[wildcards.tf_name]}/{TF_CHECKPOINT_NAME}{TF_PARTS[part]}"


def tf_path(tf_name, part):
    return f"resources/checkpoints/simclrv2/tf/{tf_name}/{TF_CHECKPOINT_NAME}{TF_PARTS[part]}"


def tf_ensured_sha256(part):
    def digest(wildcards):
        return expected_digest(tf_path(wildcards.tf_name, part), KNOWN_SHA256.get(tf_url(wildcards, part))) or sha256_file(
            tf_path(wildcards.tf_name, part)
        )

    return digest


def model_checkpoint(wildcards):
    """The checkpoint file of a pretrained model (downloaded, converted or placed by hand)."""
    return config["models"][wildcards.model]["checkpoint"]


def pretrained_params(wildcards):
    """The model keys the loader uses (so unrelated config changes do not rerun the preparation)."""
    c = config["models"][wildcards.model]
    return {k: c[k] for k in PRETRAINED_CONFIG_KEYS if c.get(k) is not None}


def model_targets(models):
    """Per model: the training loss figure (trained here) or the provenance record (pretrained)."""
    return [
        f"results/models/{m}/training_loss.png" if m in TRAINED_MODELS else f"results/models/{m}/source.json"
        for m in models
    ]


# ImageNet validation datasets (rules/data.smk)
IMAGENET_DATASETS = [d for d, c in config["datasets"].items() if c["source"] == "imagenet_val"]
INDEXED_DATASETS = [d for d in config["datasets"] if d not in IMAGENET_DATASETS]


def _dataset_names(names):
    """Wildcard constraint matching exactly the given dataset names (never matches when there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


# Two4Two archives (rules/two4two.smk)
ARCHIVE_DATASETS = [d for d, c in config["datasets"].items() if c["source"] == "two4two_archive"]
# archive file -> dataset, for the archives the workflow downloads (entries with a url)
ARCHIVE_DOWNLOADS = {config["datasets"][d]["archive"]: d for d in ARCHIVE_DATASETS if config["datasets"][d].get("url")}


def archive_sha256(dataset):
    """Pinned digest of a dataset archive: the entry's sha256, else config/checksums.yaml by URL, else None."""
    c = config["datasets"][dataset]
    return c.get("sha256") or KNOWN_SHA256.get(c.get("url"))


def archive_ensured_sha256(wildcards):
    """For ensure(): the pinned digest, else the one the download recorded (trust on first use)."""
    path = wildcards.archive
    return expected_digest(path, archive_sha256(ARCHIVE_DOWNLOADS[path])) or sha256_file(path)


# reference comparison (rules/reference.smk)
REFERENCE_CSV = str(Path(workflow.basedir) / "config" / "reference_sammani.csv")
REFERENCE_MODELS = [m for m, c in config["models"].items() if c.get("reference")]


def reference_targets(datasets, models):
    """Difference tables of every (dataset, model) whose model has a reference."""
    return [
        f"results/tables/{d}/{m}/reference_diff.{ext}"
        for d in datasets
        for m in models
        if m in REFERENCE_MODELS
        for ext in ("csv", "md")
    ]
