"""Config of pretrained model sources and ImageNet datasets: required keys, keys that do not apply, paths."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from helpers import REPO
from xai_ssl.config import ConfigError, validate_config


@pytest.fixture
def cfg() -> dict[str, Any]:
    """The embedded default plus a pretrained model and an ImageNet dataset (not run)."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["models"]["bt"] = {"source": "barlow_twins", "checkpoint": "resources/checkpoints/bt.pth"}
    cfg["datasets"]["inet"] = {"source": "imagenet_val", "path": "/nonexistent/val.tar", "n_images": 5}
    return cfg


def raises(cfg: dict[str, Any], *fragments: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    for frag in fragments:
        assert frag in str(err.value), f"{frag!r} not in {str(err.value)!r}"


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
