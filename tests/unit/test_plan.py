"""The workflow plan (xai_ssl.plan): targets, groups, digests and parameters from the config, without Snakemake."""

from __future__ import annotations

import copy
import re
from types import SimpleNamespace as W

import pytest
import yaml

from helpers import REPO
from workflow_runner import TINY_CONFIG
from xai_ssl.config import validate_config
from xai_ssl.plan import Plan, alternatives


def plan_of(config: dict, checksums: dict | None = None) -> Plan:
    cfg = copy.deepcopy(config)
    validate_config(cfg, check_paths=False)
    return Plan(cfg, checksums=checksums)


def test_alternatives_match_exactly() -> None:
    pattern = re.compile(alternatives(["a.b", "c"]))
    assert pattern.fullmatch("a.b") and pattern.fullmatch("c")
    assert not pattern.fullmatch("axb") and not pattern.fullmatch("a.bc")
    assert not re.fullmatch(alternatives([]), "") and not re.fullmatch(alternatives([]), "anything")


def test_tiny_plan_targets_and_shards() -> None:
    plan = plan_of(TINY_CONFIG)
    assert plan.methods == ["conditional_occlusion", "gradcam", "input_x_gradient", "random_baseline"] and plan.image_methods == []
    assert plan.trained_models == ["tiny_simclr"] and plan.pretrained_models == []
    targets = plan.final_targets()
    assert "results/tables/tiny/tiny_simclr/scores.md" in targets and "results/models/tiny_simclr/training_loss.png" in targets
    assert "results/models/tiny_simclr/quality.png" in targets
    w = W(dataset="tiny", model="tiny_simclr", method="gradcam")
    files = plan.method_shard_files("results/metrics/{dataset}/{model}/{method}/shard-{shard}.csv")(w)
    assert len(files) == 8 and files[0] == "results/metrics/tiny/tiny_simclr/conditional_occlusion/shard-0.csv"
    assert plan.shard_methods(w) == ["conditional_occlusion"] * 2 + ["gradcam"] * 2 + ["input_x_gradient"] * 2 + ["random_baseline"] * 2
    assert plan.dataset_files(w) == {"files": "results/data/tiny/files"} and plan.dataset_root(w) == "results/data/tiny/files"


def test_method_params_merge_model_overrides() -> None:
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["methods"]["conditional_occlusion"]["model_params"] = {"tiny_simclr": {"stride": 2}}
    plan = plan_of(cfg)
    assert plan.method_params(W(method="conditional_occlusion", model="tiny_simclr")) == {"window": 8, "stride": 2}
    assert plan.method_params(W(method="conditional_occlusion", model="other")) == {"window": 8, "stride": 4}


def test_paper_config_downloads_conversions_and_pins() -> None:
    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    url = next(c["url"] for c in cfg["models"].values() if c["source"] == "barlow_twins")
    plan = plan_of(cfg, checksums={url: "A" * 64})
    assert set(plan.conversions.values()) == {m for m, c in cfg["models"].items() if c["source"] == "simclrv2"}
    barlow = next(ck for ck, m in plan.downloads.items() if cfg["models"][m]["source"] == "barlow_twins")
    assert plan.pinned_sha256(barlow) == "A" * 64  # config/checksums.yaml by URL
    name = next(iter(plan.tf_checkpoints))
    assert re.fullmatch(r"r50_[12]x_sk0", name)
    assert plan.tf_url(name, "index").endswith("/model.ckpt-250228.index")
    assert plan.tf_path(name, "data") == f"resources/checkpoints/simclrv2/tf/{name}/model.ckpt-250228.data-00000-of-00001"
    assert all(t.endswith("source.json") for t in plan.model_targets())
    assert plan.reference_targets() and all(t.startswith("results/tables/") for t in plan.reference_targets())


