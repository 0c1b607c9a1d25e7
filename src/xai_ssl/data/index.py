"""The dataset index: a CSV of ImageRecords written once per dataset and read by later stages.

The CSV is UTF-8; a file path whose name is not valid UTF-8 is written with its original bytes
(``surrogateescape``), so the path read back is exactly the file's (image ids are always plain text).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from xai_ssl.data.images import UnsupportedImageError, load_mask, load_rgb
from xai_ssl.data.records import DataError, ImageRecord
from xai_ssl.io.atomic import atomic_path
from xai_ssl.io.damaged import DamagedFileError, rebuild_hint

INDEX_COLUMNS: tuple[str, ...] = ("image_id", "path", "mask_path", "label", "split")
PATH_ERRORS = "surrogateescape"  # file names as the OS gives them (non-UTF-8 bytes kept)


class DamagedIndexError(DataError, DamagedFileError):
    """The index CSV of a dataset is damaged (truncated, zeroed, not ours); the message says how to rebuild it."""


def write_index(records: list[ImageRecord], path: Path | str) -> None:
    """Write records as CSV (empty string for None), atomically via a temporary file."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8", errors=PATH_ERRORS) as handle:
        writer = csv.writer(handle)
        writer.writerow(INDEX_COLUMNS)
        for record in records:
            writer.writerow(
                [
                    record.image_id,
                    str(record.path),
                    "" if record.mask_path is None else str(record.mask_path),
                    "" if record.label is None else record.label,
                    "" if record.split is None else record.split,
                ]
            )


def read_index(path: Path | str) -> list[ImageRecord]:
    """Read an index CSV written by write_index back into ImageRecords."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: dataset index file does not exist; {rebuild_hint(path)}")
    try:
        text = path.read_text(encoding="utf-8", errors=PATH_ERRORS)
    except OSError as exc:
        raise DamagedIndexError(f"{path}: cannot read dataset index ({exc}); {rebuild_hint(path)}") from exc
    if "\x00" in text or (text and not text.endswith("\n")):
        raise DamagedIndexError(f"{path}: dataset index is truncated or zeroed (every index ends with a newline); {rebuild_hint(path)}")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = reader.fieldnames or []
        missing = [c for c in INDEX_COLUMNS if c not in columns]
        if missing:
            raise DamagedIndexError(
                f"{path}: dataset index lacks column(s) {', '.join(missing)} (has: {', '.join(columns)[:200]}); {rebuild_hint(path)}"
            )
        records: list[ImageRecord] = []
        for line_number, row in enumerate(reader, start=2):
            image_id, image_path = row["image_id"], row["path"]
            if not image_id or not image_path:
                raise DamagedIndexError(f"{path}: line {line_number} has an empty image_id or path; {rebuild_hint(path)}")
            records.append(
                ImageRecord(
                    image_id=image_id,
                    path=Path(image_path),
                    mask_path=Path(row["mask_path"]) if row["mask_path"] else None,
                    label=row["label"] or None,
                    split=row["split"] or None,
                )
            )
    except csv.Error as exc:
        raise DamagedIndexError(f"{path}: cannot read dataset index ({exc}); {rebuild_hint(path)}") from exc
    return records


def select_records(
    records: list[ImageRecord], split: str | None, n_images: int | None
) -> list[ImageRecord]:
    """Keep records of the given split (None = all), then the first n_images (None = all)."""
    if n_images is not None and n_images < 0:
        raise ValueError(f"n_images must be >= 0 or None, got {n_images}")
    kept = [r for r in records if split is None or r.split == split]
    return kept if n_images is None else kept[:n_images]


ON_BAD_IMAGE = ("skip", "stop")
SKIPPED_COLUMNS: tuple[str, ...] = ("image_id", "path", "reason")


def skipped_report_path(index_csv: Path | str) -> Path:
    """The report of skipped images next to an index: ``index.csv`` -> ``index.skipped.csv``."""
    index_csv = Path(index_csv)
    return index_csv.with_name(index_csv.stem + ".skipped.csv")


def check_record(record: ImageRecord, max_pixels: int | None = None) -> None:
    """Decode a record's image (and mask) fully; raise DataError naming the file and the reason.

    ``max_pixels``: files declaring more pixels are refused before decoding (decompression bombs).
    """
    load_rgb(record.path, max_pixels)
    if record.mask_path is not None:
        load_mask(record.mask_path, max_pixels)


def screen_records(
    records: list[ImageRecord], on_bad_image: str = "stop", max_pixels: int | None = None
) -> tuple[list[ImageRecord], list[tuple[ImageRecord, str]]]:
    """Split records into readable ones and (record, reason) of unreadable ones.

    ``stop``: the first unreadable image raises DataError (file name and reason);
    ``skip``: unreadable images are returned with their reasons and left out of the first list.
    Animated images (:class:`UnsupportedImageError`) are readable but not explained: they are always
    returned as skipped, whatever ``on_bad_image``.
    """
    if on_bad_image not in ON_BAD_IMAGE:
        raise ValueError(f"on_bad_image must be one of {list(ON_BAD_IMAGE)}, got {on_bad_image!r}")
    good: list[ImageRecord] = []
    bad: list[tuple[ImageRecord, str]] = []
    for record in records:
        try:
            check_record(record, max_pixels)
        except UnsupportedImageError as exc:
            bad.append((record, str(exc)))
            continue
        except DataError as exc:
            if on_bad_image == "stop":
                raise DataError(f"{exc} (datasets.<name>.on_bad_image: stop; set it to 'skip' to leave such files out)") from exc
            bad.append((record, str(exc)))
            continue
        good.append(record)
    return good, bad


def write_skipped(bad: list[tuple[ImageRecord, str]], path: Path | str) -> None:
    """Write the skipped images and their reasons as CSV (header only when none), atomically."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8", errors=PATH_ERRORS) as handle:
        writer = csv.writer(handle)
        writer.writerow(SKIPPED_COLUMNS)
        for record, reason in bad:
            writer.writerow([record.image_id, str(record.path), reason])
