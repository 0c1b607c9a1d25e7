"""Bad images: every odd file either converts as documented or is skipped/stopped naming the file and the reason."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xai_ssl.data.images import load_rgb
from xai_ssl.data.index import read_index, skipped_report_path
from xai_ssl.data.records import DataError
from xai_ssl.io.pairs_file import read_pairs
from xai_ssl.stages.data import index_dataset, make_pairs

RNG = np.random.default_rng(0)


def rgb(h: int, w: int) -> np.ndarray:
    """Random uint8 RGB pixels [h, w, 3]."""
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def good_folder(root: Path) -> dict[str, str]:
    """Write readable images of every odd kind; {file name: expected conversion}."""
    root.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb(40, 40)).save(root / "a_rgb.jpg", quality=95)
    Image.fromarray(rgb(40, 40)[..., 0]).save(root / "b_grey.png")
    Image.fromarray(rgb(40, 40)).convert("CMYK").save(root / "c_cmyk.jpg")
    rgba = np.concatenate([rgb(40, 40), np.full((40, 40, 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(root / "d_rgba.png")
    Image.fromarray(np.arange(40 * 40, dtype=np.uint16).reshape(40, 40) * 40).save(root / "e_16bit.png")
    Image.fromarray(rgb(5, 3)).save(root / "f_tiny.png")  # smaller than the 32 px crop
    Image.fromarray(rgb(20, 90)).save(root / "g_wide.png")  # non-square
    return {"a_rgb": "RGB", "b_grey": "L", "c_cmyk": "CMYK", "d_rgba": "RGBA", "e_16bit": "I;16", "f_tiny": "RGB", "g_wide": "RGB"}


def bad_files(root: Path) -> dict[str, str]:
    """Write unreadable files with image extensions; {file name: a word of the expected reason}."""
    full = root / "tmp_full.jpg"
    Image.fromarray(rgb(64, 64)).save(full, quality=90)
    data = full.read_bytes()
    full.unlink()
    (root / "h_truncated.jpg").write_bytes(data[: len(data) // 2])
    png = root / "tmp.png"
    Image.fromarray(rgb(32, 32)).save(png)
    raw = bytearray(png.read_bytes())
    png.unlink()
    raw[60:90] = b"\x00" * 30  # corrupt the IDAT chunk (CRC / zlib failure)
    (root / "i_corrupt.png").write_bytes(bytes(raw))
    (root / "j_text.jpeg").write_text("this is not an image\n")
    return {"h_truncated.jpg": "cannot read image", "i_corrupt.png": "cannot read image", "j_text.jpeg": "cannot read image"}


def test_odd_but_valid_images_convert_as_documented(tmp_path: Path) -> None:
    """Greyscale, CMYK, RGBA, 16-bit, tiny and non-square images load as RGB in [0, 1] and make 32 px views."""
    kinds = good_folder(tmp_path / "imgs")
    for name in kinds:
        path = next((tmp_path / "imgs").glob(name + ".*"))
        x = load_rgb(path)
        assert x.shape[0] == 3 and str(x.dtype) == "torch.float32" and 0.0 <= float(x.min()) and float(x.max()) <= 1.0, name
    grey = load_rgb(tmp_path / "imgs" / "b_grey.png")
    assert np.array_equal(grey[0].numpy(), grey[2].numpy())  # grey replicated to three channels
    sixteen = load_rgb(tmp_path / "imgs" / "e_16bit.png")
    expected = (np.arange(40 * 40).reshape(40, 40) * 40) / 65535.0
    np.testing.assert_allclose(sixteen[0].numpy(), expected, atol=1e-6)  # scaled by 65535, not clipped at 255
    records = index_dataset(tmp_path / "out" / "index.csv", "image_folder", tmp_path / "imgs", on_bad_image="stop")
    assert len(records) == len(kinds)
    make_pairs(tmp_path / "out" / "index.csv", tmp_path / "out" / "pairs.h5", None, None, 32, 0, (0.3, 1.0), progress=False)
    pairs = read_pairs(tmp_path / "out" / "pairs.h5")
    assert pairs.x1.shape == (len(kinds), 3, 32, 32) and pairs.image_ids == sorted(kinds)


def test_skip_keeps_the_good_images_and_reports_the_bad(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """on_bad_image: skip leaves the bad files out, lists them with reasons next to the index and in the log."""
    kinds = good_folder(tmp_path / "imgs")
    bad = bad_files(tmp_path / "imgs")
    index = tmp_path / "out" / "index.csv"
    with caplog.at_level("WARNING"):
        records = index_dataset(index, "image_folder", tmp_path / "imgs", on_bad_image="skip")
    assert sorted(r.image_id for r in records) == sorted(kinds)
    assert [r.image_id for r in read_index(index)] == sorted(kinds)
    with skipped_report_path(index).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(Path(r["path"]).name for r in rows) == sorted(bad)
    for row in rows:
        assert Path(row["path"]).name in row["reason"] and bad[Path(row["path"]).name] in row["reason"]
    for name in bad:
        assert any(name in rec.getMessage() for rec in caplog.records), name
    # the pairs of the good images are made as usual
    make_pairs(index, tmp_path / "out" / "pairs.h5", None, None, 32, 0, (0.3, 1.0), progress=False)
    assert read_pairs(tmp_path / "out" / "pairs.h5").image_ids == sorted(kinds)


def test_skip_report_is_written_when_nothing_is_skipped(tmp_path: Path) -> None:
    """The report exists (header only) so the workflow can declare it as an output."""
    good_folder(tmp_path / "imgs")
    index_dataset(tmp_path / "index.csv", "image_folder", tmp_path / "imgs", on_bad_image="skip")
    assert skipped_report_path(tmp_path / "index.csv").read_text().strip() == "image_id,path,reason"


@pytest.mark.parametrize("name", ["h_truncated.jpg", "i_corrupt.png", "j_text.jpeg"])
def test_stop_names_the_file_and_the_reason(tmp_path: Path, name: str) -> None:
    """on_bad_image: stop fails at index time with the file name, the reason and the switch to use."""
    good_folder(tmp_path / "imgs")
    bad = bad_files(tmp_path / "imgs")
    for other in bad:
        if other != name:
            (tmp_path / "imgs" / other).unlink()
    with pytest.raises(DataError) as err:
        index_dataset(tmp_path / "index.csv", "image_folder", tmp_path / "imgs", on_bad_image="stop")
    msg = str(err.value)
    assert name in msg and bad[name] in msg and "on_bad_image" in msg
    assert not (tmp_path / "index.csv").exists()


def test_very_large_image_names_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An image above Pillow's decompression-bomb limit is refused (stop) or skipped, naming the file."""
    good_folder(tmp_path / "imgs")
    Image.fromarray(rgb(200, 200)).save(tmp_path / "imgs" / "k_huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 40 * 2)  # 200 x 200 > 2 x limit: DecompressionBombError
    with pytest.raises(DataError, match=r"k_huge\.png.*DecompressionBomb"):
        index_dataset(tmp_path / "index.csv", "image_folder", tmp_path / "imgs", on_bad_image="stop")
    records = index_dataset(tmp_path / "index.csv", "image_folder", tmp_path / "imgs", on_bad_image="skip")
    assert "k_huge" not in {r.image_id for r in records} and len(records) == 7


def test_all_bad_is_an_error(tmp_path: Path) -> None:
    """A folder with only unreadable images fails even with skip (nothing to explain)."""
    (tmp_path / "imgs").mkdir()
    bad_files(tmp_path / "imgs")
    with pytest.raises(DataError, match="no readable images"):
        index_dataset(tmp_path / "index.csv", "image_folder", tmp_path / "imgs", on_bad_image="skip")
