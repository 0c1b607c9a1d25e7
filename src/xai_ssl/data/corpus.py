"""Choosing and loading the reference images of corpus methods (COCOA, VDSN, embedded Grad-CAM): centre views of
the dataset's training split, chosen from the seed, loaded once per job (``methods.corpus.Corpus``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from xai_ssl.data.images import load_rgb
from xai_ssl.data.index import read_index
from xai_ssl.data.records import ImageRecord
from xai_ssl.methods.corpus import Corpus
from xai_ssl.seeding import generator

log = logging.getLogger(__name__)

TRAIN_SPLIT = "train"


def choose_records(records: Sequence[ImageRecord], evaluated_split: str | None, n: int, seed: int) -> tuple[list[ImageRecord], str]:
    """Up to ``n`` records of the training split (else of the evaluated split), in a seeded random order."""
    pool = [r for r in records if r.split == TRAIN_SPLIT]
    source = TRAIN_SPLIT
    if not pool:
        pool = [r for r in records if evaluated_split is None or r.split == evaluated_split]
        source = str(evaluated_split)
    order = torch.randperm(len(pool), generator=generator(seed, "corpus")).tolist()
    return [pool[i] for i in order[: max(0, int(n))]], source


def load_corpus(index_csv: Path, size: int, split: Any, n: int, seed: int) -> Corpus:
    """Centre views (``size`` px, the pairs' image size) of up to ``n`` training images of the dataset, chosen
    from ``seed``.

    Without a training split, the other images of the evaluated split ``split`` (the pairs file's) are used
    (methods exclude the explicand itself by id) and the log says so.
    """
    split = None if split is None or (isinstance(split, str) and split in ("", "None", "null")) else str(split)
    records = read_index(Path(index_csv))
    chosen, source = choose_records(records, split, n, seed)
    if not chosen:
        raise ValueError(f"{index_csv}: no images for the corpus (no {TRAIN_SPLIT!r} split and none in {split!r})")
    if source != TRAIN_SPLIT:
        log.warning("corpus: the dataset has no %r split; using %d other images of the evaluated split %r (explicand excluded)", TRAIN_SPLIT, len(chosen), source)
    else:
        log.info("corpus: %d centre views of the %r split (%d px)", len(chosen), TRAIN_SPLIT, size)
    from xai_ssl.augment import center_view  # torchvision: corpus methods' jobs only

    images = torch.stack([(center_view(load_rgb(r.path), size) * 255).round().to(torch.uint8) for r in chosen])
    return Corpus(images, [r.image_id for r in chosen], [r.label for r in chosen], source, int(seed), {r.image_id: r.label for r in records})


def corpus_for(needs_corpus: bool, params: dict[str, Any], index_csv: Path | None, pairs_attrs: dict[str, Any], seed: int) -> Corpus | None:
    """The corpus a method needs (``params['corpus_size']`` images), or None when it needs none.

    ``pairs_attrs`` are the attributes of the pairs file (its ``image_size`` and explained ``split``).
    """
    if not needs_corpus:
        return None
    if index_csv is None:
        raise ValueError("this method needs reference images: pass the dataset index (rule input 'index')")
    return load_corpus(Path(index_csv), int(pairs_attrs["image_size"]), pairs_attrs.get("split"), int(params["corpus_size"]), seed)
