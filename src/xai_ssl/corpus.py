"""Reference images for methods that compare an explicand with other images (COCOA corpus/foil, VDSN and
embedded Grad-CAM databases): centre views of the dataset's training split, chosen from the seed.

The corpus is loaded once per job (``load_corpus``) and reaches the methods as ``MethodContext.corpus``;
per-encoder quantities computed from it (embeddings, Grad-CAM weights) are cached on the object, so a job
computes them once per encoder (the randomisation metric's randomised encoders get their own).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import torch

from xai_ssl.augment import center_view
from xai_ssl.data.index import read_index
from xai_ssl.data.io import load_rgb
from xai_ssl.data.records import ImageRecord
from xai_ssl.seeding import generator

log = logging.getLogger(__name__)

TRAIN_SPLIT = "train"


@dataclass
class Corpus:
    """Reference images (uint8 centre views) with ids and labels, and the labels of every indexed image."""

    images: torch.Tensor  # [R, 3, S, S] uint8
    ids: list[str]
    labels: list[str | None]
    source: str  # the split the images come from
    seed: int  # the config seed (foil noise and other draws derive from it)
    labels_by_id: dict[str, str | None] = field(default_factory=dict)  # every indexed image (explicands too)
    _cache: dict[Any, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        """Number of reference images."""
        return len(self.ids)

    def floats(self, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The images as floats in [0, 1] on ``device``; [R, 3, S, S]."""
        return self.images.to(device=device, dtype=dtype) / 255

    def chunks(self, device: torch.device, dtype: torch.dtype, batch_size: int) -> Iterator[torch.Tensor]:
        """The images as floats in [0, 1], ``batch_size`` at a time (the uint8 store stays on the CPU); [b, 3, S, S]."""
        for i in range(0, len(self.ids), max(1, batch_size)):
            yield self.images[i : i + batch_size].to(device=device, dtype=dtype) / 255

    def embeddings(self, encoder: torch.nn.Module, device: torch.device, dtype: torch.dtype, batch_size: int) -> torch.Tensor:
        """Embeddings f(c) [R, D] of the images, computed once per encoder (cached), without gradients."""

        def compute() -> torch.Tensor:
            with torch.inference_mode():
                return torch.cat([encoder(x) for x in self.chunks(device, dtype, batch_size)])

        return self.cached(encoder, ("embeddings", str(device), dtype), compute)

    def keep(self, image_id: str | None, label: str | None = None, same_label: bool | None = None) -> torch.Tensor:
        """Boolean [R]: images other than ``image_id``; with ``same_label`` True/False, only those of (not) ``label``."""
        ok = torch.tensor([i != image_id for i in self.ids], dtype=torch.bool)
        if same_label is not None:
            if label is None or any(lab is None for lab in self.labels):
                raise ValueError("corpus: class-based corpus/foil selection needs labels in the dataset index")
            ok &= torch.tensor([(lab == label) == same_label for lab in self.labels], dtype=torch.bool)
        return ok

    def cached(self, encoder: torch.nn.Module, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per (encoder, key) for the lifetime of this corpus (the encoder is weakly referenced)."""
        full = (id(encoder), key)
        hit = self._cache.get(full)
        if hit is not None and hit[0]() is encoder:
            return hit[1]
        value = compute()
        self._cache[full] = (weakref.ref(encoder), value)
        return value


def choose_records(records: Sequence[ImageRecord], evaluated_split: str | None, n: int, seed: int) -> tuple[list[ImageRecord], str]:
    """Up to ``n`` records of the training split (else of the evaluated split), in a seeded random order."""
    pool = [r for r in records if r.split == TRAIN_SPLIT]
    source = TRAIN_SPLIT
    if not pool:
        pool = [r for r in records if evaluated_split is None or r.split == evaluated_split]
        source = str(evaluated_split)
    order = torch.randperm(len(pool), generator=generator(seed, "corpus")).tolist()
    return [pool[i] for i in order[: max(0, int(n))]], source


def load_corpus(index_csv: Path, pairs_h5: Path, n: int, seed: int) -> Corpus:
    """Centre views (at the pair image size) of up to ``n`` training images of the dataset, chosen from ``seed``.

    Without a training split, the other images of the evaluated split are used (methods exclude the
    explicand itself by id) and the log says so.
    """
    with h5py.File(pairs_h5, "r") as f:
        size = int(f["x1"].shape[-1])
        split = f.attrs.get("split")
    split = None if split is None or (isinstance(split, str) and split in ("", "None", "null")) else str(split)
    records = read_index(Path(index_csv))
    chosen, source = choose_records(records, split, n, seed)
    if not chosen:
        raise ValueError(f"{index_csv}: no images for the corpus (no {TRAIN_SPLIT!r} split and none in {split!r})")
    if source != TRAIN_SPLIT:
        log.warning("corpus: the dataset has no %r split; using %d other images of the evaluated split %r (explicand excluded)", TRAIN_SPLIT, len(chosen), source)
    else:
        log.info("corpus: %d centre views of the %r split (%d px)", len(chosen), TRAIN_SPLIT, size)
    images = torch.stack([(center_view(load_rgb(r.path), size) * 255).round().to(torch.uint8) for r in chosen])
    return Corpus(images, [r.image_id for r in chosen], [r.label for r in chosen], source, int(seed), {r.image_id: r.label for r in records})


def corpus_for(needs_corpus: bool, params: dict[str, Any], index_csv: Path | None, pairs_h5: Path, seed: int) -> Corpus | None:
    """The corpus a method needs (``params['corpus_size']`` images), or None when it needs none."""
    if not needs_corpus:
        return None
    if index_csv is None:
        raise ValueError("this method needs reference images: pass the dataset index (rule input 'index')")
    return load_corpus(Path(index_csv), Path(pairs_h5), int(params["corpus_size"]), seed)
