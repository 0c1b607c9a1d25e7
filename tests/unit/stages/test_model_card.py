"""The model_card stage: what it feeds the card (train split -> test split, x1 with its own x2), labels from the
scene parameters, and the same bytes on a second run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from helpers import write_pairs
from xai_ssl.data.images import load_resized
from xai_ssl.data.index import read_index, select_records
from xai_ssl.data.synthetic_two4two import generate_two4two
from xai_ssl.io.pairs_file import read_pairs
from xai_ssl.models.registry import build_architecture, save_encoder
from xai_ssl.stages import models as stage
from xai_ssl.stages.data import index_dataset

ARCH = {"width": 4, "embedding_dim": 8, "hidden_dim": 16}
MODEL = {"source": "simclr_trained", "arch": "small_resnet", "arch_params": ARCH, "train_split": "train", "image_size": 16, "training": {"threads": 1}}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dataset (train 24, test 6) with its index, the pairs of 4 test images and a random encoder."""
    work = tmp_path_factory.mktemp("card")
    generate_two4two(work / "files", {"train": 24, "test": 6}, seed=1, resolution=32, progress=False)
    index_dataset(str(work / "index.csv"), "synthetic_two4two", str(work / "files"))
    write_pairs(select_records(read_index(work / "index.csv"), "test", 4), work / "pairs.h5", 16, seed=1, crop_scale=(0.3, 1.0))
    torch.manual_seed(0)
    save_encoder(build_architecture("small_resnet", **ARCH).eval(), work / "encoder.pt", "small_resnet", ARCH)
    return work


def _card(run: Path, out: str, model: dict | None = None) -> dict:
    return stage.model_card(str(run / "encoder.pt"), str(run / "index.csv"), [str(run / "pairs.h5")], str(run / out), model or MODEL, ["tiny"], 1, "cpu")


def test_card_fits_on_train_scores_on_test_and_pairs_each_x1_with_its_x2(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict = {}
    original = stage.model_quality

    def spy(encoder, views, train_images, test_images, labels, factory, seed, **kw):
        seen.update(views=views, train=train_images, test=test_images, labels=labels)
        return original(encoder, views, train_images, test_images, labels, factory, seed, **kw)

    monkeypatch.setattr(stage, "model_quality", spy)
    card = _card(run, "q.json")
    records = read_index(run / "index.csv")
    train, test = [r for r in records if r.split == "train"], [r for r in records if r.split == "test"]
    assert torch.equal(seen["train"], load_resized([r.path for r in train], 16))
    assert torch.equal(seen["test"], load_resized([r.path for r in test], 16))
    pairs = read_pairs(run / "pairs.h5")
    x1, x2 = seen["views"]["tiny"]
    assert torch.equal(x1, pairs.x1) and torch.equal(x2, pairs.x2)
    # labels from parameters.jsonl, read here independently
    rows = {}
    for split in ("train", "test"):
        for line in (run / "files" / split / "parameters.jsonl").read_text().splitlines():
            row = json.loads(line)
            rows[row["id"]] = row
    assert seen["labels"]["label"] == ([rows[r.image_id]["obj_name"] for r in train], [rows[r.image_id]["obj_name"] for r in test])
    spherical = [("round" if rows[r.image_id]["spherical"] > 0.5 else "cubic") for r in (*train, *test)]
    assert seen["labels"]["spherical"] == (spherical[:24], spherical[24:])
    if "bent" in seen["labels"]:
        bent = [("bent" if abs(rows[r.image_id]["bending"]) > math.pi / 40 else "straight") for r in (*train, *test)]
        assert seen["labels"]["bent"] == (bent[:24], bent[24:])
    assert card["probe"]["n_train"] == 24 and card["probe"]["n_test"] == 6 and card["view_cosine"]["tiny"]["n"] == 4
    assert card["test_split"] == "test" and card["image_size"] == 16


def test_card_is_the_same_bytes_on_a_second_run(run: Path) -> None:
    _card(run, "a.json")
    torch.set_num_threads(2)  # the card sets its own thread count
    _card(run, "b.json")
    assert (run / "a.json").read_bytes() == (run / "b.json").read_bytes()


def test_card_limits_the_probe_images_and_names_an_empty_split(run: Path) -> None:
    card = _card(run, "c.json", {**MODEL, "card": {"max_train_images": 10, "max_test_images": 3}})
    assert (card["probe"]["n_train"], card["probe"]["n_test"]) == (10, 3)
    with pytest.raises(ValueError, match=r"index\.csv.*test split 'validation' \(0\).*card\.test_split"):
        _card(run, "d.json", {**MODEL, "card": {"test_split": "validation"}})
