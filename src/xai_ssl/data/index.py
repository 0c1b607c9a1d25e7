"""The dataset index: a CSV of ImageRecords written once per dataset and read by later stages."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

from xai_ssl.data.records import DataError, ImageRecord

INDEX_COLUMNS: tuple[str, ...] = ("image_id", "path", "mask_path", "label", "split")


def write_index(records: list[ImageRecord], path: Path | str) -> None:
    """Write records as CSV (empty string for None), atomically via a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
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
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


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
