"""Stage ``data`` (rules/data.smk): generate, download, extract or index a dataset, then store its explained pairs."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from xai_ssl.data.imagenet import prepare_imagenet_val as select_imagenet_val
from xai_ssl.data.images import DEFAULT_MAX_PIXELS
from xai_ssl.data.index import read_index, screen_records, select_records, skipped_report_path, write_index, write_skipped
from xai_ssl.data.records import DataError, ImageRecord
from xai_ssl.data.sources import read_dataset
from xai_ssl.data.synthetic_two4two import generate_two4two
from xai_ssl.data.two4two_archive import extract_two4two_archive as extract_archive
from xai_ssl.io.download import fetch, manual_hint, verify_file
from xai_ssl.io.pairs_file import write_pairs
from xai_ssl.pairs import record_views

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


def generate_synthetic_dataset(files: str, generate: dict[str, int], seed: int, progress: bool = True) -> None:
    """Write a synthetic Two4Two-format dataset (train/validation/test) into ``files``."""
    sizes = {s: int(generate[s]) for s in SPLITS if int(generate.get(s, 0)) > 0}
    t0 = time.perf_counter()
    generate_two4two(Path(files), sizes, seed=seed, resolution=int(generate.get("resolution", 128)), progress=progress)
    log.info("generated %s in %.1f s", sizes, time.perf_counter() - t0)


def download_dataset_archive(archive: str, url: str, sha256: str | None = None) -> str:
    """Download a dataset archive (pinned digest, or trusted on first use); returns its digest."""
    return fetch(url, archive, sha256, timeout=120.0)


def extract_two4two_archive(archive: str, files: str, splits: Sequence[str] | None, sha256: str | None = None, url: str | None = None) -> list[Path]:
    """Verify a Two4Two tar (pinned digest, or trusted on first use) and extract its split folders into ``files``."""
    path = Path(archive)
    if not path.is_file():
        hint = f"; {manual_hint(url, path)}" if url else ""
        raise FileNotFoundError(f"{path}: Two4Two archive not found{hint}")
    t0 = time.perf_counter()
    digest = verify_file(path, sha256)
    found = extract_archive(path, Path(files), splits)
    log.info("%s (sha256 %s): %d split folder(s) in %.1f s: %s", path, digest, len(found), time.perf_counter() - t0, [p.name for p in found])
    return found


def index_dataset(
    index: str,
    source: str,
    root: str,
    on_bad_image: str = "stop",
    skipped: str | None = None,
    files: str | None = None,
    max_image_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> list[ImageRecord]:
    """List a dataset's readable images (all splits) into the index CSV (``files``: the generated or extracted folder).

    Every image is decoded once (after its declared size is checked against ``max_image_pixels``): with
    ``on_bad_image='stop'`` the first unreadable one fails the job (file and reason); with ``'skip'`` it is
    left out, logged, and listed with its reason in ``skipped`` (default: ``index.skipped.csv`` beside the
    index; header only when none). Animated images and folder links not followed (loops, second links) are
    always listed there too.
    """
    listed, not_followed = read_dataset(source, Path(root))
    records, bad = screen_records(listed, on_bad_image, max_image_pixels)
    bad = [(ImageRecord(image_id="", path=entry.path), reason) for entry, reason in not_followed] + bad
    for _record, reason in bad:
        log.warning("skipped: %s", reason)
    if not records:
        raise DataError(f"{root}: no readable images (all {len(bad)} skipped; see the log)")
    write_skipped(bad, Path(skipped) if skipped is not None else skipped_report_path(index))
    write_index(records, Path(index))
    log.info("indexed %d images from %s; skipped %d", len(records), root, len(bad))
    return records


def prepare_imagenet_val(index: str, images: str, path: str, n_images: int | None, pattern: str | None = None) -> list[ImageRecord]:
    """Select the first ``n_images`` ImageNet validation images by file name (folder or tar) and write the index."""
    return select_imagenet_val(Path(path), Path(index), Path(images), n_images, pattern)


def explained_records(index: str, indexed: list[ImageRecord], split: str | None, n_images: int | None) -> list[ImageRecord]:
    """The first ``n_images`` images of ``split`` among the ``indexed`` ones; a split without images, or fewer than ``n_images``, is refused."""
    in_split = select_records(indexed, split, None)
    if not in_split:
        splits = sorted({str(r.split) for r in indexed})
        raise DataError(f"config key 'datasets.<name>.split': {index} has no images in split {split!r}; splits with images: {splits}")
    if n_images is not None and n_images > len(in_split):
        raise DataError(
            f"config key 'datasets.<name>.n_images': {n_images} images requested, but split {split!r} has {len(in_split)} readable "
            f"images in {index} (see index.skipped.csv beside it); set n_images <= {len(in_split)} or null"
        )
    return select_records(in_split, None, n_images)


def make_pairs(
    index: str,
    pairs: str,
    split: str | None,
    n_images: int | None,
    image_size: int,
    seed: int,
    crop_scale: Sequence[float] = (0.08, 1.0),
    progress: bool = True,
    max_image_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> None:
    """Select the explained images and store their views (and the masks of those that have one)."""
    from tqdm import tqdm

    indexed = read_index(Path(index))
    records = explained_records(index, indexed, split, n_images)
    without = [r.image_id for r in records if r.mask_path is None]
    with_masks = len(without) < len(records)
    if not with_masks and any(r.mask_path is not None for r in indexed):
        log.warning("no explained image of split %r has a mask, although other images of the dataset have: localisation scores are NA", split)
    if with_masks and without:
        log.warning("%d of %d explained images have no mask (their localisation scores are NA): %s", len(without), len(records), ", ".join(without[:20]) + (" ..." if len(without) > 20 else ""))
    views = record_views(records, image_size, seed, tuple(crop_scale), with_masks, max_image_pixels)
    bar = tqdm(views, total=len(records), desc="pairs", unit="img", disable=not progress)
    attrs = {"seed": seed, "crop_scale": list(crop_scale), "split": split, "index": str(index)}
    write_pairs(Path(pairs), [r.image_id for r in records], image_size, bar, with_masks, attrs)
    log.info("stored views of %d images (%d px)%s", len(records), image_size, f"; {len(records) - len(without)} with masks" if with_masks else "")
