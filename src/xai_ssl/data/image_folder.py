"""Reader for a plain folder of images (optionally one subfolder per class)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from xai_ssl.data.images import is_image_file
from xai_ssl.data.records import DataError, ImageRecord


def _relative_image_paths(root: Path, recursive: bool) -> list[PurePosixPath]:
    """Relative POSIX paths of all image files under root; hidden files and folders skipped."""
    found: list[PurePosixPath] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(root)
            for name in filenames:
                if not name.startswith(".") and is_image_file(name):
                    found.append(PurePosixPath(rel_dir.as_posix()) / name)
    else:
        for entry in root.iterdir():
            if entry.is_file() and not entry.name.startswith(".") and is_image_file(entry.name):
                found.append(PurePosixPath(entry.name))
    return sorted(found, key=str)


def read_image_folder(root: Path | str, recursive: bool = True) -> list[ImageRecord]:
    """List every image under root as an ImageRecord, sorted by relative POSIX path."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: image folder does not exist")
    rel_paths = _relative_image_paths(root, recursive)
    if not rel_paths:
        raise DataError(f"{root}: image folder holds no images (extensions: jpg, jpeg, png, bmp, webp, tif, tiff)")
    records: list[ImageRecord] = []
    first_path_of: dict[str, PurePosixPath] = {}
    for rel in rel_paths:
        image_id = str(rel.with_suffix(""))
        if image_id in first_path_of:
            raise DataError(
                f"{root / rel}: duplicate image id {image_id!r} (also {root / first_path_of[image_id]})"
            )
        first_path_of[image_id] = rel
        label = rel.parent.name if len(rel.parts) > 1 else None
        records.append(ImageRecord(image_id=image_id, path=root / rel, label=label))
    return records
