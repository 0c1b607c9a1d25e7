"""What a dataset folder holds, computed without reading a file: its content manifest and its split sizes.

The index of a user's dataset (an image folder, a Two4Two folder, an ImageNet folder or tar) depends on the
folder's content, not only on its path: the ``index_dataset`` / ``prepare_imagenet_val`` rules get the
manifest digest as a parameter, computed when Snakemake builds the DAG, so adding, removing, replacing or
repairing an image (or deleting a mask) reruns the index and everything built from it. The manifest is the
sorted list of (relative path, size, modification time in ns) of the files the reader would consider
(images, ``parameters.jsonl``; the ImageNet pattern), plus the links it would not follow: ``stat`` only,
nothing is opened, so 50 000 files cost well under a second on a local disk. A file replaced by another of
the same size with its modification time restored (``cp -p``, ``rsync -t`` of an equal-sized file) goes
unnoticed: ``touch`` it, or run ``snakemake --forcerun index_dataset``.

Split sizes (``split_sizes``) count what each split would hold (Two4Two: rows of ``parameters.jsonl``;
image folders: image files), so a config asking for more images or shards than a split has is refused before
any job runs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from xai_ssl.data.image_folder import SkippedEntry, walk_files
from xai_ssl.data.imagenet import DEFAULT_PATTERN, matches
from xai_ssl.data.images import is_image_file
from xai_ssl.data.two4two import PARAMETERS_FILE

USER_SOURCES = ("image_folder", "two4two", "imagenet_val")


def _two4two_file(name: str) -> bool:
    return name == PARAMETERS_FILE or is_image_file(name)


def file_filter(source: str, pattern: str | None = None) -> Callable[[str], bool]:
    """Which file names of a dataset folder its reader considers."""
    if source == "image_folder":
        return is_image_file
    if source == "imagenet_val":
        glob = pattern or DEFAULT_PATTERN
        return lambda name: matches(name, glob)
    return _two4two_file


def folder_manifest(root: Path | str, keep: Callable[[str], bool]) -> str:
    """``"<n> files, <bytes> bytes, sha256 <digest>"`` of the kept files under ``root`` (names, sizes, mtimes; links followed once)."""
    h = hashlib.sha256()
    n = total = 0
    for item in walk_files(Path(root), keep):
        if isinstance(item, SkippedEntry):
            h.update(b"skipped\0" + os.fsencode(item.path) + b"\0")
            continue
        rel, st = item
        h.update(os.fsencode(str(rel)) + b"\0" + f"{st.st_size}:{st.st_mtime_ns}\n".encode())
        n += 1
        total += st.st_size
    return f"{n} files, {total} bytes, sha256 {h.hexdigest()[:24]}"


def dataset_content(source: str, path: Path | str, pattern: str | None = None) -> str:
    """The content manifest of a user's dataset (folder, or the ImageNet tar by size and time); 'absent' when missing."""
    path = Path(path)
    if not path.exists():
        return f"absent: {path}"
    if path.is_dir():
        return folder_manifest(path, file_filter(source, pattern))
    st = path.stat()  # a tar (imagenet_val): its size and time stand for its content
    return f"file of {st.st_size} bytes, mtime {st.st_mtime_ns}"


def split_sizes(source: str, path: Path | str, pattern: str | None = None) -> dict[str | None, int] | None:
    """Images per split of a user's dataset as it lies on disk (before unreadable files are skipped).

    Two4Two folders: non-blank rows of each split's ``parameters.jsonl``; image folders and ImageNet folders: the
    image files ({None: n}). None when it cannot be known without reading the data (a tar, a missing path).
    """
    path = Path(path)
    if not path.is_dir():
        return None
    if source == "two4two":
        sizes: dict[str | None, int] = {}
        for split in sorted(p for p in path.iterdir() if (p / PARAMETERS_FILE).is_file()):
            with open(split / PARAMETERS_FILE, "rb") as fh:
                sizes[split.name] = sum(1 for line in fh if line.strip())
        return sizes
    if source in ("image_folder", "imagenet_val"):
        return {None: sum(1 for item in walk_files(path, file_filter(source, pattern)) if not isinstance(item, SkippedEntry))}
    return None

