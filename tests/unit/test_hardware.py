"""Scheduler requests of torch jobs: a GPU only where one will be used, CPU jobs side by side otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from xai_ssl.hardware import nvidia_gpu_visible, torch_job_resources


def test_gpu_visibility_follows_driver_files_and_cuda_visible_devices(tmp_path: Path) -> None:
    present, absent = tmp_path / "nvidia0", tmp_path / "missing"
    present.touch()
    assert nvidia_gpu_visible({}, (absent, present))
    assert not nvidia_gpu_visible({}, (absent,))
    assert not nvidia_gpu_visible({"CUDA_VISIBLE_DEVICES": ""}, (present,))
    assert not nvidia_gpu_visible({"CUDA_VISIBLE_DEVICES": "-1"}, (present,))
    assert nvidia_gpu_visible({"CUDA_VISIBLE_DEVICES": "0"}, (present,))


@pytest.mark.parametrize(
    ("device", "visible", "want"),
    [
        ("auto", True, (1, 2)),
        ("auto", False, (0, 3)),
        ("cpu", True, (0, 3)),
        ("cuda", False, (1, 2)),  # asked for explicitly: the job will fail loudly without one, not fall back
        ("cuda:1", True, (1, 2)),
    ],
)
def test_torch_job_resources(device: str, visible: bool, want: tuple[int, int]) -> None:
    assert torch_job_resources(device, 3, visible) == want
