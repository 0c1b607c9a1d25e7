"""Changed data is noticed (issue 20, item 1): the index depends on the dataset's content, not on its path only."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workflow_runner import TINY_CONFIG, copy_code, planned_jobs, snakemake, write_config

pytestmark = [pytest.mark.integration]


def photo(path: Path, seed: int) -> None:
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)


def test_replaced_image_reruns_the_index_and_the_pairs(tmp_path: Path) -> None:
    """Replace an explained photo: index and pairs are planned again; a new non-image file or an unchanged folder plan nothing."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        photo(photos / f"p{i}.png", i)
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["datasets"] = {"photos": {"source": "image_folder", "path": str(photos), "n_images": 3, "image_size": 32, "n_shards": 1}}
    cfg["models"]["tiny_simclr"]["train_dataset"] = "photos"
    cfg["models"]["tiny_simclr"]["train_split"] = None
    cfg["run"]["datasets"] = ["photos"]
    code = copy_code(tmp_path / "code")
    work = tmp_path / "work"
    write_config(work, cfg)
    target = "results/pairs/photos.h5"
    snakemake(work, code, target)
    (photos / "notes.txt").write_text("not an image: no rerun")
    assert planned_jobs(snakemake(work, code, "-n", target)) == {}
    before = (photos / "p1.png").stat()
    photo(photos / "p1.png", 99)  # another picture under the same name
    os.utime(photos / "p1.png", ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert planned_jobs(snakemake(work, code, "-n", target)) == {"index_dataset": 1, "make_pairs": 1}
