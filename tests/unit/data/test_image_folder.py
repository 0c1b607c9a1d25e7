"""Tests for the image-folder reader and the image / mask loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import SHARED_DATA, shared_data
from xai_ssl.data.image_folder import read_image_folder
from xai_ssl.data.images import IMAGE_EXTENSIONS, load_mask, load_rgb
from xai_ssl.data.records import DataError

IMAGENET_SAMPLE = SHARED_DATA / "imagenet-sample"


def _check_rgb(image: torch.Tensor, height: int, width: int) -> None:
    assert image.shape == (3, height, width)
    assert image.dtype == torch.float32
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


def test_imagenet_sample() -> None:
    shared_data("imagenet-sample")
    records = read_image_folder(IMAGENET_SAMPLE)
    assert len(records) == 63
    ids = [r.image_id for r in records]
    assert ids == sorted(ids)
    assert all(r.label is None and r.mask_path is None for r in records)
    for record in records:
        assert record.path.suffix == ".JPEG"
        image = load_rgb(record.path)
        assert image.ndim == 3 and image.shape[0] == 3 and image.shape[1] > 16 and image.shape[2] > 16
        assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


def test_extensions_constant() -> None:
    assert IMAGE_EXTENSIONS == (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")  # GIF since issue 20


def test_folder_layout_ids_labels_and_sorting(tmp_path: Path) -> None:
    for rel in ["b/z.PNG", "a/y.jpg", "a/sub/x.png", "top.bmp", "notes.txt", ".hidden/h.png", "a/.h.png"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".txt"):
            path.write_text("hello")
        else:
            Image.new("RGB", (4, 3), (1, 2, 3)).save(path, format="PNG" if rel.lower().endswith("png") else None)
    records = read_image_folder(tmp_path)
    assert [r.image_id for r in records] == ["a/sub/x", "a/y", "b/z", "top"]
    assert [r.label for r in records] == ["sub", "a", "b", None]
    assert records[0].path == tmp_path / "a" / "sub" / "x.png"
    flat = read_image_folder(tmp_path, recursive=False)
    assert [r.image_id for r in flat] == ["top"]


def test_duplicate_stem_is_error(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "cat.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "cat.jpg")
    with pytest.raises(DataError, match="duplicate image id 'cat'"):
        read_image_folder(tmp_path)


def test_empty_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match="no images"):
        read_image_folder(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        read_image_folder(tmp_path / "missing")


def test_greyscale_png(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((5, 7), 128, dtype=np.uint8)).save(path)
    image = load_rgb(path)
    _check_rgb(image, 5, 7)
    assert torch.allclose(image, torch.full_like(image, 128 / 255))


def test_rgba_png_drops_alpha(tmp_path: Path) -> None:
    path = tmp_path / "rgba.png"
    Image.new("RGBA", (6, 4), (255, 0, 51, 0)).save(path)
    image = load_rgb(path)
    _check_rgb(image, 4, 6)
    assert torch.allclose(image[:, 0, 0], torch.tensor([1.0, 0.0, 0.2]))


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 0, 0, 0)).save(path, quality=95)  # no ink = white
    assert Image.open(path).mode == "CMYK"
    image = load_rgb(path)
    _check_rgb(image, 8, 8)
    assert float(image.min()) > 0.9


def test_sixteen_bit_png_is_scaled(tmp_path: Path) -> None:
    white, mid = tmp_path / "white16.png", tmp_path / "mid16.png"
    Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)).save(white)
    Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)).save(mid)
    assert Image.open(white).mode.startswith("I")
    image = load_rgb(white)
    _check_rgb(image, 4, 4)
    assert float(image.min()) > 0.99
    assert abs(float(load_rgb(mid).mean()) - 0.5) < 0.01


def test_palette_png(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    palette_image = Image.new("P", (3, 2), 1)
    palette_image.putpalette([0, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    palette_image.save(path)
    image = load_rgb(path)
    _check_rgb(image, 2, 3)
    assert torch.allclose(image[:, 1, 2], torch.tensor([0.0, 1.0, 0.0]))


def test_truncated_jpeg_names_file(tmp_path: Path) -> None:
    full = tmp_path / "full.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full, quality=90)
    broken = tmp_path / "broken.jpg"
    data = full.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"broken\.jpg"):
        load_rgb(broken)


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_text("this is not an image")
    with pytest.raises(DataError, match=r"fake\.png"):
        load_rgb(path)
    with pytest.raises(DataError, match=r"fake\.png"):
        load_mask(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"absent\.png.*not found"):
        load_rgb(tmp_path / "absent.png")


def test_load_mask_modes(tmp_path: Path) -> None:
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4) % 9
    Image.fromarray(labels).save(tmp_path / "l.png")
    assert np.array_equal(load_mask(tmp_path / "l.png"), labels)
    palette = Image.new("P", (4, 3))
    palette.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    palette.putdata(labels.flatten().tolist())
    palette.save(tmp_path / "p.png")
    assert np.array_equal(load_mask(tmp_path / "p.png"), labels)  # palette indices, not colours
    Image.fromarray(np.repeat(labels[:, :, None], 3, axis=2)).save(tmp_path / "rgb_equal.png")
    assert np.array_equal(load_mask(tmp_path / "rgb_equal.png"), labels)
    unequal = np.zeros((3, 4, 3), dtype=np.uint8)
    unequal[..., 1] = 5
    Image.fromarray(unequal).save(tmp_path / "rgb_colour.png")
    with pytest.raises(DataError, match=r"rgb_colour\.png"):
        load_mask(tmp_path / "rgb_colour.png")
    Image.new("RGBA", (3, 3)).save(tmp_path / "rgba.png")
    with pytest.raises(DataError, match=r"rgba\.png.*mode 'RGBA'"):
        load_mask(tmp_path / "rgba.png")


# --- issue 20: directory links, non-UTF-8 names -------------------------------------------------------------


def test_directory_link_loop_is_followed_once(tmp_path: Path) -> None:
    """``loop -> .`` is not followed (41 copies of good.jpg before); the link is reported with its reason."""
    from xai_ssl.data.image_folder import list_image_folder

    root = tmp_path / "imgs"
    root.mkdir()
    Image.new("RGB", (8, 8), (9, 9, 9)).save(root / "good.jpg")
    (root / "loop").symlink_to(".", target_is_directory=True)
    assert [r.image_id for r in read_image_folder(root)] == ["good"]
    records, skipped = list_image_folder(root)
    assert [r.image_id for r in records] == ["good"]
    assert [s.path.name for s, _ in skipped] == ["loop"]
    assert "already indexed" in skipped[0][1] and "not followed" in skipped[0][1]


def test_second_link_to_a_folder_and_to_a_file_are_skipped(tmp_path: Path) -> None:
    """A folder reached twice (a real folder and a link to it) and a file link to an indexed file give one image each."""
    from xai_ssl.data.image_folder import list_image_folder

    root = tmp_path / "imgs"
    (root / "cats").mkdir(parents=True)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(root / "cats" / "tom.png")
    Image.new("RGB", (8, 8), (3, 2, 1)).save(root / "solo.png")
    (root / "zz_cats_again").symlink_to(root / "cats", target_is_directory=True)
    (root / "solo_link.png").symlink_to(root / "solo.png")
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (8, 8)).save(outside / "far.png")
    (root / "linked_outside").symlink_to(outside, target_is_directory=True)  # followed: a link, but not a repeat
    records, skipped = list_image_folder(root)
    assert [r.image_id for r in records] == ["cats/tom", "linked_outside/far", "solo"]
    reasons = {s.path.name: reason for s, reason in skipped}
    assert sorted(reasons) == ["solo_link.png", "zz_cats_again"]
    assert "already indexed as cats" in reasons["zz_cats_again"] and "same file as solo.png" in reasons["solo_link.png"]


def test_index_lists_skipped_links(tmp_path: Path) -> None:
    from xai_ssl.data.index import skipped_report_path
    from xai_ssl.stages.data import index_dataset

    root = tmp_path / "imgs"
    root.mkdir()
    Image.new("RGB", (8, 8)).save(root / "good.jpg")
    (root / "loop").symlink_to(".", target_is_directory=True)
    index = tmp_path / "index.csv"
    assert [r.image_id for r in index_dataset(str(index), "image_folder", str(root))] == ["good"]
    assert "loop" in skipped_report_path(index).read_text(encoding="utf-8")


def test_non_utf8_file_name_is_indexed_under_a_round_tripping_id(tmp_path: Path) -> None:
    """A Latin-1 name (``caf\\xe9.jpg``) is explained as ``caf%E9``; the index CSV gives back the exact file."""
    import os

    from xai_ssl.data.index import read_index
    from xai_ssl.io.pairs_file import read_pairs
    from xai_ssl.stages.data import index_dataset, make_pairs

    root = tmp_path / "imgs"
    root.mkdir()
    raw = os.path.join(os.fsencode(root), b"caf\xe9.jpg")
    Image.new("RGB", (8, 8), (200, 10, 10)).save(os.fsdecode(raw), format="JPEG")
    Image.new("RGB", (8, 8)).save(root / "plain.png")
    index = tmp_path / "index.csv"
    records = index_dataset(str(index), "image_folder", str(root), on_bad_image="stop")
    assert [r.image_id for r in records] == ["caf%E9", "plain"]
    back = read_index(index)
    assert os.fsencode(back[0].path) == raw and back[0].image_id == "caf%E9"
    make_pairs(str(index), str(tmp_path / "pairs.h5"), None, None, 8, 0, progress=False)
    pairs = read_pairs(tmp_path / "pairs.h5")
    assert pairs.image_ids == ["caf%E9", "plain"]
    assert float(pairs.x1[0, 0].mean()) > 0.7  # the red image


def test_percent_in_a_utf8_name_is_kept(tmp_path: Path) -> None:
    """Ordinary names keep their ids (no escaping); only undecodable bytes become %XX."""
    from xai_ssl.data.image_folder import image_id_of

    assert image_id_of("100% real") == "100% real"
    assert image_id_of("caf\udce9") == "caf%E9"
    assert image_id_of("café") == "café"
