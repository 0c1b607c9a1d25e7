"""ImageNet validation preparation on the shared 63-image sample: folder and tar, first N by file name, §1.6 views."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torchvision.transforms as T
from PIL import Image

from helpers import SHARED_DATA, shared_data
from xai_ssl.data.imagenet import DEFAULT_PATTERN, imagenet_val_records, select_names
from xai_ssl.data.index import read_index
from xai_ssl.data.records import DataError
from xai_ssl.io.pairs_file import read_pairs
from xai_ssl.stages.data import make_pairs, prepare_imagenet_val

SAMPLE = SHARED_DATA / "imagenet-sample"


@pytest.fixture(scope="module")
def sample() -> list[Path]:
    return sorted(shared_data("imagenet-sample").glob("*.JPEG"))


@pytest.fixture
def ilsvrc_folder(sample: list[Path], tmp_path: Path) -> Path:
    """Links to the sample under ILSVRC names, in reverse order (so file-name order differs from the sample's)."""
    folder = tmp_path / "val"
    folder.mkdir()
    for i, src in enumerate(reversed(sample[:12]), start=1):
        (folder / f"ILSVRC2012_val_{i:08d}.JPEG").symlink_to(src)
    (folder / "LOC_val_solution.csv").write_text("not an image\n")
    (folder / ".ILSVRC2012_val_00000000.JPEG").write_text("hidden\n")
    return folder


def test_select_names_sorts_and_filters() -> None:
    names = ["ILSVRC2012_val_00000010.JPEG", "ILSVRC2012_val_00000002.jpeg", "x.JPEG", "ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000003.png"]
    assert select_names(names, 2) == ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.jpeg"]
    assert select_names(names, None) == ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.jpeg", "ILSVRC2012_val_00000010.JPEG"]
    assert DEFAULT_PATTERN == "ILSVRC2012_val_*.JPEG"


def test_folder_first_n_by_file_name(ilsvrc_folder: Path, sample: list[Path], tmp_path: Path) -> None:
    records = prepare_imagenet_val(tmp_path / "index.csv", tmp_path / "images", ilsvrc_folder, 5)
    assert [r.image_id for r in records] == [f"ILSVRC2012_val_{i:08d}" for i in range(1, 6)]
    assert records[0].path.resolve() == sample[11].resolve()  # a link to the 12th sample file
    assert [r.split for r in records] == [None] * 5 and [r.label for r in records] == [None] * 5
    assert read_index(tmp_path / "index.csv") == records
    assert not any((tmp_path / "images").iterdir())  # a folder is indexed in place


def test_folder_with_class_subfolders(sample: list[Path], tmp_path: Path) -> None:
    root = tmp_path / "val"
    for i, src in enumerate(sample[:4], start=1):
        wnid = src.name.split("_")[0]
        (root / wnid).mkdir(parents=True)
        (root / wnid / f"ILSVRC2012_val_{i:08d}.JPEG").symlink_to(src)
    records = imagenet_val_records(root, 3, tmp_path / "images")
    assert [r.label for r in records] == [s.name.split("_")[0] for s in sample[:3]]


def test_sample_folder_with_a_pattern(sample: list[Path], tmp_path: Path) -> None:
    records = imagenet_val_records(SAMPLE, 3, tmp_path / "images", pattern="*.jpeg")  # case-insensitive
    assert [r.path for r in records] == [s.resolve() for s in sample[:3]]
    assert records[0].image_id == sample[0].stem
    with pytest.raises(DataError, match="no file matches 'ILSVRC2012_val_\\*.JPEG'"):
        imagenet_val_records(SAMPLE, 3, tmp_path / "images")


def test_tar_extracts_only_the_selected_members(ilsvrc_folder: Path, tmp_path: Path) -> None:
    archive = tmp_path / "ILSVRC2012_img_val.tar"
    with tarfile.open(archive, "w") as tar:
        for p in sorted(ilsvrc_folder.glob("ILSVRC*.JPEG"), reverse=True):
            tar.add(p.resolve(), arcname=p.name)  # flat, as the official tar
        tar.add(ilsvrc_folder / "LOC_val_solution.csv", arcname="LOC_val_solution.csv")
    images = tmp_path / "images"
    records = prepare_imagenet_val(tmp_path / "index.csv", images, archive, 4)
    assert sorted(p.name for p in images.iterdir()) == [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 5)]
    assert [r.path for r in records] == [(images / f"ILSVRC2012_val_{i:08d}.JPEG").resolve() for i in range(1, 5)]
    assert records[2].path.read_bytes() == (ilsvrc_folder / "ILSVRC2012_val_00000003.JPEG").read_bytes()


def test_tar_gz_with_nested_paths_never_writes_outside(ilsvrc_folder: Path, tmp_path: Path) -> None:
    archive = tmp_path / "val.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add((ilsvrc_folder / "ILSVRC2012_val_00000002.JPEG").resolve(), arcname="../../evil/ILSVRC2012_val_00000002.JPEG")
        tar.add((ilsvrc_folder / "ILSVRC2012_val_00000001.JPEG").resolve(), arcname="val/n01/ILSVRC2012_val_00000001.JPEG")
    records = imagenet_val_records(archive, None, tmp_path / "out" / "images")
    assert [r.image_id for r in records] == ["ILSVRC2012_val_00000001", "ILSVRC2012_val_00000002"]
    assert records[0].label == "n01"
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"]
    assert not (tmp_path / "evil").exists()


def test_missing_source_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=str(tmp_path / "absent.tar")):
        imagenet_val_records(tmp_path / "absent.tar", 5, tmp_path / "images")


def test_views_follow_the_reference_preprocessing(ilsvrc_folder: Path, tmp_path: Path) -> None:
    """x1 = Resize(256) + CenterCrop(224) (§1.6) at image_size 224; x2 a SimCLR view of the same size."""
    prepare_imagenet_val(tmp_path / "index.csv", tmp_path / "images", ilsvrc_folder, 2)
    make_pairs(tmp_path / "index.csv", tmp_path / "pairs.h5", None, 2, 224, seed=0, crop_scale=(0.08, 1.0), progress=False)
    pairs = read_pairs(tmp_path / "pairs.h5")
    assert pairs.x1.shape == (2, 3, 224, 224) and pairs.x2.shape == (2, 3, 224, 224)
    reference = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])
    for i, record in enumerate(read_index(tmp_path / "index.csv")):
        with Image.open(record.path) as img:
            ref = reference(img.convert("RGB"))
        ours = pairs.x1[i]  # float in [0, 1], rounded to 8 bits
        assert float((ours - ref).abs().mean()) < 0.01
        assert np.corrcoef(ours.flatten().numpy(), ref.flatten().numpy())[0, 1] > 0.99
