"""Reading the workflow's CSV outputs (per-image scores, summary tables, training histories) with a clear error.

Every CSV the workflow writes ends with a newline and has a known header, so a truncated, zeroed or empty
file is recognised and named with the command that rebuilds it (``io.damaged``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from xai_ssl.io.damaged import damaged, rebuild_hint


def read_csv_output(path: Path | str, what: str, required: Sequence[str], **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` of a workflow output; DamagedFileError (naming it and the rebuild command) when it is damaged.

    Damaged: empty, containing NUL bytes (zeroed), not ending in a newline (truncated), unparsable, or
    without one of the ``required`` columns.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found; {rebuild_hint(path)}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise damaged(path, what, f"cannot be read ({exc})") from exc
    if not raw:
        raise damaged(path, what, "is empty")
    if b"\x00" in raw:
        raise damaged(path, what, "contains NUL bytes (zeroed or overwritten)")
    if not raw.endswith(b"\n"):
        raise damaged(path, what, "is truncated (its last line is incomplete)")
    try:
        table = pd.read_csv(path, **kwargs)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        raise damaged(path, what, f"cannot be parsed ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise damaged(path, what, f"lacks column(s) {missing} (has {list(table.columns)[:10]})")
    return table


def read_per_image_table(path: Path | str) -> pd.DataFrame:
    """``tables/<dataset>/<model>/per_image.csv`` (NA -> NaN)."""
    return read_csv_output(path, "per-image table", ["method", "image_id"], na_values=["NA"], keep_default_na=False)


def read_training_history(path: Path | str) -> pd.DataFrame:
    """``models/<model>/training.csv``: the loss per epoch of a model trained in the workflow."""
    return read_csv_output(path, "training history", ["epoch", "loss"])
