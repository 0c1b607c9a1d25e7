"""Dry runs of the shipped embedded default and of config/all-methods.yaml merged over it by Snakemake."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from workflow_runner import REPO, copy_code, planned_jobs, snakemake

pytestmark = pytest.mark.integration

DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
ALL = yaml.safe_load((REPO / "config" / "all-methods.yaml").read_text(encoding="utf-8"))


def map_methods(methods: list[str]) -> list[str]:
    return [m for m in methods if m != "feature_visualisation"]  # an image per image, not a map: its own rule


@pytest.mark.parametrize("overlay", [None, "all-methods.yaml"])
def test_dry_run_plans_every_configured_method(tmp_path: Path, overlay: str | None) -> None:
    code = copy_code(tmp_path / "code")
    args = ["-n"] + (["--configfile", str(code / "config" / overlay)] if overlay else [])
    proc = snakemake(code, code, *args)  # in the clone, as the README runs it
    jobs = planned_jobs(proc)
    methods = (ALL if overlay else DEFAULT)["run"]["methods"]
    (dataset,), (model,) = DEFAULT["run"]["datasets"], DEFAULT["run"]["models"]
    n_shards = DEFAULT["datasets"][dataset]["n_shards"]
    assert jobs["compute_attributions"] == len(map_methods(methods)) * n_shards == jobs["compute_metrics"]
    assert jobs["train_model"] == 1 and jobs["feature_visualisation"] == 1
    text = proc.stdout + proc.stderr
    for m in map_methods(methods):
        assert f"results/attributions/{dataset}/{model}/{m}/shard-0.h5" in text
    if overlay:  # the methods the default leaves out are planned from the same data and model
        left_out = set(methods) - set(DEFAULT["run"]["methods"])
        assert {"pixel_invariance", "smooth_grad", "context_agnostic_occlusion"} <= left_out
