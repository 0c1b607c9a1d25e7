"""Job-time limits (issue 20, item 10): fewer readable images than the config asks for stop with the config key."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from xai_ssl.data.records import DataError
from xai_ssl.stages.data import index_dataset, make_pairs


@pytest.fixture
def index(tmp_path: Path) -> Path:
    """An index of 3 readable images (a 4th, unreadable, skipped)."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (12, 12), (i * 50, 0, 0)).save(folder / f"{i}.png")
    (folder / "3.png").write_text("not an image")
    path = tmp_path / "index.csv"
    index_dataset(str(path), "image_folder", str(folder), on_bad_image="skip")
    return path


def test_more_images_requested_than_readable(index: Path, tmp_path: Path) -> None:
    """n_images 4 passes the config check (4 files) but 1 is skipped: refused, naming the key and the count (not cut to 3)."""
    with pytest.raises(DataError) as err:
        make_pairs(str(index), str(tmp_path / "p.h5"), None, 4, 8, 0, progress=False)
    msg = str(err.value)
    assert "config key 'datasets.<name>.n_images'" in msg and "4 images requested" in msg and "has 3 readable" in msg
    assert not (tmp_path / "p.h5").exists()
    make_pairs(str(index), str(tmp_path / "p.h5"), None, 3, 8, 0, progress=False)


def test_split_without_images(index: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"config key 'datasets.<name>.split'.*'test'.*\['None'\]"):
        make_pairs(str(index), str(tmp_path / "p.h5"), "test", None, 8, 0, progress=False)


def test_empty_shard_names_the_key(index: Path, tmp_path: Path) -> None:
    """3 images in 4 shards (possible when images were skipped after the config check): the empty shard says so."""
    from helpers import tiny_encoder
    from xai_ssl.models.registry import save_encoder
    from xai_ssl.stages.attribution import compute_attributions

    pairs = tmp_path / "p.h5"
    make_pairs(str(index), str(pairs), None, None, 16, 0, progress=False)
    encoder = tmp_path / "encoder.pt"
    save_encoder(tiny_encoder().float(), encoder, "small_resnet", {"width": 4, "embedding_dim": 8, "hidden_dim": 16})
    with pytest.raises(ValueError, match=r"config key 'datasets.photos.n_shards': shard 0 of 4 is empty.*holds 3 images"):
        compute_attributions(str(pairs), str(encoder), str(tmp_path / "m.h5"), "gradcam", {}, 4, 0, "cpu", 4, "photos", "m", "gradcam", 0, progress=False)
