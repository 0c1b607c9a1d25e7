"""Start-up checks (issue 20, item 10): ``device: cuda`` without CUDA stops a local run before any job; a dry run still plans."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from workflow_runner import TINY_CONFIG, copy_code, planned_jobs, snakemake, write_config

pytestmark = [pytest.mark.integration]


def test_cuda_without_cuda_stops_a_local_run_before_any_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU, even on a machine that has one
    code = copy_code(tmp_path / "code")
    work = tmp_path / "work"
    write_config(work, dict(copy.deepcopy(TINY_CONFIG), device="cuda"))
    assert planned_jobs(snakemake(work, code, "-n"))["compute_attributions"] == 2 * len(TINY_CONFIG["run"]["methods"])  # a dry run shows the DAG
    proc = snakemake(work, code, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key 'device'" in text and "no CUDA device" in text
    assert not (work / "results").exists() and not (work / "logs").exists()  # no job ran
