"""Tests for the Two4Two reader on the real two4two-mini renders and on broken folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import SHARED_DATA, shared_data
from xai_ssl.data.images import load_mask, load_rgb
from xai_ssl.data.records import DataError
from xai_ssl.data.two4two import (
    BLOCK_NAMES,
    CLASS_RELEVANT_BLOCKS,
    OBJ_NAME_TO_INT,
    read_two4two_parameters,
    read_two4two_split,
)

MINI = SHARED_DATA / "two4two-mini"


@pytest.fixture(scope="module")
def mini() -> Path:
    return shared_data("two4two-mini")


def test_constants() -> None:
    assert len(BLOCK_NAMES) == 8
    assert BLOCK_NAMES[0] == "arm_left_top" and BLOCK_NAMES[-1] == "arm_right_bottom"
    assert [BLOCK_NAMES[i - 1] for i in CLASS_RELEVANT_BLOCKS] == ["arm_right_top", "arm_right_bottom"]
    assert OBJ_NAME_TO_INT == {"peaky": 0, "stretchy": 1}


@pytest.mark.parametrize(("split", "count"), [("train", 48), ("test", 32)])
def test_reads_real_split(mini: Path, split: str, count: int) -> None:
    records = read_two4two_split(mini / split)
    assert len(records) == count
    rows = read_two4two_parameters(mini / split)
    assert [r.image_id for r in records] == [row["id"] for row in rows]  # file order
    assert len({r.image_id for r in records}) == count
    for record in records:
        assert record.split == split
        assert record.label in {"peaky", "stretchy"}
        assert record.path == mini / split / f"{record.image_id}.png"
        assert record.mask_path == mini / split / f"{record.image_id}_mask.png"
    assert read_two4two_split(mini / split, split="custom")[0].split == "custom"


@pytest.mark.parametrize("split", ["train", "test"])
def test_real_images_and_masks_load(mini: Path, split: str) -> None:
    for record in read_two4two_split(mini / split):
        image = load_rgb(record.path)
        assert image.shape == (3, 128, 128)
        assert image.dtype == torch.float32
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
        assert float(image.std()) > 0.01  # not blank
        assert record.mask_path is not None
        mask = load_mask(record.mask_path)
        assert mask.shape == (128, 128) and mask.dtype == np.uint8
        assert set(np.unique(mask).tolist()) == set(range(9))


def _write_split(folder: Path, rows: list[dict], lines: list[str] | None = None) -> Path:
    folder.mkdir(parents=True)
    for row in rows:
        Image.new("RGBA", (8, 8), (10, 20, 30, 255)).save(folder / f"{row['id']}.png")
    text = "\n".join(lines if lines is not None else [json.dumps(r) for r in rows]) + "\n"
    (folder / "parameters.jsonl").write_text(text)
    return folder


def test_minimal_split_blank_lines_and_fallback_label(tmp_path: Path) -> None:
    rows = [{"id": "x1", "obj_name": "peaky"}, {"id": "x2", "obj_name": "stretchy", "label": "peaky"}]
    folder = _write_split(tmp_path / "val", rows, [json.dumps(rows[0]), "", "   ", json.dumps(rows[1])])
    Image.new("L", (8, 8)).save(folder / "x2_mask.png")
    records = read_two4two_split(folder)
    assert [r.image_id for r in records] == ["x1", "x2"]
    assert [r.label for r in records] == ["peaky", "peaky"]
    assert records[0].mask_path is None and records[1].mask_path == folder / "x2_mask.png"
    assert {r.split for r in records} == {"val"}


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_two4two_split(tmp_path / "absent")


def test_missing_jsonl(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match="parameters.jsonl"):
        read_two4two_split(tmp_path / "train")


def test_bad_json_line_names_line_number(tmp_path: Path) -> None:
    rows = [{"id": "a", "obj_name": "peaky"}, {"id": "b", "obj_name": "peaky"}]
    folder = _write_split(tmp_path / "train", rows, [json.dumps(rows[0]), json.dumps(rows[1]), "{not json"])
    with pytest.raises(DataError, match=r"parameters\.jsonl.*line 3"):
        read_two4two_split(folder)


def test_row_without_id(tmp_path: Path) -> None:
    folder = _write_split(tmp_path / "train", [], ['{"obj_name": "peaky"}'])
    with pytest.raises(DataError, match="'id'"):
        read_two4two_split(folder)


def test_missing_image_named(tmp_path: Path) -> None:
    rows = [{"id": "a", "obj_name": "peaky"}, {"id": "b", "obj_name": "stretchy"}]
    folder = _write_split(tmp_path / "train", rows)
    (folder / "b.png").unlink()
    with pytest.raises(DataError, match=r"b\.png"):
        read_two4two_split(folder)


def test_duplicate_id(tmp_path: Path) -> None:
    rows = [{"id": "a", "obj_name": "peaky"}, {"id": "a", "obj_name": "stretchy"}]
    folder = _write_split(tmp_path / "train", rows)
    with pytest.raises(DataError, match="duplicate id 'a'"):
        read_two4two_split(folder)
