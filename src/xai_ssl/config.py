"""Config validation: the JSON schema (with defaults filled in) plus cross-checks against the registries."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from xai_ssl.methods import METHOD_REGISTRY
from xai_ssl.metrics import METRIC_REGISTRY
from xai_ssl.models.registry import ARCHITECTURES

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "config.schema.yaml"


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


def _describe(error: jsonschema.ValidationError) -> str:
    msg = f"config key '{_key(error.absolute_path)}': {error.message}"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and "properties" in schema:
        msg += f"; accepted keys: {sorted(schema['properties'])}"
    if error.validator == "required" and "properties" in schema:
        msg += f"; keys of this section: {sorted(schema['properties'])}"
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
    """Validate ``config`` in place (defaults filled) and cross-check names; raise ConfigError on the first problem."""
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


def method_registry_name(config: dict[str, Any], method: str) -> str:
    """Registry name of a configured method (its ``method`` key, or the config key itself)."""
    return config["methods"][method].get("method", method)


def _cross_check(config: dict[str, Any], check_paths: bool) -> None:
    run = config["run"]
    for section in ("datasets", "models", "methods", "metrics"):
        _require_subset(section, run[section], list(config[section]))
    for name, ds in config["datasets"].items():
        if ds["source"] in ("two4two", "image_folder"):
            if not ds.get("path"):
                raise ConfigError(f"config key 'datasets.{name}.path': required for source {ds['source']!r}")
            if check_paths and not Path(ds["path"]).is_dir():
                raise ConfigError(f"config key 'datasets.{name}.path': folder {ds['path']!r} does not exist")
        if ds["source"] == "image_folder" and ds.get("split") not in (None,):
            ds["split"] = None  # image folders have no splits
    for name, m in config["models"].items():
        if m["train_dataset"] not in config["datasets"]:
            raise ConfigError(
                f"config key 'models.{name}.train_dataset': {m['train_dataset']!r} is not a dataset; accepted: {sorted(config['datasets'])}"
            )
        accepted = sorted(inspect.signature(ARCHITECTURES[m["arch"]]).parameters)
        unknown = sorted(set(m["arch_params"]) - set(accepted))
        if unknown:
            raise ConfigError(f"config key 'models.{name}.arch_params': unknown parameter(s) {unknown}; accepted: {accepted}")
    sizes = {config["datasets"][d]["image_size"] for d in run["datasets"]}
    for name in run["methods"]:
        reg = method_registry_name(config, name)
        if reg not in METHOD_REGISTRY:
            raise ConfigError(f"config key 'methods.{name}.method': unknown method {reg!r}; accepted: {sorted(METHOD_REGISTRY)}")
        for size in sizes:
            try:
                METHOD_REGISTRY[reg].resolve_params(config["methods"][name]["params"], size)
            except (KeyError, ValueError) as exc:
                raise ConfigError(f"config key 'methods.{name}.params': {exc.args[0]}") from exc
    for name in run["metrics"]:
        if name not in METRIC_REGISTRY:
            raise ConfigError(f"config key 'run.metrics': unknown metric {name!r}; accepted: {sorted(METRIC_REGISTRY)}")
        for size in sizes:
            try:
                METRIC_REGISTRY[name].resolve_params(config["metrics"][name]["params"], size)
            except (KeyError, ValueError) as exc:
                raise ConfigError(f"config key 'metrics.{name}.params': {exc.args[0]}") from exc
