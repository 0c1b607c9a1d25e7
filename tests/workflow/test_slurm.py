"""The SLURM profile against a real single-node SLURM on localhost (skipped without root or packages).

Recipe: ../shared/docs/slurm-ci.md. The daemons are started by tests/slurm/start.sh and always stopped
again; the run is bounded by a timeout (SIGINT, so snakemake cancels its jobs and releases its lock).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from helpers import require_module, skip_optional
from workflow_runner import REPO, TINY_CONFIG, copy_code, snakemake_env, write_config

# tiny_run is a session fixture: under pytest-xdist (README test command, --dist loadgroup) every test that
# uses it runs on one worker, so the tiny workflow is run once
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("tiny_run")]

SLURM_DIR = REPO / "tests" / "slurm"
TORCH_RULES = ("train_model", "compute_attributions", "compute_metrics")


def _skip_reason() -> str | None:
    """Why a local SLURM cannot run here (an optional resource: root and the Debian SLURM packages), or None."""
    if os.geteuid() != 0:
        return "the SLURM test starts daemons and needs root"
    absent = [b for b in ("slurmctld", "slurmd", "munged", "sbatch") if not (shutil.which(b) or Path(f"/usr/sbin/{b}").exists())]
    if absent:
        return f"SLURM is not installed (missing {absent}; apt-get install slurmctld slurmd slurm-client munge)"
    return None


@pytest.fixture(scope="module")
def slurm() -> None:
    """A running single-node SLURM for the module; stopped afterwards whatever happens."""
    require_module("snakemake_executor_plugin_slurm")  # the test extra: required
    reason = _skip_reason()
    if reason:
        skip_optional(reason)
    start = subprocess.run(["bash", str(SLURM_DIR / "start.sh")], capture_output=True, text=True, timeout=120)
    if start.returncode != 0:
        subprocess.run(["bash", str(SLURM_DIR / "stop.sh")], timeout=60)
        pytest.fail(f"could not start SLURM:\n{start.stdout}\n{start.stderr}")
    try:
        yield
    finally:
        subprocess.run(["bash", str(SLURM_DIR / "stop.sh")], timeout=60)


def test_slurm_run_equals_local_sharded_run(slurm: None, tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    """The tiny workflow's explanation stages, unsharded through SLURM, give the tables of the local 2-shard run.

    Equal up to float rounding: the SLURM jobs run torch with 1 thread (2 locally) and batch other
    images together, which moves embeddings in the last bits and scores by ~1e-5.
    """
    local_work, _ = tiny_run
    code = copy_code(tmp_path / "code")
    work = tmp_path / "work"
    # data, pairs and model of the local run are kept (they do not depend on the shard count); every job of the
    # explanation stages (attributions, metrics, tables, figures) goes through SLURM
    shutil.copytree(local_work, work, symlinks=True)
    for rel in ("results/attributions", "results/metrics", "results/tables", "results/figures", "logs"):
        shutil.rmtree(work / rel)
    config = copy.deepcopy(TINY_CONFIG)
    config["datasets"]["tiny"]["n_shards"] = 1
    write_config(work, config)
    cmd = [
        "timeout", "-s", "INT", "-k", "30", "600",
        sys.executable, "-m", "snakemake",
        "--snakefile", str(code / "Snakefile"),
        "--directory", str(work),
        "--profile", str(code / "profiles" / "slurm"),
        "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-keep-successful-logs",
        "--default-resources", "slurm_partition=debug", "mem_mb=1500", "runtime=15", "cpus_per_task=1",
        "--set-resources", *[f"{r}:gpu=0" for r in TORCH_RULES],
        "--set-threads", *[f"{r}=1" for r in TORCH_RULES],
        "--jobs", "4",
        "--latency-wait", "5",
    ]
    env = snakemake_env(code, slurm=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=700)
    logs = "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted((work / ".snakemake" / "slurm_logs").rglob("*.log"))[:6]) if proc.returncode else ""
    assert proc.returncode == 0, f"SLURM run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n{logs}"
    text = proc.stdout + proc.stderr
    assert "sbatch" in text or "SLURM" in text, "the jobs were not submitted through SLURM"
    submitted = list((work / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert any("compute_attributions" in str(p) or "explain" in str(p) for p in submitted), [str(p) for p in submitted]
    assert not (work / "logs" / "train_model").exists() and not (work / "logs" / "make_pairs").exists()  # kept, not redone
    for name in ("scores.csv", "per_image.csv"):
        ours = pd.read_csv(work / "results/tables/tiny/tiny_simclr" / name, na_values=["NA"], keep_default_na=False)
        ref = pd.read_csv(local_work / "results/tables/tiny/tiny_simclr" / name, na_values=["NA"], keep_default_na=False)
        cols = [c for c in ("SI", "SD", "CI", "CD") if c in ref.columns]  # MS and RAND amplify thread-count rounding
        pd.testing.assert_frame_equal(ours[cols], ref[cols], check_exact=False, atol=5e-4, rtol=0)


def test_slurm_profile_requests_gpus_on_torch_rules(tmp_path: Path) -> None:
    """A dry run with the SLURM profile shows gpu=1 on the torch rules (no SLURM needed)."""
    require_module("snakemake_executor_plugin_slurm")
    code = copy_code(tmp_path / "code")
    work = tmp_path / "work"
    write_config(work, TINY_CONFIG)
    env = snakemake_env(code)  # a dry run: no SLURM controller needed
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(code / "Snakefile"), "--directory", str(work),
         "--profile", str(code / "profiles" / "slurm"), "-n"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    blocks = (proc.stdout + proc.stderr).split("\n\n")
    for rule in TORCH_RULES:
        rule_blocks = [b for b in blocks if f"rule {rule}:" in b]
        assert rule_blocks, f"no {rule} job in the dry run"
        assert all("gpu=1" in b for b in rule_blocks), rule_blocks[0]
