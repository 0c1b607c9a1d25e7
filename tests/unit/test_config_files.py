"""The shipped embedded default (enough images, every method family, the baselines) and config/all-methods.yaml."""

from __future__ import annotations

from typing import Any

import yaml
from snakemake.utils import update_config

from helpers import REPO
from xai_ssl.config import validate_config
from xai_ssl.methods import get_method

# run.methods of the embedded default before issue 18 (every method of Sammani et al., RELAX, the three baselines),
# written out here so that a method dropped from both configs fails the test
FORMER_DEFAULT = [
    "conditional_occlusion", "context_agnostic_occlusion", "pairwise_occlusion", "gradcam", "interaction_cam_mean",
    "interaction_cam_max", "interaction_cam_sa", "pixel_invariance", "input_x_gradient", "input_x_gradient_g", "smooth_grad",
    "smooth_grad_g", "avg_transforms", "avg_transforms_g", "avg_transforms_n", "avg_transforms_gn", "feature_visualisation",
    "relax", "random_baseline", "centre_baseline", "edge_baseline",
]
BASELINES = ["random_baseline", "random_baseline_interpolation", "centre_baseline", "edge_baseline"]


def read(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "config" / name).read_text(encoding="utf-8"))


def merged(overlay: str) -> dict[str, Any]:
    """``config.yaml`` with ``overlay`` merged over it as Snakemake merges ``--configfile`` (dicts deep, lists replaced)."""
    config = read("config.yaml")
    update_config(config, read(overlay))
    return config


def registry_name(config: dict[str, Any], method: str) -> str:
    return config["methods"][method].get("method") or method


def test_default_explains_32_images_with_every_family_and_the_baselines() -> None:
    cfg = validate_config(read("config.yaml"), check_paths=False)
    for name in cfg["run"]["datasets"]:
        ds = cfg["datasets"][name]
        assert ds["n_images"] >= 32, f"{name}: the default explains {ds['n_images']} images (issue 18: at least 32)"
        assert ds["generate"][ds["split"]] >= ds["n_images"]  # the split holds them
    rand = cfg["metrics"]["model_randomisation"]["params"]
    n_min = min(cfg["datasets"][d]["n_images"] for d in cfg["run"]["datasets"])
    assert rand["max_images"] is None or rand["max_images"] >= n_min, "the randomisation check covers every explained image"
    assert not rand["methods_without_rand"]
    methods = cfg["run"]["methods"]
    families = {get_method(registry_name(cfg, m)).family for m in methods}
    assert {"occlusion", "cam", "gradient", "perturbation"} <= families
    assert methods[-4:] == BASELINES  # the baselines close every table
    assert len(methods) < len(FORMER_DEFAULT)  # a subset: every method is in config/all-methods.yaml


def test_all_methods_validates_and_runs_every_method_of_the_former_default() -> None:
    cfg = validate_config(merged("all-methods.yaml"), check_paths=False)
    assert set(FORMER_DEFAULT) <= set(cfg["run"]["methods"])
    default = validate_config(read("config.yaml"), check_paths=False)
    assert set(default["run"]["methods"]) <= set(cfg["run"]["methods"])
    assert cfg["run"]["methods"][-4:] == BASELINES


def test_all_methods_changes_nothing_but_the_method_list() -> None:
    """The same data, model, metrics and method parameters as the default: the overlay holds run.methods only."""
    overlay = read("all-methods.yaml")
    assert overlay == {"run": {"methods": overlay["run"]["methods"]}}
    default, cfg = read("config.yaml"), merged("all-methods.yaml")
    assert {k: v for k, v in cfg.items() if k != "run"} == {k: v for k, v in default.items() if k != "run"}
    assert {k: v for k, v in cfg["run"].items() if k != "methods"} == {k: v for k, v in default["run"].items() if k != "methods"}
    assert set(overlay["run"]["methods"]) <= set(default["methods"])  # parameters from config.yaml's methods section

