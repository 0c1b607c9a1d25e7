"""Plain records that describe one image of a dataset, and the error raised for bad data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset: its id, file, optional mask, class label and split."""

    image_id: str
    path: Path
    mask_path: Path | None = None
    label: str | None = None
    split: str | None = None


class DataError(ValueError):
    """Unreadable or malformed data; the message names the file and the reason."""
