"""Shared test fixtures: paths to the repository and the shared test data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


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
