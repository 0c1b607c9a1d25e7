"""Config validation: schema defaults, and errors that name the key and the accepted values."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import REPO
from helpers import config_refused as raises
from xai_ssl.config import validate_config

CONFIG = REPO / "config" / "config.yaml"


@pytest.fixture
def cfg() -> dict[str, Any]:
    with open(CONFIG, encoding="utf-8") as fh:
        return copy.deepcopy(yaml.safe_load(fh))


def first(section: dict[str, Any]) -> str:
    return next(iter(section))


def test_default_config_validates_and_fills_defaults(cfg: dict[str, Any]) -> None:
    cfg.pop("report", None)
    cfg.pop("batch_size", None)
    ds = first(cfg["datasets"])
    cfg["datasets"][ds].pop("n_shards", None)
    out = validate_config(cfg)
    assert out is cfg
    assert cfg["batch_size"] == 32
    assert cfg["report"] == {"n_grid_images": 4}
    assert cfg["datasets"][ds]["n_shards"] == 1
    assert isinstance(cfg["seed"], int) and cfg["seed"] >= 0
    assert isinstance(cfg["progress"], bool)
    model = cfg["models"][first(cfg["models"])]
    assert model["training"]["weight_decay"] == pytest.approx(1e-6)  # nested default
    assert cfg["methods"]["gradcam"]["params"] == {}
    for m in cfg["run"]["methods"]:
        assert "params" in cfg["methods"][m]


def test_unknown_method_in_run(cfg: dict[str, Any]) -> None:
    cfg["run"]["methods"].append("smoothgrad")
    raises(cfg, "run.methods", "smoothgrad", "accepted", "gradcam", "conditional_occlusion")


def test_unknown_registry_method(cfg: dict[str, Any]) -> None:
    cfg["methods"]["my_cam"] = {"method": "interaction_cam"}
    cfg["run"]["methods"].append("my_cam")
    raises(cfg, "methods.my_cam.method", "interaction_cam", "accepted", "gradcam", "input_x_gradient")


def test_configured_alias_of_a_registry_method_is_accepted(cfg: dict[str, Any]) -> None:
    cfg["methods"]["occlusion_small"] = {"method": "conditional_occlusion", "params": {"window": 4, "stride": 2}}
    cfg["run"]["methods"].append("occlusion_small")
    validate_config(cfg)


def test_wrong_type(cfg: dict[str, Any]) -> None:
    cfg["batch_size"] = "x"
    raises(cfg, "batch_size", "integer")


def test_unknown_top_level_key(cfg: dict[str, Any]) -> None:
    cfg["bach_size"] = 4
    raises(cfg, "bach_size", "batch_size")


def test_unknown_dataset_source(cfg: dict[str, Any]) -> None:
    ds = first(cfg["datasets"])
    cfg["datasets"][ds]["source"] = "imagenet"
    raises(cfg, f"datasets.{ds}.source", "imagenet", "synthetic_two4two", "two4two", "image_folder")


def test_unknown_key_in_dataset(cfg: dict[str, Any]) -> None:
    ds = first(cfg["datasets"])
    cfg["datasets"][ds]["n_imgs"] = 3
    raises(cfg, f"datasets.{ds}", "n_imgs", "accepted keys", "n_images", "image_size")


def test_image_folder_needs_a_path(cfg: dict[str, Any]) -> None:
    cfg["datasets"]["photos"] = {"source": "image_folder"}
    cfg["run"]["datasets"].append("photos")
    raises(cfg, "datasets.photos.path", "required")


def test_image_folder_path_must_exist(cfg: dict[str, Any], tmp_path: Path) -> None:
    missing = tmp_path / "no_such_folder"
    cfg["datasets"]["photos"] = {"source": "image_folder", "path": str(missing)}
    raises(cfg, "datasets.photos.path", "does not exist", str(missing))
    cfg["datasets"]["photos"]["path"] = str(tmp_path)
    raises(cfg, "datasets.photos.path", "no images")  # an empty folder: refused before any job (issue 20)
    from PIL import Image

    for i in range(8):  # n_images defaults to 8
        Image.new("RGB", (4, 4)).save(tmp_path / f"{i}.png")
    validate_config(cfg)
    assert cfg["datasets"]["photos"]["split"] is None  # image folders have no splits


def test_two4two_path_must_exist(cfg: dict[str, Any], tmp_path: Path) -> None:
    cfg["datasets"]["t2t"] = {"source": "two4two", "path": str(tmp_path / "absent")}
    raises(cfg, "datasets.t2t.path", "does not exist")


def test_model_train_dataset_must_exist(cfg: dict[str, Any]) -> None:
    m = first(cfg["models"])
    cfg["models"][m]["train_dataset"] = "imagenet"
    raises(cfg, f"models.{m}.train_dataset", "imagenet", "accepted", first(cfg["datasets"]))


def test_unknown_arch_params(cfg: dict[str, Any]) -> None:
    m = first(cfg["models"])
    cfg["models"][m]["arch"] = "small_resnet"
    cfg["models"][m]["arch_params"] = {"widht": 8}
    raises(cfg, f"models.{m}.arch_params", "widht", "accepted", "width", "embedding_dim")


def test_unknown_architecture(cfg: dict[str, Any]) -> None:
    m = first(cfg["models"])
    cfg["models"][m]["arch"] = "vit_b16"
    raises(cfg, f"models.{m}.arch", "vit_b16", "small_resnet", "resnet18")


def test_occlusion_window_larger_than_image(cfg: dict[str, Any]) -> None:
    cfg["methods"]["conditional_occlusion"] = {"params": {"window": 10_000, "stride": 8}}
    if "conditional_occlusion" not in cfg["run"]["methods"]:
        cfg["run"]["methods"].append("conditional_occlusion")
    raises(cfg, "methods.conditional_occlusion.params", "window", "larger than the image")


def test_unknown_method_parameter(cfg: dict[str, Any]) -> None:
    cfg["methods"]["gradcam"] = {"params": {"layer": "layer4"}}
    if "gradcam" not in cfg["run"]["methods"]:
        cfg["run"]["methods"].append("gradcam")
    raises(cfg, "methods.gradcam.params", "layer")


def test_unknown_metric_parameter(cfg: dict[str, Any]) -> None:
    cfg["metrics"]["insertion_deletion"]["params"]["pixel_per_step"] = 4
    raises(cfg, "metrics.insertion_deletion.params", "pixel_per_step", "accepted", "pixels_per_step", "blur_kernel")


def test_unknown_metric_in_run(cfg: dict[str, Any]) -> None:
    cfg["metrics"]["sufficiency"] = {"params": {}}  # defined in the config but not a registered metric
    cfg["run"]["metrics"].append("sufficiency")
    raises(cfg, "run.metrics", "sufficiency", "accepted", "insertion_deletion")


def test_run_names_must_be_defined(cfg: dict[str, Any]) -> None:
    cfg["run"]["datasets"].append("imagenet_val")
    raises(cfg, "run.datasets", "imagenet_val", "accepted", first(cfg["datasets"]))


def test_model_params_name_a_configured_model(cfg: dict[str, Any]) -> None:
    cfg["methods"]["gradcam"] = {"model_params": {"no_such_model": {}}}
    raises(cfg, "methods.gradcam.model_params.no_such_model", "accepted")


def test_model_params_are_checked_like_params(cfg: dict[str, Any]) -> None:
    model = next(iter(cfg["models"]))
    cfg["methods"]["gradcam"] = {"model_params": {model: {"epochs": 3}}}
    raises(cfg, f"methods.gradcam.model_params.{model}", "unknown parameter")


def test_autocast_refused_on_cpu(cfg: dict[str, Any]) -> None:
    cfg["device"] = "cpu"
    cfg["autocast"] = "bfloat16"
    raises(cfg, "autocast", "none")


def test_batch_size_auto_accepted(cfg: dict[str, Any]) -> None:
    cfg["batch_size"] = "auto"
    assert validate_config(cfg)["batch_size"] == "auto"
