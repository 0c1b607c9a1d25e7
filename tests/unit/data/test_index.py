"""Tests for the dataset index CSV (write_index / read_index / select_records)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xai_ssl.data.index import read_index, select_records, write_index
from xai_ssl.data.records import DataError, ImageRecord


def _records() -> list[ImageRecord]:
    return [
        ImageRecord("a", Path("/abs/a.png"), Path("/abs/a_mask.png"), "peaky", "train"),
        ImageRecord("b", Path("rel/b.png"), None, "stretchy", "train"),
        ImageRecord("dir/c", Path("rel/dir/c.jpg"), None, None, "test"),
        ImageRecord("d, with comma", Path("rel/d.png"), None, 'odd "label"', None),
        ImageRecord("e", Path("rel/e.png"), None, None, "test"),
    ]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "index.csv"
    write_index(_records(), path)
    assert read_index(path) == _records()
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["index.csv"]  # no temp file left


def test_header_and_empty_strings(tmp_path: Path) -> None:
    path = tmp_path / "index.csv"
    write_index(_records()[:2], path)
    lines = path.read_text().splitlines()
    assert lines[0] == "image_id,path,mask_path,label,split"
    assert lines[2] == "b,rel/b.png,,stretchy,train"


def test_empty_index_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "index.csv"
    write_index([], path)
    assert read_index(path) == []


def test_overwrite_replaces(tmp_path: Path) -> None:
    path = tmp_path / "index.csv"
    write_index(_records(), path)
    write_index(_records()[:1], path)
    assert read_index(path) == _records()[:1]


def test_missing_column_names_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("image_id,path,label\na,a.png,x\n")
    with pytest.raises(DataError, match=r"bad\.csv.*mask_path"):
        read_index(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv"):
        read_index(tmp_path / "nope.csv")


def test_empty_path_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("image_id,path,mask_path,label,split\na,,,,\n")
    with pytest.raises(DataError, match="line 2"):
        read_index(path)


def test_select_records() -> None:
    records = _records()
    assert select_records(records, None, None) == records
    assert [r.image_id for r in select_records(records, "train", None)] == ["a", "b"]
    assert [r.image_id for r in select_records(records, "test", 1)] == ["dir/c"]
    assert [r.image_id for r in select_records(records, None, 3)] == ["a", "b", "dir/c"]
    assert select_records(records, "validation", None) == []
    assert select_records(records, "train", 0) == []
    assert len(select_records(records, "train", 100)) == 2
    with pytest.raises(ValueError):
        select_records(records, None, -1)
