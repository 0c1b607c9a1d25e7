"""Hostile and surprising image files (issue 20): decompression bombs, animated GIFs, EXIF-rotated JPEGs."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xai_ssl.data.images import load_rgb
from xai_ssl.data.index import read_index, skipped_report_path
from xai_ssl.data.records import DataError
from xai_ssl.stages.data import index_dataset, make_pairs


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC (PNG specification §5.3)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG that declares width x height greyscale pixels (all zero, compressed to a few KB)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~10 KB PNG declaring 10000 x 10000 px (100 MP, above Pillow's 89 MP default, below twice it)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(bomb_png(10000, 10000))
    assert path.stat().st_size < 200_000
    return path


def write_good(folder: Path, n: int = 3) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"good{i}.png")


def test_check_pixel_limit_reads_only_the_header(bomb: Path) -> None:
    """The declared size is refused before any pixel is decoded (path and open file alike), naming the file and limit."""
    from xai_ssl.data.images import check_pixel_limit

    with pytest.raises(DataError) as err:
        check_pixel_limit(bomb, 64_000_000)
    msg = str(err.value)
    assert str(bomb) in msg and "10000" in msg and "64000000" in msg and "max_image_pixels" in msg
    with open(bomb, "rb") as fh, pytest.raises(DataError, match="10000"):
        check_pixel_limit(fh, 64_000_000)
    assert check_pixel_limit(bomb, 10000 * 10000) == (10000, 10000)  # at the limit: accepted
    with open(bomb, "rb") as fh:
        fh.seek(0)
        assert check_pixel_limit(fh, 10**9) == (10000, 10000)
        assert fh.tell() == 0  # the caller can still decode the file


def test_default_limit_is_pillows(bomb: Path) -> None:
    from xai_ssl.data.images import DEFAULT_MAX_PIXELS, check_pixel_limit

    assert DEFAULT_MAX_PIXELS == 89_478_485
    with pytest.raises(DataError, match="more than"):
        check_pixel_limit(bomb, DEFAULT_MAX_PIXELS)


def test_index_refuses_a_bomb_before_decoding(bomb: Path, tmp_path: Path) -> None:
    """stop: the index fails naming the bomb; skip: it is listed in index.skipped.csv and the others go on.

    Decoding 10000 x 10000 px would take ~100 MB (greyscale) to 1.2 GB (as float RGB); a refused header costs nothing,
    which the pixel limit of 10^6 px makes visible: Pillow's own check would only warn.
    """
    folder = tmp_path / "imgs"
    write_good(folder)
    (folder / "bomb.png").write_bytes(bomb.read_bytes())
    index = tmp_path / "index.csv"
    with pytest.raises(DataError, match=r"bomb\.png.*10000"):
        index_dataset(str(index), "image_folder", str(folder), on_bad_image="stop", max_image_pixels=1_000_000)
    records = index_dataset(str(index), "image_folder", str(folder), on_bad_image="skip", max_image_pixels=1_000_000)
    assert [r.image_id for r in records] == ["good0", "good1", "good2"]
    skipped = skipped_report_path(index).read_text(encoding="utf-8")
    assert "bomb.png" in skipped and "max_image_pixels" in skipped


def test_make_pairs_applies_the_limit(tmp_path: Path) -> None:
    """An image replaced by a bomb after indexing is refused by make_pairs too (the pairs step decodes again)."""
    folder = tmp_path / "imgs"
    write_good(folder)
    index = tmp_path / "index.csv"
    index_dataset(str(index), "image_folder", str(folder), max_image_pixels=1_000_000)
    (folder / "good1.png").write_bytes(bomb_png(2000, 2000))
    with pytest.raises(DataError, match=r"good1\.png.*2000"):
        make_pairs(str(index), str(tmp_path / "pairs.h5"), None, None, 16, 0, progress=False, max_image_pixels=1_000_000)
    assert not (tmp_path / "pairs.h5").exists()


def test_animated_gif_is_skipped_and_listed(tmp_path: Path) -> None:
    """An animated GIF among good images is left out with a line in index.skipped.csv, even with stop; a still GIF is read."""
    folder = tmp_path / "imgs"
    write_good(folder)
    frames = [Image.new("RGB", (24, 24), c) for c in ("red", "green", "blue")]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("RGB", (24, 24), "yellow").save(folder / "still.gif")
    index = tmp_path / "index.csv"
    records = index_dataset(str(index), "image_folder", str(folder), on_bad_image="stop")
    assert [r.image_id for r in records] == ["good0", "good1", "good2", "still"]
    skipped = skipped_report_path(index).read_text(encoding="utf-8")
    assert "anim.gif" in skipped and "animated" in skipped and "3 frames" in skipped
    still = load_rgb(folder / "still.gif")
    assert still.shape == (3, 24, 24) and float(still[0].mean()) == pytest.approx(1.0) and float(still[2].mean()) == pytest.approx(0.0)


def test_exif_rotated_jpeg_is_explained_upright(tmp_path: Path) -> None:
    """A JPEG stored landscape with EXIF orientation 6 (rotate 90° clockwise to view) loads as the upright portrait."""
    stored = np.zeros((20, 40, 3), np.uint8)  # [H, W, 3] landscape as stored: left half white
    stored[:, :20] = 255
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=100)
    x = load_rgb(path)  # [3, H, W]
    assert x.shape == (3, 40, 20)  # portrait, as every viewer shows it
    # orientation 6: the stored left (white) half is at the top once the image is turned upright
    assert float(x[:, :18].mean()) > 0.9 and float(x[:, 22:].mean()) < 0.1
    plain = tmp_path / "plain.jpg"
    Image.fromarray(stored).save(plain, quality=100)
    assert load_rgb(plain).shape == (3, 20, 40)  # without the tag nothing turns


def test_index_csv_paths_round_trip_through_records(tmp_path: Path) -> None:
    """The index keeps the records it was given (sanity check used by the tests above)."""
    folder = tmp_path / "imgs"
    write_good(folder, 2)
    index_dataset(str(tmp_path / "index.csv"), "image_folder", str(folder))
    assert [r.path.name for r in read_index(tmp_path / "index.csv")] == ["good0.png", "good1.png"]


def test_bytes_io_of_a_normal_image_passes(tmp_path: Path) -> None:
    from xai_ssl.data.images import check_pixel_limit

    buf = io.BytesIO()
    Image.new("RGB", (30, 10)).save(buf, format="PNG")
    buf.seek(0)
    assert check_pixel_limit(buf, 300) == (30, 10)
    with pytest.raises(DataError):
        check_pixel_limit(buf, 299)
