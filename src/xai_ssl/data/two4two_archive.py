"""The published Two4Two datasets as tar archives: safe extraction of the split folders and their discovery.

The ICLR'22 dataset of Schuessler/Berleon et al. (``methods-survey.md`` §1.2, §2; URL from
``berleon/do_users_benefit_from_interpretable_vision``'s download script) is one tar of split folders
(``train``, ``validation``, ``test`` and intervention variants), each with ``parameters.jsonl``,
``<id>.png`` and ``<id>_mask.png``. After extraction the folders are read by the same reader as a
Two4Two folder (:func:`xai_ssl.data.two4two.read_two4two_split`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from xai_ssl.data.records import DataError
from xai_ssl.data.two4two import PARAMETERS_FILE

log = logging.getLogger(__name__)

# The ICLR'22 biased Two4Two dataset (3.3 GB; 60k train / 5k validation / 5k test; no published digest).
ICLR22_URL = (
    "https://f002.backblazeb2.com/file/iclr2022/"
    "two4two_obj_color_and_spherical_finer_search_spherical_uniform_0.33_uniform_0.15.tar"
)


def _wanted(parts: tuple[str, ...], splits: Sequence[str] | None) -> bool:
    """A member path is kept when it is a split file (png / parameters.jsonl) of a wanted split folder."""
    if len(parts) < 2 or not (parts[-1] == PARAMETERS_FILE or parts[-1].lower().endswith(".png")):
        return False
    return splits is None or parts[-2] in splits


def find_two4two_splits(root: Path | str) -> list[Path]:
    """Folders under ``root`` (any depth) that hold a ``parameters.jsonl``, sorted by path."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob(PARAMETERS_FILE) if p.is_file())


def extract_two4two_archive(archive: Path | str, out_dir: Path | str, splits: Sequence[str] | None = None) -> list[Path]:
    """Extract the split files of a Two4Two tar (plain or compressed) into ``out_dir``; returns the split folders.

    Only regular files named ``*.png`` or ``parameters.jsonl`` are written (no links, devices, absolute
    or ``..`` paths), only in folders named in ``splits`` (None = all). The files appear in ``out_dir``
    only once everything is extracted (written to ``<out_dir>.tmp``, then renamed).
    """
    archive, out_dir = Path(archive), Path(out_dir)
    if not archive.is_file():
        raise DataError(f"{archive}: Two4Two archive not found")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # streamed: works for compressed archives too
                parts = PurePosixPath(member.name).parts
                if not member.isfile() or not _wanted(parts, splits):
                    continue
                if parts[0] in ("/", "") or ".." in parts:
                    log.warning("%s: skipped unsafe member path %r", archive, member.name)
                    continue
                dest = tmp.joinpath(*parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is None:
                    continue
                with src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                n += 1
    except (tarfile.TarError, OSError, EOFError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"{archive}: cannot read the Two4Two archive ({type(exc).__name__}: {exc})") from exc
    found = find_two4two_splits(tmp)
    if not found:
        shutil.rmtree(tmp, ignore_errors=True)
        wanted = "any split" if splits is None else f"split(s) {list(splits)}"
        raise DataError(f"{archive}: no Two4Two split folder ({PARAMETERS_FILE} + PNGs) of {wanted} in the archive")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    log.info("extracted %d files of %d split folder(s) from %s", n, len(found), archive)
    return find_two4two_splits(out_dir)
