"""Reading a dataset by its source: ids must be unique across the splits of a Two4Two folder (issue 20, item 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from xai_ssl.data.records import DataError
from xai_ssl.data.sources import read_records
from xai_ssl.stages.data import index_dataset


def write_split(folder: Path, ids: list[str]) -> None:
    folder.mkdir(parents=True)
    (folder / "parameters.jsonl").write_text("".join(json.dumps({"id": i, "obj_name": "peaky"}) + "\n" for i in ids))
    for i in ids:
        Image.new("RGB", (8, 8)).save(folder / f"{i}.png")
        Image.new("L", (8, 8), 1).save(folder / f"{i}_mask.png")


@pytest.mark.parametrize("source", ["two4two", "two4two_archive"])
def test_same_id_in_two_splits_is_refused(tmp_path: Path, source: str) -> None:
    """The same render in train and test (a leak, or a folder assembled twice) stops with both files named."""
    write_split(tmp_path / "ds" / "test", ["a", "shared"])
    write_split(tmp_path / "ds" / "train", ["b", "shared"])
    with pytest.raises(DataError) as err:
        read_records(source, tmp_path / "ds")
    msg = str(err.value)
    assert "'shared'" in msg and str(tmp_path / "ds" / "test" / "shared.png") in msg and str(tmp_path / "ds" / "train" / "shared.png") in msg
    assert "test" in msg and "train" in msg and "unique" in msg
    with pytest.raises(DataError, match="'shared'"):
        index_dataset(str(tmp_path / "index.csv"), source, str(tmp_path / "ds"), on_bad_image="skip")
    assert not (tmp_path / "index.csv").exists()


def test_distinct_ids_across_splits_are_read(tmp_path: Path) -> None:
    write_split(tmp_path / "ds" / "test", ["a"])
    write_split(tmp_path / "ds" / "train", ["b"])
    assert [(r.image_id, r.split) for r in read_records("two4two", tmp_path / "ds")] == [("a", "test"), ("b", "train")]
