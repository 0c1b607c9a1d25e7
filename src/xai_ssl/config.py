"""Config validation: the JSON schema (with defaults filled in) plus cross-checks against the registries."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from xai_ssl.methods import METHOD_REGISTRY
from xai_ssl.metrics import METRIC_REGISTRY
from xai_ssl.models.registry import ARCHITECTURES, PRETRAINED_SOURCES, TRAINABLE_ARCHITECTURES
from xai_ssl.models.traits import ModelTraits, config_traits

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "config.schema.yaml"
REFERENCE_PATH = SCHEMA_PATH.with_name("reference_sammani.csv")


class ConfigError(ValueError):
    """The config is invalid; the message names the key and the accepted values."""


def _with_defaults(cls: type) -> type:
    """A validator class that fills ``default`` values into the instance while validating."""
    validate_properties = cls.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: dict, instance: Any, schema: dict) -> Iterator[Any]:
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _alternative(schema: dict[str, Any]) -> str:
    """One branch of a oneOf/anyOf in words, e.g. 'an integer >= 1' or "'auto'"."""
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return "one of " + str(schema["enum"])
    text = f"a value of type {schema.get('type', 'any')}"
    if "minimum" in schema:
        text += f" >= {schema['minimum']}"
    return text


MAX_CONFIG_NODES = 100_000  # values, list items and dict entries of a config once YAML aliases are expanded
MAX_MESSAGE_CHARS = 300  # of a value rendered in a validation message


def _check_size(config: Any, budget: int = MAX_CONFIG_NODES) -> None:
    """Refuse a config with more than ``budget`` nodes once YAML aliases are expanded (an alias bomb: ``seed: *a``
    where ``a`` nests lists of lists), before anything renders or copies it; names the key that holds it.

    The walk stops at the budget, so it costs at most ``budget`` steps however large the expansion.
    """
    count = 0
    stack: list[tuple[Any, tuple[str, ...]]] = [(config, ())]  # (node, dict-key path)
    while stack:
        node, path = stack.pop()
        count += 1
        if count > budget:
            raise ConfigError(
                f"config key '{_key(path)}': the value has more than {budget} items once YAML aliases (&name / *name) are "
                f"expanded (an alias bomb?); write the value out"
            )
        if isinstance(node, dict):
            stack.extend((v, (*path, str(k))) for k, v in node.items())
        elif isinstance(node, (list, tuple)):
            stack.extend((v, path) for v in node)


def _bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters (values rendered into messages can be long)."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def _describe(error: jsonschema.ValidationError) -> str:
    msg = f"config key '{_key(error.absolute_path)}': {_bounded(error.message)}"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and "properties" in schema:
        msg += f"; accepted keys: {sorted(schema['properties'])}"
    if error.validator == "required" and "properties" in schema:
        msg += f"; keys of this section: {sorted(schema['properties'])}"
    if error.validator in ("oneOf", "anyOf"):
        msg += "; accepted: " + " or ".join(_alternative(alt) for alt in error.validator_value)
    if error.validator == "propertyNames":
        msg += " (names are lower-case snake_case)"
    if "description" in schema and error.validator != "additionalProperties":
        msg += f" ({schema['description']})"
    return msg


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """Read the YAML schema."""
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def validate_config(config: dict[str, Any], schema_path: Path = SCHEMA_PATH, check_paths: bool = True) -> dict[str, Any]:
    """Validate ``config`` in place (defaults filled) and cross-check names; raise ConfigError on the first problem.

    With ``check_paths``, the dataset folders are looked at too: they must exist, and the explained split (and
    a trained model's split) must exist and hold at least ``n_images`` images and ``n_shards`` shards (counted from
    the file listing: ``parameters.jsonl`` rows or image files; nothing is decoded).
    """
    _check_size(config)
    validator_cls = _with_defaults(jsonschema.Draft202012Validator)
    errors = sorted(validator_cls(load_schema(schema_path)).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(_describe(errors[0]))
    _cross_check(config, check_paths)
    return config


def _require_subset(section: str, names: list[str], accepted: list[str]) -> None:
    for name in names:
        if name not in accepted:
            raise ConfigError(f"config key 'run.{section}': {name!r} is not defined under '{section}'; accepted: {sorted(accepted)}")


# model keys of pretrained sources, and the sources each applies to (None = all pretrained sources)
PRETRAINED_KEYS: dict[str, tuple[str, ...] | None] = {
    "checkpoint": None,
    "url": None,
    "sha256": None,
    "reference": None,
    "width": ("simclrv2",),
    "ema": ("simclrv2",),
    "variant": ("torchvision_resnet",),
    "normalise": ("torchvision_resnet",),
    "layout": ("timm",),
    "network": ("timm",),
    "embedding": ("timm",),
    "mean": ("timm",),
    "std": ("timm",),
    "input_size": ("timm",),
    "model_kwargs": ("timm",),
    "factory": ("python",),
    "kwargs": ("python",),
}
TRAINING_KEYS = ("arch", "train_dataset")
SOURCE_ARCH = ("timm",)  # pretrained sources whose 'arch' names the architecture


def _check_pretrained(name: str, m: dict[str, Any]) -> None:
    """Keys that do not apply to a pretrained source are refused (naming the key and the sources it is for)."""
    source = m["source"]
    if source not in PRETRAINED_SOURCES:
        raise ConfigError(f"config key 'models.{name}.source': unknown source {source!r}; accepted: {['simclr_trained', *sorted(PRETRAINED_SOURCES)]}")
    for key, sources in PRETRAINED_KEYS.items():
        if sources is not None and m.get(key) is not None and source not in sources:
            raise ConfigError(f"config key 'models.{name}.{key}': only for source(s) {list(sources)}, not {source!r}")
    for key in TRAINING_KEYS:
        if m.get(key) is not None and not (key == "arch" and source in SOURCE_ARCH):
            raise ConfigError(f"config key 'models.{name}.{key}': only for source(s) {['simclr_trained', *SOURCE_ARCH] if key == 'arch' else ['simclr_trained']}, not {source!r}")
    if source == "timm":
        _check_timm(name, m)
    if m.get("arch_params"):
        raise ConfigError(f"config key 'models.{name}.arch_params': only for source 'simclr_trained', not {source!r}")
    ref = m.get("reference")
    if ref is not None and REFERENCE_PATH.is_file():
        with open(REFERENCE_PATH, encoding="utf-8") as fh:
            known = sorted({line.split(",", 1)[0] for line in fh.read().splitlines()[1:] if line.strip()})
        if ref not in known:
            raise ConfigError(f"config key 'models.{name}.reference': {ref!r} is not a model of {REFERENCE_PATH.name}; accepted: {known}")


def _check_timm(name: str, m: dict[str, Any]) -> None:
    """The timm architecture exists and is supported; embedding / network / input_size fit it."""
    from xai_ssl.models.timm_source import check_arch, model_family

    try:
        check_arch(m["arch"])
        family = model_family(m["arch"], m.get("model_kwargs"))
    except (ValueError, TypeError, ImportError) as exc:
        raise ConfigError(f"config key 'models.{name}.arch': {exc}") from exc
    if family != "vit" and m.get("embedding") == "cls":
        raise ConfigError(f"config key 'models.{name}.embedding': 'cls' needs a class token and {m['arch']!r} is a CNN; accepted: ['pooled', 'head']")
    if family != "vit" and m.get("input_size") is not None:
        raise ConfigError(f"config key 'models.{name}.input_size': applies to Vision Transformers only, and {m['arch']!r} is a CNN")
    if m.get("network") is not None and m.get("layout") not in (None, "auto", "dino_full"):
        raise ConfigError(f"config key 'models.{name}.network': only for layout 'dino_full' (or auto), not {m.get('layout')!r}")


_TRAITS: dict[str, ModelTraits] = {}


def model_traits(config: dict[str, Any], model: str) -> ModelTraits:
    """Traits of a configured model (built on the meta device where needed; cached per process)."""
    import json

    cfg = config["models"][model]
    key = json.dumps({k: cfg.get(k) for k in ("source", "arch", "arch_params", "variant", "width", "layout", "embedding", "input_size", "model_kwargs", "factory", "kwargs")}, sort_keys=True, default=str)
    if key not in _TRAITS:
        try:
            _TRAITS[key] = config_traits(cfg)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - a model that cannot be built is a config problem
            raise ConfigError(f"config key 'models.{model}': the model cannot be built to check which methods apply ({type(exc).__name__}: {exc})") from exc
    return _TRAITS[key]


def method_models(config: dict[str, Any], method: str) -> list[str]:
    """The run models a configured method explains (its ``models`` list, else all run models), in run order."""
    wanted = config["methods"][method].get("models")
    return [m for m in config["run"]["models"] if wanted is None or m in wanted]


def run_methods_for(config: dict[str, Any], model: str) -> list[str]:
    """The run methods (map and image methods) that explain ``model``, in run order."""
    return [n for n in config["run"]["methods"] if model in method_models(config, n)]


def _check_applicability(config: dict[str, Any], sizes: set[int]) -> None:
    """Every (run method, run model) pair is defined; ViT models get images of a multiple of their patch size."""
    run = config["run"]
    for n in run["methods"]:
        wanted = config["methods"][n].get("models")
        for model in wanted or []:
            if model not in config["models"]:
                raise ConfigError(f"config key 'methods.{n}.models': {model!r} is not a model; accepted: {sorted(config['models'])}")
    for model in run["models"]:
        traits = model_traits(config, model)
        if traits.patch_size:
            for d in run["datasets"]:
                size = int(config["datasets"][d]["image_size"])
                if size % traits.patch_size:
                    p = traits.patch_size
                    raise ConfigError(
                        f"config key 'datasets.{d}.image_size': {size} px is not a multiple of the patch size {p} of model {model!r} "
                        f"({traits.description}); accepted: multiples of {p}, e.g. {max(p, size // p * p)} or {(size // p + 1) * p}"
                    )
        for n in run["methods"]:
            if model not in method_models(config, n):
                continue
            spec = METHOD_REGISTRY[method_registry_name(config, n)]
            entry = config["methods"][n]
            for size in sizes:
                params = spec.resolve_params({**entry["params"], **entry.get("model_params", {}).get(model, {})}, size)
                reason = spec.not_defined_for(traits, params)
                if reason:
                    others = [m for m in method_models(config, n) if m != model]
                    raise ConfigError(
                        f"config key 'run.methods': method {n!r} is not defined for model {model!r}: {reason}. "
                        f"Leave the model out with methods.{n}.models: {others} or remove {n!r} from run.methods"
                    )


def method_registry_name(config: dict[str, Any], method: str) -> str:
    """Registry name of a configured method (its ``method`` key, or the config key itself)."""
    return config["methods"][method].get("method", method)


def method_params(config: dict[str, Any], method: str, model: str | None = None) -> dict[str, Any]:
    """The configured parameters of a method, with its per-model overrides (``model_params``) for ``model``."""
    entry = config["methods"][method]
    return {**entry.get("params", {}), **(entry.get("model_params", {}).get(model, {}) if model is not None else {})}


def _check_conflicts(config: dict[str, Any]) -> None:
    """Settings that are each valid but conflict (refused before any job starts)."""
    for name, ds in config["datasets"].items():
        lo, hi = ds["view_crop_scale"]
        if lo > hi:
            raise ConfigError(f"config key 'datasets.{name}.view_crop_scale': [min, max] with min <= max, got {[lo, hi]}")
        n_images = ds.get("n_images")
        if n_images is not None and ds["n_shards"] > n_images:
            raise ConfigError(f"config key 'datasets.{name}.n_shards': {ds['n_shards']} shards for n_images {n_images}; accepted: 1..{n_images} (no empty shards)")
        if ds["source"] == "synthetic_two4two" and ds.get("split") is not None:
            gen = ds.get("generate", {})
            if ds["split"] not in ("train", "validation", "test"):
                raise ConfigError(f"config key 'datasets.{name}.split': {ds['split']!r} is not generated; accepted: ['test', 'train', 'validation', null]")
            if int(gen.get(ds["split"], 0)) == 0:
                raise ConfigError(f"config key 'datasets.{name}.generate.{ds['split']}': 0 images generated in the explained split {ds['split']!r}; set it >= 1")
    for name, m in config["models"].items():
        if m["source"] != "simclr_trained":
            continue
        lo, hi = m["training"]["crop_scale"]
        if lo > hi:
            raise ConfigError(f"config key 'models.{name}.training.crop_scale': [min, max] with min <= max, got {[lo, hi]}")
        ds = config["datasets"].get(m["train_dataset"], {})
        split = m.get("train_split")
        if ds.get("source") == "synthetic_two4two" and split is not None and int(ds.get("generate", {}).get(split, 0)) == 0:
            raise ConfigError(f"config key 'models.{name}.train_split': dataset {m['train_dataset']!r} generates no {split!r} images; accepted: splits with images or null")


GENERATED_SPLITS = ("train", "validation", "test")


def split_sizes_of(config: dict[str, Any], name: str, check_paths: bool) -> dict[str | None, int] | None:
    """Images per split of dataset ``name`` before any job runs: generated sizes, or counted in the user's folder
    (``check_paths``); None when unknown until a job runs (archives, ImageNet)."""
    ds = config["datasets"][name]
    if ds["source"] == "synthetic_two4two":
        gen = ds.get("generate", {})
        return {s: int(gen.get(s, 0)) for s in GENERATED_SPLITS if int(gen.get(s, 0)) > 0}
    if check_paths and ds["source"] in ("two4two", "image_folder") and ds.get("path") and Path(ds["path"]).is_dir():
        from xai_ssl.data.manifest import split_sizes

        return split_sizes(ds["source"], Path(ds["path"]))
    return None


def _images_in(sizes: dict[str | None, int], split: str | None) -> int:
    return sum(sizes.values()) if split is None else sizes.get(split, 0)


def _where(split: str | None) -> str:
    return "the dataset" if split is None else f"split {split!r}"


def _check_split_sizes(config: dict[str, Any], check_paths: bool) -> None:
    """The explained split exists and holds n_images images and n_shards shards; a trained model's split exists."""
    sizes_of = {name: split_sizes_of(config, name, check_paths) for name in config["datasets"]}
    for name, ds in config["datasets"].items():
        sizes = sizes_of[name]
        split = ds.get("split")
        if ds["source"] == "two4two_archive" and split is not None and ds.get("extract_splits") is not None and split not in ds["extract_splits"]:
            raise ConfigError(f"config key 'datasets.{name}.split': {split!r} is not extracted; accepted: {sorted(ds['extract_splits'])} (extract_splits) or null")
        if sizes is None:
            continue
        if split is not None and split not in sizes:
            raise ConfigError(f"config key 'datasets.{name}.split': {split!r} has no images in {ds.get('path') or 'the generated data'}; accepted: {sorted(str(k) for k in sizes)} or null")
        available = _images_in(sizes, split)
        if available == 0:
            raise ConfigError(f"config key 'datasets.{name}.path': {ds.get('path')!r} holds no images{'' if split is None else f' in split {split!r}'}")
        n_images = ds.get("n_images")
        if n_images is not None and n_images > available:
            raise ConfigError(f"config key 'datasets.{name}.n_images': {n_images} images requested, but {_where(split)} has {available} images; accepted: 1..{available} or null")
        explained = available if n_images is None else n_images
        if ds["n_shards"] > explained:
            raise ConfigError(
                f"config key 'datasets.{name}.n_shards': {ds['n_shards']} shards for the {explained} explained images of {_where(split)}; "
                f"accepted: 1..{explained} (no empty shards)"
            )
    for name, m in config["models"].items():
        if m["source"] != "simclr_trained" or m.get("train_split") is None or m["train_dataset"] not in sizes_of:
            continue
        sizes = sizes_of[m["train_dataset"]]
        if sizes is not None and m["train_split"] not in sizes:
            raise ConfigError(f"config key 'models.{name}.train_split': dataset {m['train_dataset']!r} has no {m['train_split']!r} images; accepted: {sorted(str(k) for k in sizes)} or null")


