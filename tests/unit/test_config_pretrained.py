"""Config of pretrained model sources and ImageNet datasets: required keys, keys that do not apply, paths."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from helpers import REPO
from helpers import config_refused as raises
from xai_ssl.config import validate_config


@pytest.fixture
def cfg() -> dict[str, Any]:
    """The embedded default plus a pretrained model and an ImageNet dataset (not run)."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["models"]["bt"] = {"source": "barlow_twins", "checkpoint": "resources/checkpoints/bt.pth"}
    cfg["datasets"]["inet"] = {"source": "imagenet_val", "path": "/nonexistent/val.tar", "n_images": 5}
    return cfg


def test_pretrained_model_and_imagenet_validate(cfg: dict[str, Any]) -> None:
    validate_config(cfg)  # the ImageNet path need not exist yet (dry runs)
    assert cfg["datasets"]["inet"]["split"] is None
    assert "url" not in cfg["models"]["bt"] and "sha256" not in cfg["models"]["bt"]
    # the trained model's entry gets no new keys (its params, hence its results, are unchanged)
    assert not {"url", "sha256", "checkpoint", "width", "variant", "reference"} & set(cfg["models"]["simclr_small"])


def test_pretrained_needs_a_checkpoint(cfg: dict[str, Any]) -> None:
    del cfg["models"]["bt"]["checkpoint"]
    raises(cfg, "models.bt", "'checkpoint' is a required property")


def test_simclr_trained_still_needs_arch(cfg: dict[str, Any]) -> None:
    del cfg["models"]["simclr_small"]["arch"]
    raises(cfg, "models.simclr_small", "'arch' is a required property")


def test_simclrv2_needs_width_and_torchvision_a_variant(cfg: dict[str, Any]) -> None:
    cfg["models"]["s"] = {"source": "simclrv2", "checkpoint": "a.pth"}
    raises(cfg, "models.s", "'width' is a required property")
    cfg["models"]["s"] = {"source": "simclrv2", "checkpoint": "a.pth", "width": 3}
    raises(cfg, "models.s.width", "3", "[1, 2]")
    cfg["models"]["s"] = {"source": "torchvision_resnet", "checkpoint": "a.pth"}
    raises(cfg, "models.s", "'variant' is a required property")


def test_keys_that_do_not_apply_are_refused(cfg: dict[str, Any]) -> None:
    cfg["models"]["bt"]["width"] = 2
    raises(cfg, "models.bt.width", "simclrv2")
    del cfg["models"]["bt"]["width"]
    cfg["models"]["bt"]["arch"] = "resnet18"
    raises(cfg, "models.bt.arch", "simclr_trained")
    del cfg["models"]["bt"]["arch"]
    cfg["models"]["simclr_small"]["checkpoint"] = "x.pth"
    raises(cfg, "models.simclr_small.checkpoint", "pretrained")


def test_unknown_source_and_bad_digest(cfg: dict[str, Any]) -> None:
    cfg["models"]["bt"]["source"] = "byol"
    raises(cfg, "models.bt.source", "byol", "barlow_twins", "simsiam", "torchvision_resnet")
    cfg["models"]["bt"]["source"] = "barlow_twins"
    cfg["models"]["bt"]["sha256"] = "abc"
    raises(cfg, "models.bt.sha256", "abc")


def test_downloaded_checkpoint_must_be_inside_the_working_directory(cfg: dict[str, Any]) -> None:
    cfg["models"]["bt"].update(url="https://example.invalid/checkpoint.pth", checkpoint="/abs/checkpoint.pth")
    raises(cfg, "models.bt.checkpoint", "inside the working directory")
    cfg["models"]["bt"]["checkpoint"] = "resources/bt.pth"
    cfg["models"]["bt2"] = {"source": "barlow_twins", "url": "https://example.invalid/other.pth", "checkpoint": "resources/bt.pth"}
    raises(cfg, "models.bt2.checkpoint", "also downloaded for model 'bt'")


def test_reference_name_must_exist(cfg: dict[str, Any]) -> None:
    cfg["models"]["bt"]["reference"] = "byol"
    raises(cfg, "models.bt.reference", "byol", "barlow_twins", "simclrv2_2x")


def test_imagenet_needs_a_path_and_pattern_only_there(cfg: dict[str, Any]) -> None:
    cfg["datasets"]["inet"]["path"] = None
    raises(cfg, "datasets.inet.path", "required")
    cfg["datasets"]["inet"]["path"] = "x.tar"
    cfg["datasets"]["synthetic"]["pattern"] = "*.png"
    raises(cfg, "datasets.synthetic.pattern", "imagenet_val")


