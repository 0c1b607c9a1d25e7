"""Running the workflow in tests: the tiny config, a copy of the code, snakemake as a subprocess."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

TINY_CONFIG = {
    "seed": 3,
    "device": "cpu",
    "batch_size": 16,
    "progress": False,
    "datasets": {
        "tiny": {
            "source": "synthetic_two4two",
            "generate": {"train": 48, "validation": 0, "test": 6, "resolution": 64},
            "split": "test",
            "n_images": 5,
            "image_size": 32,
            "view_crop_scale": [0.3, 1.0],
            "n_shards": 2,
        }
    },
    "models": {
        "tiny_simclr": {
            "source": "simclr_trained",
            "arch": "small_resnet",
            "arch_params": {"width": 4, "embedding_dim": 16, "hidden_dim": 32},
            "train_dataset": "tiny",
            "image_size": 32,
            "training": {"epochs": 2, "batch_size": 16},
        }
    },
    "methods": {
        "conditional_occlusion": {"params": {"window": 8, "stride": 4}},
        "gradcam": {},
        "input_x_gradient": {},
        "random_baseline": {},
    },
    "metrics": {
        "insertion_deletion": {"params": {"pixels_per_step": 48, "blur_kernel": 5, "blur_sigma": 2.0}},
        "average_drop_increase": {"params": {}},
        "max_sensitivity": {"params": {"n_samples": 4}},
        "model_randomisation": {"params": {"cascade_levels": 2, "max_images": 3}},
    },
    "run": {
        "datasets": ["tiny"],
        "models": ["tiny_simclr"],
        "methods": ["conditional_occlusion", "gradcam", "input_x_gradient", "random_baseline"],
        "metrics": ["insertion_deletion", "average_drop_increase", "max_sensitivity", "model_randomisation"],
    },
    "report": {"n_grid_images": 3},
}


NO_SLURM_CONTROLLER = Path(__file__).resolve().parent / "no_slurm_controller"


def snakemake_env(code: Path, slurm: bool = False) -> dict[str, str]:
    """Environment of a snakemake subprocess on the copied ``code``.

    Without ``slurm``, a failing ``scontrol`` shim comes first on PATH: the SLURM executor plugin asks
    ``scontrol show config`` at every snakemake start, which stalls ~10 s where SLURM's client is installed
    but no controller runs (CI outside the SLURM test).
    """
    env = {**os.environ, "PYTHONPATH": str(code / "src"), "MPLBACKEND": "Agg"}
    if not slurm:
        env["PATH"] = f"{NO_SLURM_CONTROLLER}{os.pathsep}{env.get('PATH', '')}"
    return env


def snakemake(workdir: Path, code: Path, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run snakemake on the copied workflow ``code`` in ``workdir`` (a subprocess, as users do; ``timeout`` in seconds)."""
    env = snakemake_env(code)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(code / "Snakefile"), "--directory", str(workdir), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Job counts per rule from a dry run's 'Job stats' table."""
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("Reasons:")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M) if m.group(1) != "total"}


def copy_code(dest: Path) -> Path:
    """Copy the workflow and library code to ``dest`` (so tests can edit it without touching the repo)."""
    dest.mkdir(parents=True)
    for item in ("Snakefile", "rules", "workflow", "profiles", "config", "envs", "src"):
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dest / item)
    return dest


def write_config(work: Path, config: dict) -> Path:
    """Write ``config`` as ``work/config/config.yaml`` (the workflow's configfile)."""
    (work / "config").mkdir(parents=True, exist_ok=True)
    path = work / "config" / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