def _cross_check(config: dict[str, Any], check_paths: bool) -> None:
    run = config["run"]
    _check_conflicts(config)
    for section in ("datasets", "models", "methods", "metrics"):
        _require_subset(section, run[section], list(config[section]))
    for name, ds in config["datasets"].items():
        if ds["source"] in ("two4two", "image_folder", "imagenet_val"):
            if not ds.get("path"):
                raise ConfigError(f"config key 'datasets.{name}.path': required for source {ds['source']!r}")
            # imagenet_val: not checked here, so a dry run shows the DAG before the data is in place;
            # the preparation job names the missing path
            if check_paths and ds["source"] != "imagenet_val" and not Path(ds["path"]).is_dir():
                raise ConfigError(f"config key 'datasets.{name}.path': folder {ds['path']!r} does not exist")
        if ds.get("pattern") is not None and ds["source"] != "imagenet_val":
            raise ConfigError(f"config key 'datasets.{name}.pattern': only for source 'imagenet_val', not {ds['source']!r}")
        if ds["source"] in ("image_folder", "imagenet_val") and ds.get("split") not in (None,):
            ds["split"] = None  # image folders and ImageNet val have no splits
        if check_paths and ds["source"] == "two4two_archive" and not ds.get("url") and not Path(ds["archive"]).is_file():
            raise ConfigError(f"config key 'datasets.{name}.archive': {ds['archive']!r} does not exist and 'url' is null; place the tar there, or set 'url'")
    _check_split_sizes(config, check_paths)
    made_by: dict[str, tuple[str, str]] = {}  # checkpoint file -> (model, url) of the rule that makes it
    for name, m in config["models"].items():
        if m["source"] != "simclr_trained":
            _check_pretrained(name, m)
            if m.get("url"):
                ckpt = str(m["checkpoint"])
                if Path(ckpt).is_absolute() or ".." in Path(ckpt).parts:
                    raise ConfigError(f"config key 'models.{name}.checkpoint': a downloaded checkpoint needs a path inside the working directory (e.g. resources/checkpoints/...), got {ckpt!r}")
                other = made_by.setdefault(ckpt, (name, m["url"]))
                if other[1] != m["url"]:
                    raise ConfigError(f"config key 'models.{name}.checkpoint': {ckpt!r} is also downloaded for model {other[0]!r} from another URL")
            continue
        if m["arch"] not in TRAINABLE_ARCHITECTURES:
            raise ConfigError(f"config key 'models.{name}.arch': {m['arch']!r} cannot be trained here; accepted: {list(TRAINABLE_ARCHITECTURES)}")
        if m["train_dataset"] not in config["datasets"]:
            raise ConfigError(
                f"config key 'models.{name}.train_dataset': {m['train_dataset']!r} is not a dataset; accepted: {sorted(config['datasets'])}"
            )
        accepted = sorted(inspect.signature(ARCHITECTURES[m["arch"]]).parameters)
        unknown = sorted(set(m["arch_params"]) - set(accepted))
        if unknown:
            raise ConfigError(f"config key 'models.{name}.arch_params': unknown parameter(s) {unknown}; accepted: {accepted}")
        for key in PRETRAINED_KEYS:
            if m.get(key) is not None:
                raise ConfigError(f"config key 'models.{name}.{key}': not used by source 'simclr_trained' (pretrained sources only)")
    sizes = {config["datasets"][d]["image_size"] for d in run["datasets"]}
    for name in run["methods"]:
        reg = method_registry_name(config, name)
        if reg not in METHOD_REGISTRY:
            raise ConfigError(f"config key 'methods.{name}.method': unknown method {reg!r}; accepted: {sorted(METHOD_REGISTRY)}")
        entry = config["methods"][name]
        for model, override in entry.get("model_params", {}).items():
            if model not in config["models"]:
                raise ConfigError(f"config key 'methods.{name}.model_params.{model}': not a model; accepted: {sorted(config['models'])}")
            for size in sizes:
                try:
                    METHOD_REGISTRY[reg].resolve_params({**entry["params"], **override}, size)
                except (KeyError, ValueError) as exc:
                    raise ConfigError(f"config key 'methods.{name}.model_params.{model}': {exc.args[0]}") from exc
        for size in sizes:
            try:
                METHOD_REGISTRY[reg].resolve_params(entry["params"], size)
            except (KeyError, ValueError) as exc:
                raise ConfigError(f"config key 'methods.{name}.params': {exc.args[0]}") from exc
    _check_applicability(config, sizes)
    if config.get("autocast", "none") != "none" and config.get("device") == "cpu":
        raise ConfigError(f"config key 'autocast': {config['autocast']!r} needs CUDA, but device is 'cpu'; accepted on CPU: 'none'")
    for name in run["metrics"]:
        if name not in METRIC_REGISTRY:
            raise ConfigError(f"config key 'run.metrics': unknown metric {name!r}; accepted: {sorted(METRIC_REGISTRY)}")
        for size in sizes:
            try:
                METRIC_REGISTRY[name].resolve_params(config["metrics"][name]["params"], size)
            except (KeyError, ValueError) as exc:
                raise ConfigError(f"config key 'metrics.{name}.params': {exc.args[0]}") from exc


