"""What the workflow asks the scheduler for, decided without importing torch (the Snakefile runs it at DAG time)."""

from __future__ import annotations

import os
from pathlib import Path

NVIDIA_DRIVER_FILES = (Path("/proc/driver/nvidia/version"), Path("/dev/nvidia0"))


def nvidia_gpu_visible(env: dict[str, str] | None = None, driver_files: tuple[Path, ...] = NVIDIA_DRIVER_FILES) -> bool:
    """Whether this process sees an NVIDIA GPU: the driver's files exist and CUDA_VISIBLE_DEVICES does not hide it."""
    visible = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return any(p.exists() for p in driver_files)


def torch_job_resources(device: str, cpu_threads: int, gpu_visible: bool) -> tuple[int, int]:
    """(gpus, threads) of one torch compute job for the configured ``device`` (auto | cpu | cuda[:N]).

    A job that will run on a GPU requests it (gpu=1: one at a time under ``--resources gpu=1``) and 2 threads;
    a job that will run on the CPU requests no GPU and ``cpu_threads`` threads, so that ``--cores N`` runs
    several at once instead of queueing them behind a GPU that does not exist.
    """
    uses_gpu = device.startswith("cuda") or (device == "auto" and gpu_visible)
    return (1, 2) if uses_gpu else (0, int(cpu_threads))