def test_pretrained_params_are_only_loader_keys() -> None:
    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    plan = plan_of(cfg)
    model = next(m for m, c in cfg["models"].items() if c["source"] == "simclrv2")
    params = plan.pretrained_params(W(model=model))
    assert set(params) <= {"source", "checkpoint", "width", "ema", "variant", "normalise"} and params["source"] == "simclrv2"


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "survey.yaml"])
def test_code_fingerprints_differ_between_methods(name: str) -> None:
    plan = plan_of(yaml.safe_load((REPO / "config" / name).read_text()))
    codes = {m: plan.method_code("compute_attributions")(W(method=m)) for m in plan.methods}
    distinct_modules = {plan.specs[m].module for m in plan.methods}
    assert len(set(codes.values())) == len(distinct_modules)


def two_model_config() -> dict:
    """The tiny config with a tiny timm ViT beside the ResNet and methods restricted per model."""
    from vit_layouts import TIMM_KW, TINY

    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["models"]["tiny_vit"] = {"source": "timm", "arch": "vit_small_patch16_224.dino", "checkpoint": "resources/vit.pth",
                                 "model_kwargs": dict(TIMM_KW), "input_size": TINY["side"], "url": "https://example.org/vit.pth"}
    cfg["methods"]["vit_attention"] = {"models": ["tiny_vit"]}
    cfg["methods"]["input_x_gradient_g"] = {"models": ["tiny_simclr"]}
    cfg["methods"]["feature_visualisation"] = {"models": ["tiny_vit"]}
    cfg["run"]["models"] = ["tiny_simclr", "tiny_vit"]
    cfg["run"]["methods"] = ["conditional_occlusion", "vit_attention", "input_x_gradient_g", "feature_visualisation", "random_baseline"]
    return cfg


def test_methods_per_model() -> None:
    plan = plan_of(two_model_config())
    assert plan.methods == ["conditional_occlusion", "vit_attention", "input_x_gradient_g", "random_baseline"]
    assert plan.methods_for("tiny_simclr") == ["conditional_occlusion", "input_x_gradient_g", "random_baseline"]
    assert plan.methods_for("tiny_vit") == ["conditional_occlusion", "vit_attention", "random_baseline"]
    assert plan.image_methods_for("tiny_simclr") == [] and plan.image_methods_for("tiny_vit") == ["feature_visualisation"]
    pattern = "results/attributions/{dataset}/{model}/{method}/shard-{shard}.h5"
    for model, methods in (("tiny_simclr", plan.methods_for("tiny_simclr")), ("tiny_vit", plan.methods_for("tiny_vit"))):
        w = W(dataset="tiny", model=model)
        expected = [f"results/attributions/tiny/{model}/{m}/shard-{s}.h5" for m in methods for s in (0, 1)]
        assert plan.method_shard_files(pattern)(w) == expected
        assert plan.shard_methods(w) == [m for m in methods for _ in (0, 1)]
    targets = plan.final_targets()
    assert "results/figures/tiny/tiny_vit/feature_visualisation_feature_visualisation.png" in targets
    assert not any("tiny_simclr/feature_visualisation" in t for t in targets)
    assert "results/tables/tiny/tiny_vit/scores.md" in targets and "results/tables/tiny/tiny_simclr/scores.md" in targets


def test_a_model_without_map_methods_has_no_tables() -> None:
    cfg = two_model_config()
    cfg["run"]["methods"] = ["vit_attention", "feature_visualisation"]
    plan = plan_of(cfg)
    assert plan.methods_for("tiny_simclr") == [] and plan.methods_for("tiny_vit") == ["vit_attention"]
    targets = plan.final_targets()
    assert not any(t.startswith(("results/tables/tiny/tiny_simclr/", "results/figures/tiny/tiny_simclr/")) for t in targets)
    assert "results/tables/tiny/tiny_vit/scores.csv" in targets and "results/models/tiny_simclr/training_loss.png" in targets


def test_pretrained_params_of_a_timm_model_are_its_loader_keys() -> None:
    plan = plan_of(two_model_config())
    params = plan.pretrained_params(W(model="tiny_vit"))
    assert set(params) == {"source", "checkpoint", "arch", "model_kwargs", "input_size"}  # not url, sha256, reference
    assert plan.downloads == {"resources/vit.pth": "tiny_vit"}