def cuda_is_available() -> bool:
    """Whether torch sees a CUDA device here (an NVIDIA driver first, without importing torch; else torch, e.g. ROCm)."""
    from xai_ssl.hardware import nvidia_gpu_visible

    if nvidia_gpu_visible():
        return True
    import torch

    return bool(torch.cuda.is_available())


def used_datasets(config: dict[str, Any]) -> list[str]:
    """Datasets a run reads: the explained ones and those the run's trained models learn from."""
    models = config["models"]
    trained = [models[m]["train_dataset"] for m in config["run"]["models"] if models[m]["source"] == "simclr_trained"]
    return list(dict.fromkeys([*config["run"]["datasets"], *trained]))


def startup_problems(config: dict[str, Any], local: bool, cuda_available: Callable[[], bool] = cuda_is_available) -> list[str]:
    """What stops a real run (not a dry run) before any job starts, with the config key of each problem.

    ``local``: the jobs run on this machine (no cluster executor), so ``device: cuda`` needs CUDA here; on a
    cluster the GPU is on the compute nodes, and a job without one says so itself. An ImageNet ``path`` may
    be missing for a dry run (to see the DAG before the data is in place), not for a run.
    """
    problems = []
    device = str(config.get("device", "auto"))
    if local and device.startswith("cuda") and not cuda_available():
        problems.append(
            f"config key 'device': {device!r}, but this machine has no CUDA device (torch.cuda.is_available() is False); "
            f"accepted here: 'auto' or 'cpu' (or run with a cluster profile whose jobs get a GPU)"
        )
    for name in used_datasets(config):
        ds = config["datasets"][name]
        if ds["source"] == "imagenet_val" and ds.get("path") and not Path(ds["path"]).exists():
            problems.append(f"config key 'datasets.{name}.path': {ds['path']!r} does not exist; set it to a folder of {ds.get('pattern') or 'ILSVRC2012_val_*.JPEG'} files or to ILSVRC2012_img_val.tar")
    return problems
