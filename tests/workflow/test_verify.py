"""``python -m xai_ssl.verify`` checks every output of a run (issue 20, item 7)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from workflow_runner import planned_jobs, snakemake, snakemake_env

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("tiny_run")]


def verify(work: Path, code: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xai_ssl.verify", "--directory", str(work)], check=False, capture_output=True, text=True, env=snakemake_env(code), timeout=300)


def copy_run(run: tuple[Path, Path], dest: Path) -> Path:
    """A copy of the finished tiny run (results, config and Snakemake's records; times kept)."""
    work, _ = run
    shutil.copytree(work, dest, symlinks=True)
    return dest


def test_verify_passes_a_finished_run(tiny_run: tuple[Path, Path]) -> None:
    work, code = tiny_run
    proc = verify(work, code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 problems" in proc.stdout


def test_verify_finds_a_damaged_file_that_snakemake_would_use(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    """A truncated attribution file with its time kept is invisible to Snakemake; verify names it and the rebuild command."""
    _, code = tiny_run
    work = copy_run(tiny_run, tmp_path / "work")
    rel = "results/attributions/tiny/tiny_simclr/gradcam/shard-1.h5"
    path = work / rel
    stat = path.stat()
    path.write_bytes(path.read_bytes()[: stat.st_size // 2])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert planned_jobs(snakemake(work, code, "-n")) == {}  # the silent case
    proc = verify(work, code)
    assert proc.returncode == 1
    assert rel in proc.stdout and f"snakemake --forcerun {rel}" in proc.stdout and "1 problem" in proc.stdout
    jobs = planned_jobs(snakemake(work, code, "-n", "--forcerun", rel))
    assert jobs["compute_attributions"] == 1 and jobs["compute_metrics"] == 1


def test_verify_finds_nan_maps_and_stale_provenance(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    """NaN written into a map whose file counts none, and a config whose seed differs from the files', are reported."""
    _, code = tiny_run
    work = copy_run(tiny_run, tmp_path / "work")
    rel = "results/attributions/tiny/tiny_simclr/input_x_gradient/shard-0.h5"
    with h5py.File(work / rel, "a") as f:
        m = f["map1"][()]
        m[0, 0, 0] = np.nan
        f["map1"][...] = m
    proc = verify(work, code)
    assert proc.returncode == 1 and rel in proc.stdout and "NaN" in proc.stdout
    config = yaml.safe_load((work / "config" / "config.yaml").read_text())
    config["seed"] = 4
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    proc = verify(work, code)
    assert "seed 3" in proc.stdout and "config seed 4" in proc.stdout