# --------------------------------------------------------------------------------------------
# sources timm and python (issue 19)
# --------------------------------------------------------------------------------------------

TINY_VIT = {"source": "timm", "arch": "vit_small_patch16_224.dino", "checkpoint": "resources/vit.pth",
            "model_kwargs": {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 8}}


def test_timm_and_python_need_arch_and_factory(cfg: dict[str, Any]) -> None:
    cfg["models"]["v"] = {"source": "timm", "checkpoint": "a.pth"}
    raises(cfg, "models.v", "'arch' is a required property")
    cfg["models"]["v"] = {"source": "python", "checkpoint": "a.pth"}
    raises(cfg, "models.v", "'factory' is a required property")
    cfg["models"]["v"] = {"source": "python", "checkpoint": "a.pth", "factory": "no_colon"}
    raises(cfg, "models.v.factory", "does not match")


def test_timm_keys_apply_to_timm_only(cfg: dict[str, Any]) -> None:
    cfg["models"]["bt"]["layout"] = "dinov2"
    raises(cfg, "models.bt.layout", "only for source(s) ['timm']", "'barlow_twins'")
    del cfg["models"]["bt"]["layout"]
    cfg["models"]["v"] = {**TINY_VIT, "factory": "m:f"}
    raises(cfg, "models.v.factory", "only for source(s) ['python']", "'timm'")


def test_timm_arch_is_checked(cfg: dict[str, Any]) -> None:
    cfg["models"]["v"] = {**TINY_VIT, "arch": "vit_smol_patch16_224"}
    raises(cfg, "models.v.arch", "timm has no model 'vit_smol_patch16_224'", "similar names")
    cfg["models"]["v"] = {"source": "timm", "arch": "swin_tiny_patch4_window7_224", "checkpoint": "a.pth"}
    raises(cfg, "models.v.arch", "not supported")


def test_timm_choices_that_do_not_fit_the_architecture(cfg: dict[str, Any]) -> None:
    cnn = {"source": "timm", "arch": "resnet18", "checkpoint": "a.pth"}
    cfg["models"]["v"] = {**cnn, "embedding": "cls"}
    raises(cfg, "models.v.embedding", "'cls' needs a class token", "CNN")
    cfg["models"]["v"] = {**cnn, "input_size": 224}
    raises(cfg, "models.v.input_size", "Vision Transformers only")
    cfg["models"]["v"] = {**TINY_VIT, "layout": "timm", "network": "student"}
    raises(cfg, "models.v.network", "only for layout 'dino_full'")
    cfg["models"]["v"] = {**TINY_VIT, "layout": "dino_full", "network": "student"}
    validate_config(cfg)


def test_trained_models_need_a_trainable_architecture(cfg: dict[str, Any]) -> None:
    cfg["models"]["simclr_small"]["arch"] = "vit_small_patch16_224"
    raises(cfg, "models.simclr_small.arch", "cannot be trained here", "small_resnet", "resnet18")


def test_python_factory_that_cannot_be_built_names_the_model(cfg: dict[str, Any], tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg["models"]["mine"] = {"source": "python", "factory": "missing_file.py:build", "checkpoint": "a.pth"}
    cfg["run"]["models"] = ["mine"]
    raises(cfg, "models.mine", "cannot be built", "missing_file.py", "does not exist")


def test_timm_is_imported_only_where_a_timm_model_is_configured(tmp_path) -> None:
    """Config validation of a run without timm models, and every stage module, load neither timm nor safetensors."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, yaml\n"
        "from xai_ssl.config import validate_config\n"
        "import xai_ssl.stages.attribution, xai_ssl.stages.evaluation, xai_ssl.stages.models, xai_ssl.stages.report, xai_ssl.stages.data\n"
        f"cfg = yaml.safe_load(open({str(REPO / 'config' / 'config.yaml')!r}))\n"
        "validate_config(cfg, check_paths=False)\n"
        "before = sorted(m for m in ('timm', 'safetensors') if m in sys.modules)\n"
        f"cfg['models']['v'] = {TINY_VIT!r}\n"
        "cfg['run']['models'] = ['v']\n"
        "cfg['run']['methods'] = ['gradcam']\n"
        "validate_config(cfg, check_paths=False)\n"
        "print(json.dumps([before, 'timm' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [[], True]
