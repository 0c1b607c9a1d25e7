"""Bad config: every violation names the key and the accepted values; conflicts are refused before any job starts."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from helpers import config_refused as refused
from workflow_runner import TINY_CONFIG, copy_code, snakemake, write_config
from xai_ssl.config import validate_config


def tiny() -> dict[str, Any]:
    """A fresh copy of the tiny workflow config."""
    return copy.deepcopy(TINY_CONFIG)


@pytest.mark.parametrize(
    "edit, key, accepted",
    [
        (lambda c: c["datasets"]["tiny"].update(source="folder"), "datasets.tiny.source", "image_folder"),
        (lambda c: c["datasets"]["tiny"].update(on_bad_image="ignore"), "datasets.tiny.on_bad_image", "'skip', 'stop'"),
        (lambda c: c.update(device="gpu"), "device", "auto"),
        (lambda c: c["datasets"]["tiny"].update(n_shards=0), "datasets.tiny.n_shards", "minimum of 1"),
        (lambda c: c["datasets"]["tiny"].update(image_size="32"), "datasets.tiny.image_size", "integer"),
        (lambda c: c["datasets"]["tiny"].update(imagesize=32), "datasets.tiny", "accepted keys"),
        (lambda c: c["models"]["tiny_simclr"].update(arch="vit"), "models.tiny_simclr.arch", "small_resnet"),
        (lambda c: c["metrics"]["max_sensitivity"]["params"].update(n_samples=0), "metrics.max_sensitivity.params.n_samples", "minimum of 1"),
    ],
)
def test_schema_violation_names_key_and_accepted_values(edit: Any, key: str, accepted: str) -> None:
    cfg = tiny()
    edit(cfg)
    msg = refused(cfg)
    assert f"'{key}" in msg and accepted in msg, msg


@pytest.mark.parametrize(
    "edit, key, accepted",
    [
        (lambda c: c["methods"]["conditional_occlusion"]["params"].update(window=40), "methods.conditional_occlusion.params", "window"),
        (lambda c: c["datasets"]["tiny"].update(view_crop_scale=[0.9, 0.2]), "datasets.tiny.view_crop_scale", "min <= max"),
        (lambda c: c["models"]["tiny_simclr"]["training"].update(crop_scale=[0.9, 0.2]), "models.tiny_simclr.training.crop_scale", "min <= max"),
        (lambda c: c["datasets"]["tiny"].update(n_shards=6), "datasets.tiny.n_shards", "accepted: 1..5"),
        (lambda c: c["datasets"]["tiny"]["generate"].update(test=0), "datasets.tiny.generate.test", ">= 1"),
        (lambda c: c["datasets"]["tiny"].update(split="holdout"), "datasets.tiny.split", "accepted"),
        (lambda c: c["models"]["tiny_simclr"].update(train_split="validation"), "models.tiny_simclr.train_split", "accepted"),
        (lambda c: c["metrics"]["insertion_deletion"]["params"].update(pixels_per_step=32 * 32 + 1), "metrics.insertion_deletion.params", "pixels_per_step"),
    ],
)
def test_conflicting_settings_are_refused(edit: Any, key: str, accepted: str) -> None:
    """Each setting is valid alone; together with the image size / dataset they conflict."""
    cfg = tiny()
    edit(cfg)
    msg = refused(cfg)
    assert f"'{key}" in msg and accepted in msg, msg


def test_tiny_config_is_accepted() -> None:
    """The checks above refuse only the edits (the base config passes)."""
    validate_config(tiny())


def test_workflow_refuses_a_bad_config_before_any_job(tmp_path: Path) -> None:
    """A dry run with a conflicting config stops at config load: the key is named, no job is planned or run."""
    code = copy_code(tmp_path / "code")
    work = tmp_path / "work"
    cfg = tiny()
    cfg["methods"]["conditional_occlusion"]["params"]["window"] = 40  # larger than the 32 px views
    write_config(work, cfg)
    proc = snakemake(work, code, "--dry-run", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Invalid configuration" in text and "methods.conditional_occlusion.params" in text and "window" in text
    assert "Job stats" not in text and not (work / "results").exists()
