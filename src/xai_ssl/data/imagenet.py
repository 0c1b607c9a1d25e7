"""ImageNet (ILSVRC-2012) validation images: select the first N by file name from a folder or the official tar.

The reference tables do not say which validation images were used (``methods-sammani.md`` §4.4,
[UNVERIFIED]); the recommended default, followed here, is the first N images of ILSVRC2012 val in
file-name order (``ILSVRC2012_val_00000001.JPEG``, ...). The user's copy is either

* a folder holding ``ILSVRC2012_val_*.JPEG`` files (flat, or in class sub-folders after the usual
  re-organisation; found recursively, matched on the file name) — the index points at those files; or
* the official tar (``ILSVRC2012_img_val.tar``, flat) or any tar/tar.gz holding such files — only the N
  selected members are extracted (under their file names) into the dataset's image folder.

The file-name pattern is configurable (``pattern``, a glob matched case-insensitively against the base
name), so other copies such as ``n01440764_tench.JPEG`` work too. Preprocessing is that of every
dataset: x1 = Resize(256/224 S) + CenterCrop(S) (``center_view``), the pairs of ``methods-sammani.md`` §2.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from xai_ssl.data.image_folder import SkippedEntry, walk_files
from xai_ssl.data.index import write_index
from xai_ssl.data.records import DataError, ImageRecord

log = logging.getLogger(__name__)

DEFAULT_PATTERN = "ILSVRC2012_val_*.JPEG"


def matches(name: str, pattern: str) -> bool:
    """Case-insensitive glob match of a base file name (hidden files never match)."""
    return not name.startswith(".") and fnmatch.fnmatchcase(name.lower(), pattern.lower())


def select_names(names: list[str], n_images: int | None, pattern: str = DEFAULT_PATTERN) -> list[str]:
    """The first ``n_images`` base names matching ``pattern``, sorted by name (None = all)."""
    kept = sorted(n for n in names if matches(n, pattern))
    return kept if n_images is None else kept[:n_images]


def _folder_files(root: Path, pattern: str) -> dict[str, Path]:
    """Matching files under ``root`` by base name (folder links followed once: a loop or second link is logged and skipped)."""
    found: dict[str, Path] = {}
    for item in walk_files(root, lambda name: matches(name, pattern)):
        if isinstance(item, SkippedEntry):
            log.warning("%s: %s", item.path, item.reason)
            continue
        rel = item[0]
        path = root / rel
        if rel.name in found:
            raise DataError(f"{path}: file name also at {found[rel.name]}")
        found[rel.name] = path
    return found


def _label(path: PurePosixPath | Path, root_parts: int) -> str | None:
    """The class sub-folder of an image (e.g. ``n01440764``), None for a flat layout."""
    return path.parent.name if len(path.parts) > root_parts + 1 else None


def imagenet_val_records(
    source: Path | str, n_images: int | None, images_dir: Path | str, pattern: str | None = None
) -> list[ImageRecord]:
    """Select the first ``n_images`` images (by file name) of a folder or tar; extract tar members to ``images_dir``.

    Image ids are the file stems (``ILSVRC2012_val_00000001``); records have no split.
    """
    source, images_dir = Path(source), Path(images_dir)
    pattern = pattern or DEFAULT_PATTERN
    if not source.exists():
        raise DataError(
            f"{source}: ImageNet validation data not found; set datasets.<name>.path to a folder of {pattern} files "
            f"or to the official ILSVRC2012_img_val.tar"
        )
    images_dir.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        files = _folder_files(source, pattern)
        chosen = select_names(list(files), n_images, pattern)
        paths = [files[n].resolve() for n in chosen]
        labels = [_label(files[n].relative_to(source), 0) for n in chosen]
    elif tarfile.is_tarfile(source):
        paths, labels = _extract_from_tar(source, n_images, images_dir, pattern)
        chosen = [p.name for p in paths]
    else:
        raise DataError(f"{source}: neither a folder nor a tar archive")
    if not chosen:
        raise DataError(f"{source}: no file matches {pattern!r} (set datasets.<name>.pattern for other file names)")
    if n_images is not None and len(chosen) < n_images:
        log.warning("%s: only %d images match %r, fewer than n_images = %d", source, len(chosen), pattern, n_images)
    return [ImageRecord(image_id=Path(n).stem, path=p, label=lab) for n, p, lab in zip(chosen, paths, labels, strict=True)]


def _extract_from_tar(archive: Path, n_images: int | None, images_dir: Path, pattern: str) -> tuple[list[Path], list[str | None]]:
    """Extract only the selected regular-file members, under their base names (never their stored paths)."""
    with tarfile.open(archive, "r:*") as tar:
        members = {}
        for m in tar:  # streams through the headers once
            name = PurePosixPath(m.name).name
            if m.isfile() and matches(name, pattern):
                if name in members:
                    raise DataError(f"{archive}: member name {name!r} occurs twice ({members[name].name}, {m.name})")
                members[name] = m
        chosen = select_names(list(members), n_images, pattern)
        paths, labels = [], []
        for name in chosen:
            member = members[name]
            target = images_dir / name
            tmp = target.with_name(f".{name}.tmp")
            fh = tar.extractfile(member)
            if fh is None:
                raise DataError(f"{archive}: cannot read member {member.name}")
            with fh, open(tmp, "wb") as out:
                shutil.copyfileobj(fh, out)
            os.replace(tmp, target)
            paths.append(target.resolve())
            labels.append(_label(PurePosixPath(member.name), 0))
    log.info("extracted %d of %d matching members of %s into %s", len(chosen), len(members), archive, images_dir)
    return paths, labels


def prepare_imagenet_val(
    source: Path | str, out_index: Path | str, images_dir: Path | str, n_images: int | None, pattern: str | None = None
) -> list[ImageRecord]:
    """Select (and extract) the images and write the dataset index CSV."""
    records = imagenet_val_records(source, n_images, images_dir, pattern)
    write_index(records, Path(out_index))
    log.info("indexed %d ImageNet validation images from %s (%s .. %s)", len(records), source, records[0].image_id, records[-1].image_id)
    return records
