"""The seed rule with stochastic methods: maps depend on the config seed and the image id only (not on the run,
the shard or the global random generators), through the real attribution stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import random_dataset
from xai_ssl.io.maps_file import Attributions, load_attributions
from xai_ssl.stages.attribution import compute_attributions

S = 24  # px
N_TEST = 4  # explained images; shard 1 of 2 = the last two rows
COCOA = {"corpus_size": 3, "foil_size": 3}
# every method whose maps depend on random draws, with few samples (config name: (registry name, params))
STOCHASTIC = {
    "smooth_grad": ("smooth_grad", {"n_samples": 3}),
    "pairwise_occlusion": ("pairwise_occlusion", {"n_erases": 8}),
    "relax": ("relax", {"n_masks": 8, "num_cells": 4}),
    "avg_transforms_n": ("avg_transforms_n", {}),
    "avg_transforms_gn": ("avg_transforms_gn", {}),
    "cocoa_rise": ("cocoa_rise", {"n_masks": 8, "num_cells": 4, **COCOA}),
    "cocoa_gradshap": ("cocoa_gradshap", {"n_samples": 3, **COCOA}),
    "lffi_gradshap": ("lffi_gradshap", {"n_samples": 3}),
    "pixel_invariance": ("pixel_invariance", {"n_augmentations": 8, "epochs": 2}),
    "random_baseline": ("random_baseline", {}),
    "feature_visualisation": ("feature_visualisation", {"octaves": 1, "iterations": 2}),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Pairs of 4 random test images (24 px), a dataset index with 3 training images (COCOA's corpus), a tiny encoder."""
    return random_dataset(tmp_path_factory.mktemp("seeding"), N_TEST, S, n_train=3)


def attribute(data: dict[str, Path], out: Path, method: str, seed: int, shard: int = 0, n_shards: int = 1) -> Attributions:
    """The attribution stage on one shard; the maps it wrote."""
    registry, params = STOCHASTIC[method]
    compute_attributions(
        data["pairs"], data["encoder"], out, registry, params, n_shards, seed, "cpu", 2, "d", "m", method, shard, index=data["index"], progress=False
    )
    return load_attributions(out)


def rows(a: Attributions, idx: list[int]) -> list[torch.Tensor]:
    """The maps of rows ``idx`` (both maps of two-map methods)."""
    return [a.map1[idx]] + ([] if a.map2 is None else [a.map2[idx]])


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equal (a plain bool, so a failure message shows no tensors)."""
    return bool(torch.equal(a, b))


@pytest.mark.parametrize("method", sorted(STOCHASTIC))
def test_stochastic_maps_depend_on_seed_and_image_only(data: dict[str, Path], method: str, tmp_path: Path) -> None:
    """Same config seed: bit-identical maps, and a shard's rows equal those rows of the full run; another seed: other maps."""
    torch.manual_seed(1234)  # the global generators are in some state; the maps must not depend on it
    full = attribute(data, tmp_path / "full.h5", method, seed=3)
    torch.manual_seed(99)
    np.random.seed(7)
    again = attribute(data, tmp_path / "again.h5", method, seed=3)
    last = attribute(data, tmp_path / "last.h5", method, seed=3, shard=1, n_shards=2)
    other = attribute(data, tmp_path / "other.h5", method, seed=4)
    assert full.image_ids == [f"im{i}" for i in range(N_TEST)] and last.image_ids == ["im2", "im3"]
    for a, b in zip(rows(full, list(range(N_TEST))), rows(again, list(range(N_TEST)))):
        assert same(a, b), f"{method}: a rerun with the same seed gave other maps"
    for a, b in zip(rows(full, [2, 3]), rows(last, [0, 1])):
        assert same(a, b), f"{method}: the maps of the last shard differ from those rows of the full run"
    unchanged = [i for i in range(N_TEST) if all(same(a, b) for a, b in zip(rows(full, [i]), rows(other, [i])))]
    assert not unchanged, f"{method}: config seed 4 left the maps of images {unchanged} unchanged"
    # the images do not share one draw: two images' maps differ in how they change with the seed
    assert not torch.equal(full.map1[0] - other.map1[0], full.map1[1] - other.map1[1])
