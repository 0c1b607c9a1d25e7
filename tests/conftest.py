"""Shared test fixtures: paths to the repository and the shared test data."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import pytest_make_collect_report, pytest_runtest_makereport, shared_data  # noqa: F401  the hooks: the CI skip rule


@pytest.fixture
def two4two_mini() -> Path:
    """The 80 real Two4Two renders beside the checkout (skipped when absent; a failure in CI)."""
    return shared_data("two4two-mini")


@pytest.fixture
def imagenet_sample() -> Path:
    """The 63 real ImageNet-style photographs beside the checkout (skipped when absent; a failure in CI)."""
    return shared_data("imagenet-sample")


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
