"""Reading a dataset's image records by its config ``source`` (Two4Two folders, extracted archives, image folders)."""

from __future__ import annotations

from pathlib import Path

from xai_ssl.data.image_folder import SkippedEntry, list_image_folder
from xai_ssl.data.records import DataError, ImageRecord
from xai_ssl.data.two4two import read_two4two_split
from xai_ssl.data.two4two_archive import find_two4two_splits

TWO4TWO_SOURCES = ("synthetic_two4two", "two4two", "two4two_archive")


def two4two_split_folders(source: str, root: Path) -> list[Path]:
    """The split folders (holding ``parameters.jsonl``) of a Two4Two dataset: children of ``root``, or at any depth for archives."""
    if not root.is_dir():
        return []
    if source == "two4two_archive":  # extracted archive: split folders at any depth
        return find_two4two_splits(root)
    return sorted(p for p in root.iterdir() if (p / "parameters.jsonl").is_file())


def unique_ids(records: list[ImageRecord]) -> None:
    """Refuse an id that occurs in two splits: the id seeds every random draw of an image, and the same render
    in two splits is a leak between training and evaluation (or a folder assembled twice)."""
    first: dict[str, ImageRecord] = {}
    for record in records:
        other = first.setdefault(record.image_id, record)
        if other is not record:
            raise DataError(
                f"{record.path}: image id {record.image_id!r} of split {record.split!r} is also in split {other.split!r} "
                f"({other.path}); ids must be unique across the splits of a dataset: remove one of the two, or give it "
                f"another id (its row in parameters.jsonl and its file names)"
            )


def read_dataset(source: str, root: Path) -> tuple[list[ImageRecord], list[tuple[SkippedEntry, str]]]:
    """Every image record of the dataset at ``root`` (all splits), by source, and what was skipped while listing it.

    Two4Two datasets must carry masks: one without any ``<id>_mask.png`` stops here (a missing mask of some
    images only leaves their localisation scores NA).
    """
    root = Path(root)
    if source in TWO4TWO_SOURCES:
        splits = two4two_split_folders(source, root)
        if not splits:
            raise FileNotFoundError(f"{root}: no Two4Two split folders (with parameters.jsonl) found")
        records = [r for split in splits for r in read_two4two_split(split, split.name)]
        unique_ids(records)
        if records and all(r.mask_path is None for r in records):
            raise DataError(
                f"{root}: no <id>_mask.png beside any of the {len(records)} images of this Two4Two dataset; its masks are "
                f"what the localisation metrics score: restore them, or use source: image_folder to explain the images without masks"
            )
        return records, []
    if source == "image_folder":
        return list_image_folder(root)
    raise ValueError(f"unknown dataset source {source!r}")


def read_records(source: str, root: Path) -> list[ImageRecord]:
    """Every image record of the dataset at ``root`` (all splits), by source."""
    return read_dataset(source, root)[0]
