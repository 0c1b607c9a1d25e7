"""Reading a dataset's image records by its config ``source`` (Two4Two folders, extracted archives, image folders)."""

from __future__ import annotations

from pathlib import Path

from xai_ssl.data.image_folder import read_image_folder
from xai_ssl.data.records import ImageRecord
from xai_ssl.data.two4two import read_two4two_split
from xai_ssl.data.two4two_archive import find_two4two_splits

TWO4TWO_SOURCES = ("synthetic_two4two", "two4two", "two4two_archive")


def read_records(source: str, root: Path) -> list[ImageRecord]:
    """Every image record of the dataset at ``root`` (all splits), by source."""
    root = Path(root)
    if source in TWO4TWO_SOURCES:
        if source == "two4two_archive":  # extracted archive: split folders at any depth
            splits = find_two4two_splits(root) if root.is_dir() else []
        else:
            splits = sorted(p for p in root.iterdir() if (p / "parameters.jsonl").is_file()) if root.is_dir() else []
        if not splits:
            raise FileNotFoundError(f"{root}: no Two4Two split folders (with parameters.jsonl) found")
        return [r for split in splits for r in read_two4two_split(split, split.name)]
    if source == "image_folder":
        return read_image_folder(root)
    raise ValueError(f"unknown dataset source {source!r}")
