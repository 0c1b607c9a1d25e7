"""The dataset index: a CSV of ImageRecords written once per dataset and read by later stages."""

from __future__ import annotations

import csv
from pathlib import Path

from xai_ssl.data.images import load_mask, load_rgb
from xai_ssl.data.records import DataError, ImageRecord
from xai_ssl.io.atomic import atomic_path

INDEX_COLUMNS: tuple[str, ...] = ("image_id", "path", "mask_path", "label", "split")


def write_index(records: list[ImageRecord], path: Path | str) -> None:
    """Write records as CSV (empty string for None), atomically via a temporary file."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
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
        raise DataError(f"{path}: dataset index file does not exist")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            missing = [c for c in INDEX_COLUMNS if c not in columns]
            if missing:
                raise DataError(
                    f"{path}: dataset index lacks column(s) {', '.join(missing)} (has: {', '.join(columns)})"
                )
            records: list[ImageRecord] = []
            for line_number, row in enumerate(reader, start=2):
                image_id, image_path = row["image_id"], row["path"]
                if not image_id or not image_path:
                    raise DataError(f"{path}: line {line_number} has an empty image_id or path")
                records.append(
                    ImageRecord(
                        image_id=image_id,
                        path=Path(image_path),
                        mask_path=Path(row["mask_path"]) if row["mask_path"] else None,
                        label=row["label"] or None,
                        split=row["split"] or None,
                    )
                )
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read dataset index ({exc})") from exc
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


def check_record(record: ImageRecord) -> None:
    """Decode a record's image (and mask) fully; raise DataError naming the file and the reason."""
    load_rgb(record.path)
    if record.mask_path is not None:
        load_mask(record.mask_path)


def screen_records(
    records: list[ImageRecord], on_bad_image: str = "stop"
) -> tuple[list[ImageRecord], list[tuple[ImageRecord, str]]]:
    """Split records into readable ones and (record, reason) of unreadable ones.

    ``stop``: the first unreadable image raises DataError (file name and reason);
    ``skip``: unreadable images are returned with their reasons and left out of the first list.
    """
    if on_bad_image not in ON_BAD_IMAGE:
        raise ValueError(f"on_bad_image must be one of {list(ON_BAD_IMAGE)}, got {on_bad_image!r}")
    good: list[ImageRecord] = []
    bad: list[tuple[ImageRecord, str]] = []
    for record in records:
        try:
            check_record(record)
        except DataError as exc:
            if on_bad_image == "stop":
                raise DataError(f"{exc} (datasets.<name>.on_bad_image: stop; set it to 'skip' to leave such files out)") from exc
            bad.append((record, str(exc)))
            continue
        good.append(record)
    return good, bad


def write_skipped(bad: list[tuple[ImageRecord, str]], path: Path | str) -> None:
    """Write the skipped images and their reasons as CSV (header only when none), atomically."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SKIPPED_COLUMNS)
        for record, reason in bad:
            writer.writerow([record.image_id, str(record.path), reason])
