"""Seeds, seeded views, the pairs file, sharding and atomic HDF5 writes."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from helpers import MASK_MISPLACEMENTS, mask_contrast, write_pairs
from xai_ssl.augment import center_view, photometric_augment, simclr_augment
from xai_ssl.data.images import load_rgb
from xai_ssl.data.synthetic_two4two import generate_two4two
from xai_ssl.data.two4two import read_two4two_split
from xai_ssl.io.atomic import temporary_path
from xai_ssl.io.hdf5 import atomic_h5
from xai_ssl.io.pairs_file import count_pairs, read_pairs, shard_range
from xai_ssl.pairs import make_views, to_uint8
from xai_ssl.seeding import derive_seed, generator

NO_PHOTOMETRIC = {"p_jitter": 0.0, "p_gray": 0.0, "p_blur": 0.0}


def test_derive_seed() -> None:
    a = derive_seed(0, "img_1", "view-aug")
    assert a == derive_seed(0, "img_1", "view-aug")
    assert 0 <= a < 2**63
    others = {
        derive_seed(0, "img_2", "view-aug"),
        derive_seed(0, "img_1", "view-photometric"),
        derive_seed(1, "img_1", "view-aug"),
        derive_seed(0, "img_1"),
        derive_seed(0, "view-aug", "img_1"),
    }
    assert a not in others and len(others) == 5
    # the generator is seeded with it
    assert torch.equal(torch.rand(4, generator=generator(0, "x")), torch.rand(4, generator=torch.Generator().manual_seed(derive_seed(0, "x"))))


def test_make_views_deterministic_per_image() -> None:
    img = torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(0))
    v = make_views(img, 16, seed=0, image_id="a")
    w = make_views(img, 16, seed=0, image_id="a")
    other = make_views(img, 16, seed=0, image_id="b")
    reseeded = make_views(img, 16, seed=1, image_id="a")
    for k in ("x1", "x2", "xt"):
        assert v[k].dtype == torch.uint8 and v[k].shape == (3, 16, 16)
        assert torch.equal(v[k], w[k])
    assert torch.equal(v["x1"], other["x1"])  # the clean centre view does not depend on the seed
    assert torch.equal(v["x1"], to_uint8(center_view(img, 16)))
    assert not torch.equal(v["x2"], other["x2"]) and not torch.equal(v["x2"], reseeded["x2"])
    assert not (torch.equal(v["xt"], other["xt"]) and torch.equal(v["xt"], reseeded["xt"]))


def test_to_uint8_clamps_and_rounds() -> None:
    """Floats to bytes: clamped to [0, 1], times 255, rounded to the nearest (half to even)."""
    x = torch.tensor([-0.5, 0.0, 1 / 255, 0.5, 100.4 / 255, 100.6 / 255, 1.0, 1.7])
    assert to_uint8(x).tolist() == [0, 0, 1, 128, 100, 101, 255, 255]
    assert to_uint8(x).dtype == torch.uint8


def test_make_views_plumbing(monkeypatch: pytest.MonkeyPatch) -> None:
    """x2 gets the configured crop scale; xt is the photometric view of x1 itself (in [0, 1]), drawn per image."""
    import xai_ssl.pairs as pairs_module

    img = torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(0))
    scales = []
    real_simclr = pairs_module.simclr_augment
    monkeypatch.setattr(pairs_module, "simclr_augment", lambda *a, **kw: scales.append(kw.get("scale")) or real_simclr(*a, **kw))
    make_views(img, 16, seed=0, image_id="a", crop_scale=(0.5, 0.6))
    assert scales == [(0.5, 0.6)]
    a, b = make_views(img, 16, 0, "a"), make_views(img, 16, 0, "b")
    assert not torch.equal(a["xt"], b["xt"])  # the photometric draw depends on the image id
    monkeypatch.setattr(pairs_module, "photometric_augment", lambda x, g: x)  # identity: xt must be x1 exactly
    v = make_views(img, 16, seed=0, image_id="a")
    assert torch.equal(v["xt"], v["x1"]) and int(v["x1"].max()) > 150  # bytes above 128 tell /255 from /256


def test_simclr_augment_identity_settings_is_a_resize() -> None:
    img = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    for seed in range(5):
        out = simclr_augment(img, 16, torch.Generator().manual_seed(seed), scale=(1.0, 1.0), p_flip=0.0, **NO_PHOTOMETRIC)
        torch.testing.assert_close(out, TF.resize(img, [16, 16], antialias=True).clamp(0, 1), atol=1e-6, rtol=0)
    flipped = simclr_augment(img, 16, torch.Generator().manual_seed(0), scale=(1.0, 1.0), p_flip=1.0, **NO_PHOTOMETRIC)
    torch.testing.assert_close(flipped, TF.resize(img, [16, 16], antialias=True).flip(-1).clamp(0, 1), atol=1e-6, rtol=0)
    # a default view is not a plain resize
    default = simclr_augment(img, 16, torch.Generator().manual_seed(0))
    assert not torch.allclose(default, TF.resize(img, [16, 16], antialias=True), atol=1e-3)


def test_photometric_augment_does_not_move_pixels() -> None:
    img = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(photometric_augment(img, torch.Generator().manual_seed(0), **NO_PHOTOMETRIC), img)
    # greyscale only: each pixel becomes the luma of the same pixel (torchvision weights)
    grey = photometric_augment(img, torch.Generator().manual_seed(0), p_jitter=0.0, p_gray=1.0, p_blur=0.0)
    luma = 0.2989 * img[0] + 0.587 * img[1] + 0.114 * img[2]
    for c in range(3):
        torch.testing.assert_close(grey[c], luma, atol=1e-5, rtol=0)
    # brightness-only jitter scales every pixel by one factor
    g = torch.Generator().manual_seed(3)
    bright = photometric_augment(img * 0.5, g, jitter=(0.5, 0.0, 0.0, 0.0), p_jitter=1.0, p_gray=0.0, p_blur=0.0)
    ratio = bright / (img * 0.5)
    assert ratio.std() < 1e-5 and abs(float(ratio.mean()) - 1) > 1e-4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("two4two")
    generate_two4two(root, {"test": 4}, seed=0, resolution=32, progress=False)
    return root / "test"


def test_pairs_round_trip(dataset: Path, tmp_path: Path) -> None:
    records = read_two4two_split(dataset)
    assert len(records) == 4 and all(r.mask_path is not None for r in records)
    path = tmp_path / "pairs.h5"
    write_pairs(records, path, size=16, seed=7, progress=False)
    assert count_pairs(path) == 4
    assert not path.with_name(path.name + ".tmp").exists()
    pairs = read_pairs(path)
    assert pairs.image_ids == [r.image_id for r in records]
    np.testing.assert_array_equal(pairs.indices, np.arange(4))
    for i, rec in enumerate(records):
        views = make_views(load_rgb(rec.path), 16, 7, rec.image_id)
        for k in ("x1", "x2", "xt"):
            got = getattr(pairs, k)[i]
            assert got.dtype == torch.float32 and got.shape == (3, 16, 16)
            assert float(got.min()) >= 0 and float(got.max()) <= 1
            torch.testing.assert_close(got, views[k].float() / 255, atol=0, rtol=0)
    assert pairs.mask1 is not None and pairs.mask1.dtype == np.uint8 and pairs.mask1.shape == (4, 16, 16)
    assert set(np.unique(pairs.mask1)) <= set(range(9))
    assert (pairs.mask1 == 0).any() and (pairs.mask1 > 0).any()
    masks = torch.from_numpy(pairs.mask1 > 0)  # the masks cover the objects of x1 (the synthetic renders too)
    for name, move in MASK_MISPLACEMENTS.items():
        assert bool((mask_contrast(pairs.x1, masks) > mask_contrast(pairs.x1, move(masks))).all()), f"a {name} mask fits x1 as well"
    with h5py.File(path, "r") as f:
        assert f.attrs["seed"] == 7 and f.attrs["image_size"] == 16 and f.attrs["n_images"] == 4
    # the pair families
    a, b = pairs.pair("crop_aug")
    assert torch.equal(a, pairs.x1) and torch.equal(b, pairs.x2)
    a, b = pairs.pair("interpolation")
    assert torch.equal(a, pairs.x1)
    torch.testing.assert_close(b, 0.1 * pairs.x1 + 0.9 * pairs.xt, atol=0, rtol=0)
    assert not torch.equal(b, pairs.x1)
    with pytest.raises(KeyError, match="crop_aug"):
        pairs.pair("nope")
    # a subset
    sub = read_pairs(path, [1, 3])
    assert sub.image_ids == [records[1].image_id, records[3].image_id]
    assert torch.equal(sub.x2, pairs.x2[[1, 3]])
    np.testing.assert_array_equal(sub.mask1, pairs.mask1[[1, 3]])
    # same seed -> identical file contents; other seed -> other augmented views, same x1
    path2 = tmp_path / "pairs2.h5"
    write_pairs(records, path2, size=16, seed=7, progress=False)
    again = read_pairs(path2)
    assert torch.equal(again.x2, pairs.x2) and torch.equal(again.xt, pairs.xt)
    write_pairs(records, path2, size=16, seed=8, progress=False)
    other = read_pairs(path2)
    assert torch.equal(other.x1, pairs.x1) and not torch.equal(other.x2, pairs.x2)


def reference_center_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """The label mask under x1's geometry, by index arithmetic: the shorter side resized to round(size·256/224) by
    nearest neighbour at pixel centres (source index ⌊(i + ½)·in/out⌋), then the centred size × size crop."""
    h, w = mask.shape
    short = round(size * 256 / 224)
    out_h, out_w = (short, int(short * w / h)) if h <= w else (int(short * h / w), short)
    f32 = np.float32  # torch's arithmetic: a float32 scale (exact ties such as 170.5·400/341 = 200 round down)
    rows = np.minimum(((np.arange(out_h, dtype=f32) + f32(0.5)) * (f32(h) / f32(out_h))).astype(int), h - 1)
    cols = np.minimum(((np.arange(out_w, dtype=f32) + f32(0.5)) * (f32(w) / f32(out_w))).astype(int), w - 1)
    top, left = round((out_h - size) / 2), round((out_w - size) / 2)
    return mask[np.ix_(rows, cols)][top : top + size, left : left + size]


# 100 and 200 px tell 256/224 from 257/224 and 256/225 (the rounded resize side differs); 224 is left out of mutation runs
@pytest.mark.parametrize(("shape", "size"), [((300, 400), 224), ((97, 61), 48), ((128, 128), 16), ((150, 120), 100), ((260, 300), 200)])
def test_center_mask_is_nearest_resize_and_centre_crop(shape: tuple[int, int], size: int) -> None:
    """Labels stay labels (nearest neighbour, no blending) and the crop is x1's: against index arithmetic."""
    from xai_ssl.pairs import center_mask

    mask = np.random.default_rng(size).integers(0, 9, shape, dtype=np.uint8)
    got = center_mask(mask, size)
    assert got.shape == (size, size) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, reference_center_mask(mask, size))


