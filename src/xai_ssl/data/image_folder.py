"""Reader for a plain folder of images (optionally one subfolder per class).

The folder is walked once, in sorted order, following links to folders but never into a folder (or onto a
file) already reached: a link loop (``loop -> .``) or a second link to an indexed folder is skipped and
reported, so no image is counted twice. File names that are not valid UTF-8 (e.g. Latin-1 ``caf\\xe9.jpg``)
are read under an id whose undecodable bytes are written ``%XX`` (``caf%E9``); the file itself is found
again through the exact bytes of its name.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from xai_ssl.data.images import IMAGE_EXTENSIONS, is_image_file
from xai_ssl.data.records import DataError, ImageRecord

log = logging.getLogger(__name__)

_SURROGATE = re.compile("[\udc80-\udcff]")


def image_id_of(name: str) -> str:
    """A text id for a file name as the OS gave it: bytes that were not UTF-8 (surrogate escapes) become ``%XX``."""
    return _SURROGATE.sub(lambda m: f"%{ord(m.group()) - 0xDC00:02X}", name)


@dataclass(frozen=True)
class SkippedEntry:
    """A folder link or file link not followed while walking a dataset folder, and why."""

    path: Path
    reason: str


def walk_files(root: Path, keep: Callable[[str], bool], recursive: bool = True) -> Iterator[tuple[PurePosixPath, os.stat_result] | SkippedEntry]:
    """Relative POSIX paths (and stat results) of the files under ``root`` whose names ``keep`` accepts, in sorted order.

    Hidden files and folders (a leading dot) are left out. Links to folders are followed, but a folder already
    reached (by its device and inode: link loops, a second link, a bind mount) is yielded as a
    :class:`SkippedEntry` instead of being walked again; a file already yielded under another name (a link or
    hard link to it) is skipped the same way. Only ``stat`` is called: nothing is read.
    """
    root = Path(root)
    seen_dirs: dict[tuple[int, int], PurePosixPath] = {}
    seen_files: dict[tuple[int, int], PurePosixPath] = {}

    def visit(folder: Path, rel: PurePosixPath) -> Iterator[tuple[PurePosixPath, os.stat_result] | SkippedEntry]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: os.fsencode(e.name))
        except OSError as exc:
            yield SkippedEntry(folder, f"folder cannot be listed ({exc.strerror or exc})")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child = rel / entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
                st = entry.stat(follow_symlinks=True)
            except OSError as exc:  # a dangling link, a file removed meanwhile
                if keep(entry.name) or entry.is_symlink():
                    yield SkippedEntry(Path(entry.path), f"cannot be read ({exc.strerror or exc}; a dangling link?)")
                continue
            key = (st.st_dev, st.st_ino)
            if is_dir:
                if not recursive:
                    continue
                if key in seen_dirs:
                    yield SkippedEntry(
                        Path(entry.path),
                        f"folder link to {os.path.realpath(entry.path)}, already indexed as {seen_dirs[key]} (a link loop or a second link); not followed",
                    )
                    continue
                seen_dirs[key] = child
                yield from visit(Path(entry.path), child)
            elif keep(entry.name):
                if key in seen_files:
                    yield SkippedEntry(Path(entry.path), f"same file as {seen_files[key]} (a link or hard link to it); indexed once")
                    continue
                seen_files[key] = child
                yield child, st

    st_root = root.stat()
    seen_dirs[(st_root.st_dev, st_root.st_ino)] = PurePosixPath(".")
    yield from visit(root, PurePosixPath())


def list_image_folder(root: Path | str, recursive: bool = True) -> tuple[list[ImageRecord], list[tuple[SkippedEntry, str]]]:
    """Every image under root as an ImageRecord (sorted by relative path), and the links not followed with their reasons."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: image folder does not exist")
    found: list[PurePosixPath] = []
    skipped: list[tuple[SkippedEntry, str]] = []
    for item in walk_files(root, is_image_file, recursive):
        if isinstance(item, SkippedEntry):
            log.warning("%s: %s", image_id_of(str(item.path)), item.reason)
            skipped.append((item, item.reason))
        else:
            found.append(item[0])
    if not found:
        raise DataError(f"{root}: image folder holds no images (extensions: {', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)})")
    records: list[ImageRecord] = []
    first_path_of: dict[str, PurePosixPath] = {}
    for rel in sorted(found, key=lambda p: str(p)):
        image_id = image_id_of(str(rel.with_suffix("")))
        if image_id in first_path_of:
            raise DataError(
                f"{image_id_of(str(root / rel))}: duplicate image id {image_id!r} (also {image_id_of(str(root / first_path_of[image_id]))})"
            )
        first_path_of[image_id] = rel
        label = image_id_of(rel.parent.name) if len(rel.parts) > 1 else None
        records.append(ImageRecord(image_id=image_id, path=root / rel, label=label))
    return records, skipped


def read_image_folder(root: Path | str, recursive: bool = True) -> list[ImageRecord]:
    """List every image under root as an ImageRecord, sorted by relative POSIX path (links followed once)."""
    return list_image_folder(root, recursive)[0]
