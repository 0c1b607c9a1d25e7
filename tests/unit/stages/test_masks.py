"""Masks per image (issue 20, item 2): one missing mask leaves that image's localisation NA, not the dataset's."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from helpers import tiny_encoder
from xai_ssl.data.records import DataError
from xai_ssl.data.synthetic_two4two import generate_two4two
from xai_ssl.io.maps_file import Attributions
from xai_ssl.io.pairs_file import read_pairs
from xai_ssl.metrics import get_metric
from xai_ssl.metrics.localisation import COLUMNS, score_maps
from xai_ssl.scoring import score_attributions
from xai_ssl.stages.data import index_dataset, make_pairs

SIZE = 32


@pytest.fixture(scope="module")
def two4two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated Two4Two folder (4 test images with masks)."""
    root = tmp_path_factory.mktemp("t42") / "ds"
    generate_two4two(root, {"test": 4}, seed=5, resolution=48, progress=False)
    return root


def pairs_without_one_mask(two4two: Path, tmp_path: Path) -> tuple[Path, str]:
    """Copy the folder, delete the second image's mask, index it and make the pairs; (pairs file, id without mask)."""
    ds = tmp_path / "ds"
    shutil.copytree(two4two, ds)
    victim = sorted(p for p in (ds / "test").glob("*_mask.png"))[1]
    victim.unlink()
    index = tmp_path / "index.csv"
    index_dataset(str(index), "two4two", str(ds))
    pairs = tmp_path / "pairs.h5"
    make_pairs(str(index), str(pairs), "test", None, SIZE, 0, progress=False)
    return pairs, victim.name.removesuffix("_mask.png")


def test_one_missing_mask_keeps_the_others(two4two: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The pairs file stores every mask it has and flags the image without one; the log says which."""
    full_index = tmp_path / "full.csv"
    index_dataset(str(full_index), "two4two", str(two4two))
    make_pairs(str(full_index), str(tmp_path / "full.h5"), "test", None, SIZE, 0, progress=False)
    full = read_pairs(tmp_path / "full.h5")
    with caplog.at_level("WARNING"):
        path, missing = pairs_without_one_mask(two4two, tmp_path / "cut")
    pairs = read_pairs(path)
    assert pairs.mask1 is not None and pairs.has_mask1 is not None
    flags = [i != missing for i in pairs.image_ids]
    assert pairs.has_mask1.tolist() == flags and flags.count(False) == 1
    keep = np.array(flags)
    assert np.array_equal(pairs.mask1[keep], full.mask1[keep])  # the other masks are those of the complete folder
    assert not pairs.mask1[~keep].any()
    assert torch.equal(pairs.x1, full.x1)  # views do not depend on the masks
    assert any(missing in r.getMessage() and "no mask" in r.getMessage() for r in caplog.records)
    with h5py.File(path) as f:
        assert f["has_mask1"].dtype == np.uint8 or f["has_mask1"].dtype == bool


def test_localisation_is_scored_per_image(two4two: Path, tmp_path: Path) -> None:
    """Images with a mask get the values the complete masks give (computed directly); the one without gets NA, counted."""
    path, missing = pairs_without_one_mask(two4two, tmp_path)
    pairs = read_pairs(path)
    n = len(pairs.image_ids)
    maps = torch.rand(n, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    attributions = Attributions(list(pairs.image_ids), pairs.indices, maps, None, {})
    spec = get_metric("localisation")
    params = spec.resolve_params({}, SIZE)
    diagnostics: dict = {}
    table, _ = score_attributions(tiny_encoder(), pairs, attributions, "crop_aug", [(spec, params)], torch.device("cpu"), 4, False, diagnostics=diagnostics)
    direct = score_maps(maps, torch.from_numpy(pairs.mask1), params)  # the masks as stored (all rows)
    for b, image_id in enumerate(pairs.image_ids):
        for c in COLUMNS:
            value = table.loc[b, c]
            if image_id == missing:
                assert np.isnan(value)
            elif not np.isnan(direct[c][b]):
                assert value == pytest.approx(direct[c][b])
    assert table.loc[[i != missing for i in pairs.image_ids], "PG_obj"].notna().all()
    assert diagnostics["images_without_mask"] == 1


def test_two4two_dataset_without_any_mask_stops(two4two: Path, tmp_path: Path) -> None:
    """A Two4Two folder whose masks are all gone is refused at indexing, naming the folder and what to do."""
    ds = tmp_path / "ds"
    shutil.copytree(two4two, ds)
    for p in ds.rglob("*_mask.png"):
        p.unlink()
    with pytest.raises(DataError) as err:
        index_dataset(str(tmp_path / "index.csv"), "two4two", str(ds))
    msg = str(err.value)
    assert str(ds) in msg and "_mask.png" in msg and "image_folder" in msg


def test_old_pairs_file_without_flags_reads_as_all_masked(two4two: Path, tmp_path: Path) -> None:
    """Files written before the flags existed (mask1 only when every image had one) still read: all flagged present."""
    index = tmp_path / "index.csv"
    index_dataset(str(index), "two4two", str(two4two))
    path = tmp_path / "pairs.h5"
    make_pairs(str(index), str(path), "test", None, SIZE, 0, progress=False)
    with h5py.File(path, "a") as f:
        if "has_mask1" in f:
            del f["has_mask1"]
    pairs = read_pairs(path)
    assert pairs.has_mask1 is not None and pairs.has_mask1.all()


def test_image_folder_has_no_mask_datasets(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    for i in range(2):
        Image.new("RGB", (20, 20), (i, 0, 0)).save(tmp_path / "imgs" / f"{i}.png")
    index_dataset(str(tmp_path / "index.csv"), "image_folder", str(tmp_path / "imgs"))
    make_pairs(str(tmp_path / "index.csv"), str(tmp_path / "p.h5"), None, None, 16, 0, progress=False)
    pairs = read_pairs(tmp_path / "p.h5")
    assert pairs.mask1 is None and pairs.has_mask1 is None
    with h5py.File(tmp_path / "p.h5") as f:
        assert "mask1" not in f and "has_mask1" not in f


def test_missing_masks_stop_is_not_triggered_by_image_folders(tmp_path: Path) -> None:
    """Only Two4Two sources must have masks (image folders never do)."""
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (20, 20)).save(tmp_path / "imgs" / "a.png")
    assert len(index_dataset(str(tmp_path / "index.csv"), "image_folder", str(tmp_path / "imgs"))) == 1


def test_table_notes_images_without_mask(tmp_path: Path) -> None:
    """The Markdown table says how many explained images had no mask (counted once, not per method or metric)."""
    from xai_ssl.metrics import metric_directions
    from xai_ssl.stages.evaluation import mask_notes

    directions = metric_directions(["insertion_deletion", "localisation"])
    shards = [{"diagnostics": {"images_without_mask": 1}}, {"diagnostics": {"images_without_mask": 2}}] * 2
    methods = ["gradcam", "gradcam", "occlusion", "occlusion"]
    notes = mask_notes(shards, methods, directions)
    assert len(notes) == 1 and "3 explained image(s) have no mask" in notes[0]
    assert mask_notes([{"diagnostics": {}}], ["gradcam"], directions) == []
    assert mask_notes(shards, methods, metric_directions(["insertion_deletion"])) == []  # no localisation columns
