"""Shared test fixtures: paths to the repository and the shared test data."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import REPO, SHARED_DATA  # noqa: F401 (REPO re-exported for tests)


@pytest.fixture
def two4two_mini() -> Path:
    """The 80 real Two4Two renders beside the checkout (skip when absent)."""
    path = SHARED_DATA / "two4two-mini"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture
def imagenet_sample() -> Path:
    """The 63 real ImageNet-style photographs beside the checkout (skip when absent)."""
    path = SHARED_DATA / "imagenet-sample"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Run the whole workflow once on the tiny config (2 shards) locally: (work dir, code copy)."""
    from workflow_runner import TINY_CONFIG, copy_code, snakemake, write_config

    root = tmp_path_factory.mktemp("workflow")
    code = copy_code(root / "code")
    work = root / "work"
    write_config(work, TINY_CONFIG)
    snakemake(work, code)
    return work, code
