"""Reader for the Two4Two on-disk format (parameters.jsonl + <id>.png + <id>_mask.png)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xai_ssl.data.records import DataError, ImageRecord

# Mask label i (1..8) is block BLOCK_NAMES[i - 1]; 0 is background.
BLOCK_NAMES: tuple[str, ...] = (
    "arm_left_top",
    "arm_left_bottom",
    "spine_left",
    "spine_left_center",
    "spine_right_center",
    "spine_right",
    "arm_right_top",
    "arm_right_bottom",
)
OBJ_NAME_TO_INT: dict[str, int] = {"peaky": 0, "stretchy": 1}
# Mask labels of the movable right arm pair, the class-discriminative region.
CLASS_RELEVANT_BLOCKS: tuple[int, ...] = (7, 8)

PARAMETERS_FILE = "parameters.jsonl"


def read_two4two_parameters(split_dir: Path | str) -> list[dict[str, Any]]:
    """Parse `<split_dir>/parameters.jsonl` into a list of dicts (blank lines ignored)."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: Two4Two split folder does not exist")
    jsonl = split_dir / PARAMETERS_FILE
    if not jsonl.is_file():
        raise DataError(f"{jsonl}: missing {PARAMETERS_FILE} in the Two4Two split folder")
    try:
        text = jsonl.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{jsonl}: cannot read ({exc})") from exc
    rows: list[dict[str, Any]] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{jsonl}: line {line_number} is not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DataError(f"{jsonl}: line {line_number} is not a JSON object")
        rows.append(row)
    return rows


def read_two4two_split(split_dir: Path | str, split: str | None = None) -> list[ImageRecord]:
    """Read one Two4Two split folder into ImageRecords, one per parameters.jsonl row in file order."""
    split_dir = Path(split_dir)
    rows = read_two4two_parameters(split_dir)
    jsonl = split_dir / PARAMETERS_FILE
    split_name = split if split is not None else split_dir.name
    records: list[ImageRecord] = []
    seen: set[str] = set()
    for index, row in enumerate(rows, start=1):
        image_id = row.get("id")
        if not isinstance(image_id, str) or not image_id:
            raise DataError(f"{jsonl}: row {index} has no 'id' string")
        if image_id in seen:
            raise DataError(f"{jsonl}: duplicate id {image_id!r} (row {index})")
        seen.add(image_id)
        image_path = split_dir / f"{image_id}.png"
        if not image_path.is_file():
            raise DataError(f"{image_path}: image file listed in {jsonl} is missing")
        mask_path: Path | None = split_dir / f"{image_id}_mask.png"
        if not mask_path.is_file():
            mask_path = None
        label = row.get("label")
        if label is None:
            label = row.get("obj_name")
        records.append(
            ImageRecord(
                image_id=image_id,
                path=image_path,
                mask_path=mask_path,
                label=None if label is None else str(label),
                split=split_name,
            )
        )
    return records


# Scene attributes probed by the model card (models/quality.py): name -> (parameter, threshold, below, above).
# spherical ~ Beta(0.3, 0.3) (mostly near 0 or 1: cubic vs round blocks); bending ~ N(0, pi/20) truncated to
# +-pi/10: its magnitude tells a straight spine from a bent one, its sign is mirrored by the views' flips.
SHAPE_ATTRIBUTES: dict[str, tuple[str, float, str, str]] = {
    "spherical": ("spherical", 0.5, "cubic", "round"),
    "bent": ("bending", math.pi / 40, "straight", "bent"),
}


def probe_labels(records: Sequence[ImageRecord]) -> dict[str, list[str]]:
    """Labels of Two4Two records for linear probes: the class (``label``) and the binarised :data:`SHAPE_ATTRIBUTES`.

    The attributes are read from the ``parameters.jsonl`` of each record's folder; records without one (not
    Two4Two) give the class only. Absolute values are thresholded for ``bent``.
    """
    labels: dict[str, list[str]] = {"label": [str(r.label) for r in records]}
    rows: dict[Path, dict[str, dict[str, Any]]] = {}
    for r in records:
        folder = Path(r.path).parent
        if folder not in rows:
            found = (folder / PARAMETERS_FILE).is_file()
            rows[folder] = {str(row.get("id")): row for row in read_two4two_parameters(folder)} if found else {}
    for name, (key, threshold, below, above) in SHAPE_ATTRIBUTES.items():
        values = [rows[Path(r.path).parent].get(r.image_id, {}).get(key) for r in records]
        if any(not isinstance(v, (int, float)) for v in values):
            continue  # not every record has the attribute: no probe
        labels[name] = [above if abs(float(v)) > threshold else below for v in values]
    return labels
