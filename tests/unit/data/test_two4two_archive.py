"""The Two4Two archive path (source two4two_archive): a tar built from the real two4two-mini renders is
verified (trust on first use), extracted and indexed with the folder reader; no network is used."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from xai_ssl.data.records import DataError
from xai_ssl.data.two4two_archive import (
    ICLR22_URL,
    find_two4two_splits,
)
from xai_ssl.data.two4two_archive import (
    extract_two4two_archive as extract_archive,
)
from xai_ssl.io.download import ChecksumError, DownloadError, fetch, read_record
from xai_ssl.stages.data import extract_two4two_archive, index_dataset


def make_tar(mini: Path, path: Path, top: str = "two4two_mini_pack", splits: tuple[str, ...] = ("train", "test"), mode: str = "w") -> Path:
    """A tar of the split folders under one top folder, as the published archive is laid out."""
    with tarfile.open(path, mode) as tar:
        for split in splits:
            tar.add(mini / split, arcname=f"{top}/{split}")
    return path


def add_member(tar: tarfile.TarFile, name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE) -> None:
    """Add one member (regular file or symlink) with the given name."""
    info = tarfile.TarInfo(name)
    info.type = kind
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def test_extract_and_index_real_renders(two4two_mini: Path, tmp_path: Path) -> None:
    archive = make_tar(two4two_mini, tmp_path / "two4two.tar")
    out = tmp_path / "extracted"
    found = extract_two4two_archive(archive, out, None)
    assert [p.name for p in found] == ["test", "train"]
    assert read_record(archive) is not None  # digest trusted on first use
    from_tar = index_dataset(tmp_path / "index.csv", "two4two_archive", out)
    from_folder = index_dataset(tmp_path / "index_folder.csv", "two4two", two4two_mini)
    assert len(from_tar) == 80
    key = lambda r: (r.image_id, r.label, r.split, r.mask_path is not None)  # noqa: E731
    assert sorted(map(key, from_tar)) == sorted(map(key, from_folder))
    folder_paths = {r.image_id: r.path for r in from_folder}
    for r in from_tar[:5]:
        assert r.path.read_bytes() == folder_paths[r.image_id].read_bytes()
        assert r.mask_path is not None and r.mask_path.is_file()
    # a second run verifies against the recorded digest; a changed archive is refused
    extract_two4two_archive(archive, out, ["test"])
    assert [p.name for p in find_two4two_splits(out)] == ["test"]
    with tarfile.open(archive, "a") as tar:
        add_member(tar, "two4two_mini_pack/test/extra.png")
    with pytest.raises(ChecksumError, match="recorded on first use"):
        extract_two4two_archive(archive, out, None)


def test_compressed_archive_and_split_selection(two4two_mini: Path, tmp_path: Path) -> None:
    archive = make_tar(two4two_mini, tmp_path / "two4two.tar.gz", splits=("test",), mode="w:gz")
    found = extract_archive(archive, tmp_path / "out", ["test"])
    assert [p.name for p in found] == ["test"]
    assert len(list(found[0].glob("*_mask.png"))) == 32
    with pytest.raises(DataError, match="no Two4Two split folder"):
        extract_archive(archive, tmp_path / "none", ["validation"])
    assert not (tmp_path / "none").exists() and not (tmp_path / "none.tmp").exists()


def test_unsafe_members_are_skipped(two4two_mini: Path, tmp_path: Path) -> None:
    archive = make_tar(two4two_mini, tmp_path / "two4two.tar", splits=("test",))
    with tarfile.open(archive, "a") as tar:
        add_member(tar, "../evil.png")
        add_member(tar, "/abs/evil.png")
        add_member(tar, "two4two_mini_pack/test/link.png", kind=tarfile.SYMTYPE)
        add_member(tar, "two4two_mini_pack/test/notes.txt")
    out = tmp_path / "a" / "out"
    extract_archive(archive, out, None)
    assert not (tmp_path / "a" / "evil.png").exists() and not (tmp_path / "evil.png").exists()
    names = {p.name for p in (out / "two4two_mini_pack" / "test").iterdir()}
    assert "link.png" not in names and "notes.txt" not in names and len(names) == 65


def test_pinned_digest_mismatch(two4two_mini: Path, tmp_path: Path) -> None:
    archive = make_tar(two4two_mini, tmp_path / "two4two.tar", splits=("test",))
    with pytest.raises(ChecksumError, match="pinned"):
        extract_two4two_archive(archive, tmp_path / "out", None, sha256="0" * 64)


def test_missing_archive_names_url_and_path(tmp_path: Path) -> None:
    dest = tmp_path / "resources" / "two4two.tar"
    with pytest.raises(FileNotFoundError) as err:
        extract_two4two_archive(dest, tmp_path / "out", None, url=ICLR22_URL)
    assert ICLR22_URL in str(err.value) and str(dest.resolve()) in str(err.value)
    url = (tmp_path / "no_such_server" / "two4two.tar").as_uri()  # fails like an unreachable host, offline
    with pytest.raises(DownloadError) as err:
        fetch(url, dest)
    assert url in str(err.value) and str(dest.resolve()) in str(err.value) and "by hand" in str(err.value)
    assert not dest.exists()


def test_not_a_tar(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(DataError, match="cannot read"):
        extract_archive(bad, tmp_path / "out", None)
