"""Interrupted runs: a SIGKILL mid-write leaves no file accepted as complete; a rerun finishes only the missing jobs
and gives the tables of an uninterrupted run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import pytest

from workflow_runner import planned_jobs, snakemake, snakemake_env
from xai_ssl.io.atomic import temporary_path
from xai_ssl.io.hdf5 import atomic_h5
from xai_ssl.io.maps_file import load_attributions

# tiny_run is a session fixture: under pytest-xdist (README test command, --dist loadgroup) every test that
# uses it runs on one worker, so the tiny workflow is run once
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("tiny_run")]

# the explanation stages of one method (both shards) and everything built from all methods
REDONE = (
    "results/attributions/tiny/tiny_simclr/conditional_occlusion",
    "results/metrics/tiny/tiny_simclr/conditional_occlusion",
    "results/tables",
    "results/figures",
)


def test_sigkill_inside_an_atomic_write_leaves_no_output(tmp_path: Path) -> None:
    """A process killed while writing an HDF5 output leaves only its temporary file; the next write replaces it."""
    out = tmp_path / "maps.h5"
    code = textwrap.dedent(
        f"""
        import os, signal, numpy as np
        from xai_ssl.io.hdf5 import atomic_h5
        with atomic_h5({str(out)!r}) as f:
            f.create_dataset("map1", data=np.ones((4, 8, 8), np.float32))
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and temporary_path(out).exists()
    with atomic_h5(out) as f:
        f.create_dataset("map1", data=[1.0])
    assert not temporary_path(out).exists()
    with h5py.File(out, "r") as f:
        assert list(f) == ["map1"]


def popen_snakemake(work: Path, code: Path) -> subprocess.Popen:
    """Start snakemake (2 cores) in its own process group, as ``workflow_runner.snakemake`` runs it."""
    env = snakemake_env(code)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(code / "Snakefile"), "--directory", str(work), "--cores", "2"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)


def test_killed_run_resumes_to_the_same_tables(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    """Kill a real run (SIGKILL to snakemake and its jobs) when the metric stage starts; rerun; compare with the session's run."""
    ref, code = tiny_run
    work = tmp_path / "work"
    shutil.copytree(ref, work, symlinks=True)
    for rel in REDONE:  # keep data, pairs, model, the other methods (and the run metadata): redo one method
        shutil.rmtree(work / rel)

    metric_logs = work / "logs" / "compute_metrics"
    for old_log in (work / "logs").rglob("*.log"):
        old_log.unlink()  # logs of the session's run
    proc = popen_snakemake(work, code)
    deadline = time.monotonic() + 240
    try:
        # kill when the first metric job starts: an attribution shard is finished, the metric stage is under way
        while time.monotonic() < deadline and proc.poll() is None:
            if metric_logs.exists() and any(metric_logs.rglob("*.log")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be interrupted"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)

    # every output present is complete (atomic rename); partial writes can only be *.tmp files
    for path in (work / "results").rglob("*.h5"):
        with h5py.File(path, "r") as f:
            assert len(f.keys()) > 0, path
    for path in (work / "results" / "attributions").rglob("*.h5"):
        assert len(load_attributions(path).image_ids) > 0
    remaining = planned_jobs(snakemake(work, code, "--dry-run"))
    assert remaining.get("compute_attributions", 0) < 2 and remaining["compute_metrics"] >= 1  # only the missing ones
    assert remaining["compute_metrics"] <= 2  # the other methods' metrics were kept
    assert remaining["aggregate_tables"] == 1 and "train_model" not in remaining and "make_pairs" not in remaining

    snakemake(work, code, "--unlock")  # the killed snakemake left its lock (README: "When things go wrong")
    snakemake(work, code)  # the rerun (the workflow profile sets rerun-incomplete)
    assert not list((work / "results").rglob("*.tmp*")), "temporary files left behind"
    for rel in ("per_image.csv", "scores.csv", "scores.md", "scores.provenance.json"):
        got = (work / "results/tables/tiny/tiny_simclr" / rel).read_text()
        want = (ref / "results/tables/tiny/tiny_simclr" / rel).read_text()
        assert got == want, rel