def test_masks_are_aligned_with_x1_on_real_renders(two4two_mini: Path, tmp_path: Path) -> None:
    """The stored label mask of every real render covers the object in x1: its pixels differ from the background
    colour, and more so than for the mask flipped, transposed or shifted by 2 px."""
    from xai_ssl.stages.data import index_dataset, make_pairs

    index_dataset(tmp_path / "index.csv", "two4two", two4two_mini)
    make_pairs(tmp_path / "index.csv", tmp_path / "pairs.h5", "test", None, 48, seed=0, crop_scale=(0.3, 1.0), progress=False)
    pairs = read_pairs(tmp_path / "pairs.h5")
    masks = torch.from_numpy(pairs.mask1 > 0)  # [32, 48, 48]
    fits = mask_contrast(pairs.x1, masks)
    assert bool((fits > 0.02).all()), fits
    for name, move in MASK_MISPLACEMENTS.items():
        worse = fits <= mask_contrast(pairs.x1, move(masks))
        assert not bool(worse.any()), f"the {name} mask fits x1 as well as the stored one for images {worse.nonzero().flatten().tolist()}"


def test_write_pairs_refuses_no_records(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no images"):
        write_pairs([], tmp_path / "p.h5", size=16, seed=0, progress=False)
    assert not (tmp_path / "p.h5").exists()


@pytest.mark.parametrize(("n", "n_shards"), [(10, 1), (10, 3), (7, 7), (3, 5), (0, 2), (100, 8)])
def test_shard_range_partition(n: int, n_shards: int) -> None:
    ranges = [shard_range(n, s, n_shards) for s in range(n_shards)]
    covered = [i for r in ranges for i in r]
    assert covered == list(range(n))  # each position exactly once, in order
    sizes = [len(r) for r in ranges]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize(("shard", "n_shards"), [(-1, 3), (3, 3), (0, 0)])
def test_shard_range_refuses_bad_shard(shard: int, n_shards: int) -> None:
    with pytest.raises(ValueError, match="shard"):
        shard_range(10, shard, n_shards)


def test_atomic_h5_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out" / "file.h5"
    with pytest.raises(RuntimeError, match="boom"), atomic_h5(target) as f:
        f.create_dataset("x", data=np.arange(3))
        assert temporary_path(target).exists()
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary file left
    # an existing file is kept intact when a rewrite fails
    with atomic_h5(target) as f:
        f.create_dataset("x", data=np.arange(3))
    with pytest.raises(RuntimeError), atomic_h5(target) as f:
        f.create_dataset("y", data=np.arange(5))
        raise RuntimeError("boom")
    with h5py.File(target, "r") as f:
        assert list(f) == ["x"] and f["x"][()].tolist() == [0, 1, 2]
    assert [p.name for p in target.parent.iterdir()] == ["file.h5"]


def test_record_views_pass_the_pixel_limit_and_the_mask_switch(tmp_path: Path) -> None:
    """Masks only when asked for and present; the pixel limit is applied to the image and to its mask."""
    from PIL import Image

    from xai_ssl.data.records import DataError, ImageRecord
    from xai_ssl.pairs import record_views

    rgb = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "small.png")
    Image.fromarray(rgb[..., 0] > 127).convert("L").save(tmp_path / "small_mask.png")
    Image.fromarray(np.zeros((40, 40), dtype=np.uint8)).save(tmp_path / "big_mask.png")
    Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    with_mask = ImageRecord("a", tmp_path / "small.png", tmp_path / "small_mask.png")
    without = ImageRecord("b", tmp_path / "small.png")
    got = list(record_views([with_mask, without], 16, 0, (0.5, 1.0), with_masks=True, max_pixels=400))
    assert got[0][1] is not None and got[0][1].shape == (16, 16) and got[1][1] is None
    assert [m for _, m in record_views([with_mask], 16, 0, (0.5, 1.0), with_masks=False)] == [None]
    with pytest.raises(DataError, match=r"big\.png"):
        list(record_views([ImageRecord("c", tmp_path / "big.png")], 16, 0, (0.5, 1.0), with_masks=True, max_pixels=400))
    with pytest.raises(DataError, match=r"big_mask\.png"):
        list(record_views([ImageRecord("d", tmp_path / "small.png", tmp_path / "big_mask.png")], 16, 0, (0.5, 1.0), with_masks=True, max_pixels=400))
