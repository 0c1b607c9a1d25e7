"""Tests for the procedural Two4Two stand-in: on-disk format, determinism and geometry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import SHARED_DATA, shared_data
from xai_ssl.data.images import load_mask, load_rgb
from xai_ssl.data.synthetic_two4two import generate_two4two, render, sample_parameters
from xai_ssl.data.two4two import read_two4two_parameters, read_two4two_split

MINI = SHARED_DATA / "two4two-mini"
# Keys of SceneParameters.state_dict() in the real files (used when two4two-mini is absent).
REAL_KEYS = [
    "obj_name", "labeling_error", "spherical", "bending", "obj_rotation_roll", "obj_rotation_pitch",
    "obj_rotation_yaw", "fliplr", "position_x", "position_y", "arm_position", "obj_color",
    "obj_color_rgba", "bg_color", "bg_color_rgba", "resolution", "id", "original_id",
    "_attributes_status", "label", "__module__", "__name__",
]  # fmt: skip
SIZES = {"train": 6, "validation": 3, "test": 3}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate_two4two(root, SIZES, seed=7, progress=False)
    return root


def _real_row() -> dict | None:
    jsonl = MINI / "train" / "parameters.jsonl"
    return json.loads(jsonl.read_text().splitlines()[0]) if jsonl.is_file() else None


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_reader(generated: Path) -> None:
    assert sorted(p.name for p in generated.iterdir()) == sorted(SIZES)  # no temporary folders left
    for split, size in SIZES.items():
        records = read_two4two_split(generated / split)
        assert len(records) == size
        assert len(list((generated / split).glob("*.png"))) == 2 * size
        for record in records:
            assert record.split == split and record.label in {"peaky", "stretchy"}
            with Image.open(record.path) as image:
                assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (128, 128))
                assert np.all(np.asarray(image)[..., 3] == 255)
            assert record.mask_path is not None
            with Image.open(record.mask_path) as mask_image:
                assert (mask_image.format, mask_image.mode, mask_image.size) == ("PNG", "L", (128, 128))
            assert load_rgb(record.path).shape == (3, 128, 128)
            assert set(np.unique(load_mask(record.mask_path)).tolist()) == set(range(9))


def test_json_fields_match_real_format(generated: Path) -> None:
    real = _real_row()
    expected_keys = list(real) if real is not None else REAL_KEYS
    rows = read_two4two_parameters(generated / "train")
    for row in rows:
        assert list(row) == expected_keys
        if real is not None:
            assert set(row["_attributes_status"]) == set(real["_attributes_status"])
            for key in expected_keys:
                assert type(row[key]) is type(real[key]) or real[key] is None, key
        assert row["label"] == row["obj_name"] and row["labeling_error"] is False and row["fliplr"] is False
        assert row["resolution"] == [128, 128] and row["original_id"] is None
        assert (row["__module__"], row["__name__"]) == ("two4two.scene_parameters", "SceneParameters")
        assert len(row["obj_color_rgba"]) == 4 and len(row["bg_color_rgba"]) == 4
        assert len(row["id"]) == 36 and row["id"][14] == "4"  # UUID4 text form
    # jsonl: one compact row per line in generation order, same order as the records
    lines = (generated / "train" / "parameters.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [r.image_id for r in read_two4two_split(generated / "train")]


def test_coolwarm_mapping_matches_real_row() -> None:
    shared_data("two4two-mini")
    real = _real_row()
    from matplotlib import colormaps

    assert np.allclose(colormaps["coolwarm"](real["obj_color"]), real["obj_color_rgba"])
    row = sample_parameters(np.random.default_rng(0))
    assert np.allclose(colormaps["coolwarm"](row["bg_color"]), row["bg_color_rgba"])


def test_deterministic_same_seed(generated: Path, tmp_path: Path) -> None:
    generate_two4two(tmp_path / "again", SIZES, seed=7, progress=False)
    assert _files(generated) == _files(tmp_path / "again")


def test_different_seed_differs(generated: Path, tmp_path: Path) -> None:
    generate_two4two(tmp_path / "other", {"train": 6}, seed=8, progress=False)
    old, new = _files(generated / "train"), _files(tmp_path / "other" / "train")
    assert old["parameters.jsonl"] != new["parameters.jsonl"]
    assert not (set(old) & set(new)) - {"parameters.jsonl"}  # different ids, so different file names


def test_split_seeds_are_independent(generated: Path, tmp_path: Path) -> None:
    generate_two4two(tmp_path / "x", {"test": 3, "train": 2}, seed=7, progress=False)
    assert _files(tmp_path / "x" / "test") == _files(generated / "test")
    first_two = (generated / "train" / "parameters.jsonl").read_text().splitlines()[:2]
    assert (tmp_path / "x" / "train" / "parameters.jsonl").read_text().splitlines() == first_two
    # each split has its own stream: the splits do not repeat each other
    train_ids = [r.image_id for r in read_two4two_split(generated / "train")]
    test_ids = [r.image_id for r in read_two4two_split(generated / "test")]
    assert not set(train_ids) & set(test_ids)


def test_existing_split_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir(parents=True)
    (tmp_path / "train" / "stale.png").write_bytes(b"old")
    generate_two4two(tmp_path, {"train": 2}, seed=1, progress=False)
    assert not (tmp_path / "train" / "stale.png").exists()
    assert len(read_two4two_split(tmp_path / "train")) == 2


def test_parameter_distributions() -> None:
    rng = np.random.default_rng(123)
    rows = [sample_parameters(rng) for _ in range(400)]
    names = [r["obj_name"] for r in rows]
    assert 150 < names.count("peaky") < 250
    for row in rows:
        if row["obj_name"] == "peaky":
            assert 0.0 <= row["arm_position"] <= 0.52
        else:
            assert 0.48 <= row["arm_position"] <= 1.0
        assert 0.0 <= row["spherical"] <= 1.0
        assert abs(row["bending"]) <= np.pi / 10
        assert -np.pi <= row["obj_rotation_yaw"] <= 0.0
        assert -0.8 <= row["position_x"] <= 0.0 and -0.8 <= row["position_y"] <= 0.0
        assert 0.05 <= row["bg_color"] <= 0.95 and 0.0 <= row["obj_color"] <= 1.0
    assert len({r["id"] for r in rows}) == len(rows)


def test_all_labels_present_in_nearly_every_render() -> None:
    rng = np.random.default_rng(5)
    complete = 0
    for _ in range(100):
        rgba, mask = render(sample_parameters(rng))
        assert rgba.shape == (128, 128, 4) and rgba.dtype == np.uint8 and mask.dtype == np.uint8
        assert mask.max() <= 8
        complete += set(np.unique(mask).tolist()) == set(range(9))
        assert 0.05 < float((mask > 0).mean()) < 0.3  # object fills a sensible part of the frame
    assert complete >= 95


def test_background_pixel_matches_bg_color() -> None:
    rng = np.random.default_rng(11)
    for _ in range(10):
        params = sample_parameters(rng)
        rgba, mask = render(params)
        assert mask[0, 0] == 0
        expected = np.round(np.asarray(params["bg_color_rgba"][:3]) * 255)
        assert np.abs(rgba[0, 0, :3].astype(float) - expected).max() <= 1


def _centroid(mask: np.ndarray, labels: tuple[int, ...]) -> np.ndarray:
    ys, xs = np.nonzero(np.isin(mask, labels))
    return np.array([xs.mean(), ys.mean()])


def _arm_offset_along_spine(mask: np.ndarray) -> float:
    """Signed distance of the right-arm centroid (7, 8) beyond the spine end (6) along the spine axis."""
    spine_end, spine_start = _centroid(mask, (6,)), _centroid(mask, (3,))
    axis = (spine_end - spine_start) / np.linalg.norm(spine_end - spine_start)
    return float((_centroid(mask, (7, 8)) - spine_end) @ axis)


def test_right_arms_move_with_arm_position() -> None:
    base = sample_parameters(np.random.default_rng(3))
    base.update(bending=0.0, obj_rotation_pitch=0.0, obj_rotation_roll=0.0, obj_rotation_yaw=-0.6)
    peaky = dict(base, obj_name="peaky", label="peaky", arm_position=0.1)
    stretchy = dict(base, obj_name="stretchy", label="stretchy", arm_position=0.9)
    peaky_mask, stretchy_mask = render(peaky)[1], render(stretchy)[1]
    peaky_offset, stretchy_offset = _arm_offset_along_spine(peaky_mask), _arm_offset_along_spine(stretchy_mask)
    assert peaky_offset < 0 < stretchy_offset  # peaky: spine end peeks out; stretchy: arms beyond it
    assert stretchy_offset - peaky_offset > 10  # ~0.8 block spacings of ~19.5 px
    # the rest of the animal keeps its shape (the whole object may shift, it is centred as a whole)
    for label in (1, 2, 4, 5, 6):
        peaky_rel = _centroid(peaky_mask, (label,)) - _centroid(peaky_mask, (3,))
        stretchy_rel = _centroid(stretchy_mask, (label,)) - _centroid(stretchy_mask, (3,))
        assert np.abs(peaky_rel - stretchy_rel).max() < 1.5


def test_render_rejects_bad_params() -> None:
    params = sample_parameters(np.random.default_rng(0))
    with pytest.raises(ValueError, match="arm_position"):
        render({k: v for k, v in params.items() if k != "arm_position"})
    with pytest.raises(ValueError, match="resolution"):
        render(dict(params, resolution=[0, 0]))


def test_other_resolution() -> None:
    rgba, mask = render(sample_parameters(np.random.default_rng(2), resolution=64))
    assert rgba.shape == (64, 64, 4) and mask.shape == (64, 64)
