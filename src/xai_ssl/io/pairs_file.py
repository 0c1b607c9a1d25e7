"""The pairs file ``results/pairs/<dataset>.h5``: the explained views of a dataset, stored once.

Datasets: ``image_id`` [N] str; ``x1``, ``x2``, ``xt`` [N, 3, S, S] uint8 (clean view, SimCLR view,
photometric view of x1); ``mask1`` [N, S, S] uint8 (label mask of x1; written when at least one image has a
mask, all zero for an image without one) and ``has_mask1`` [N] uint8 (1 = the image has a mask). Files
written before ``has_mask1`` existed hold ``mask1`` only when every image had a mask: read as all flagged.
Attributes: seed, image_size, n_images, crop_scale, split, index (and what the caller adds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xai_ssl.io.hdf5 import atomic_h5, open_h5, plain_attrs, read_strings, set_attrs, write_strings

PAIR_FAMILIES = ("crop_aug", "interpolation")
VIEWS = ("x1", "x2", "xt")


@dataclass
class Pairs:
    """Views of a set of images as float tensors in [0, 1]."""

    image_ids: list[str]
    indices: np.ndarray  # [N] positions in the pairs file
    x1: torch.Tensor  # [N, 3, S, S]
    x2: torch.Tensor  # [N, 3, S, S]
    xt: torch.Tensor  # [N, 3, S, S]
    mask1: np.ndarray | None  # [N, S, S] labels of x1, if the dataset has masks (all zero where has_mask1 is False)
    attrs: dict[str, Any] = field(default_factory=dict)  # the file's attributes (how the views were made)
    has_mask1: np.ndarray | None = None  # [N] bool: the image has a mask (None: no image has one)

    def __post_init__(self) -> None:
        if self.mask1 is not None and self.has_mask1 is None:
            self.has_mask1 = np.ones(len(self.mask1), dtype=bool)

    def pair(self, family: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The two inputs a method family explains."""
        return family_pair(family, self.x1, self.x2, self.xt)


def family_pair(family: str, x1: torch.Tensor, x2: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two inputs a method family explains, from the views: ``crop_aug`` (x1, x2), ``interpolation`` (x1, 0.1·x1 + 0.9·xt)."""
    if family == "crop_aug":
        return x1, x2
    if family == "interpolation":
        return x1, 0.1 * x1 + 0.9 * xt
    raise KeyError(f"unknown pair family {family!r}; accepted: {list(PAIR_FAMILIES)}")


def write_pairs(
    path: Path | str,
    image_ids: Sequence[str],
    size: int,
    views: Iterable[tuple[dict[str, torch.Tensor], np.ndarray | None]],
    with_masks: bool,
    attrs: dict[str, Any],
) -> None:
    """Store the views of every image (``views`` yields (``{x1, x2, xt}`` uint8 [3, S, S], mask [S, S] or None) in
    image order) atomically. With ``with_masks``, ``mask1`` holds each image's mask (zeros for None) and
    ``has_mask1`` flags which images have one."""
    n = len(image_ids)
    if n == 0:
        raise ValueError("write_pairs: no images to make pairs from")
    with atomic_h5(path) as f:
        write_strings(f, "image_id", list(image_ids))
        dsets = {k: f.create_dataset(k, (n, 3, size, size), dtype="uint8", chunks=(1, 3, size, size)) for k in VIEWS}
        masks = f.create_dataset("mask1", (n, size, size), dtype="uint8") if with_masks else None
        flags = np.zeros(n, dtype=np.uint8)
        written = 0
        for i, (view, mask) in enumerate(views):
            for k, d in dsets.items():
                d[i] = view[k].numpy()
            if masks is not None and mask is not None:
                masks[i] = mask
                flags[i] = 1
            written = i + 1
        if masks is not None:
            f.create_dataset("has_mask1", data=flags)
        if written != n:
            raise ValueError(f"write_pairs: {written} views for {n} images")
        set_attrs(f, {"seed": attrs["seed"], "image_size": size, "n_images": n, **{k: v for k, v in attrs.items() if k != "seed"}})


def shard_range(n: int, shard: int, n_shards: int) -> range:
    """Contiguous block of image positions of shard ``shard`` out of ``n_shards``."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} out of range for {n_shards} shards")
    return range(shard * n // n_shards, (shard + 1) * n // n_shards)


def read_pairs(path: Path | str, indices: Sequence[int] | None = None, shard: tuple[int, int] | None = None) -> Pairs:
    """Read (a subset of) the stored views as floats in [0, 1], with the file's attributes.

    ``indices`` selects rows; ``shard`` = (k, n_shards) selects the k-th contiguous block instead.
    """
    with open_h5(path, "pairs file") as f:
        ids = read_strings(f, "image_id")
        if shard is not None:
            idx = np.asarray(shard_range(len(ids), *shard), dtype=np.int64)
        else:
            idx = np.arange(len(ids)) if indices is None else np.asarray(list(indices), dtype=np.int64)

        def get(name: str) -> torch.Tensor:
            return torch.from_numpy(f[name][idx] if len(idx) else np.zeros((0, *f[name].shape[1:]), np.uint8)).float() / 255

        mask = f["mask1"][idx] if "mask1" in f and len(idx) else None
        has = (f["has_mask1"][idx].astype(bool) if "has_mask1" in f else np.ones(len(idx), dtype=bool)) if mask is not None else None
        return Pairs([ids[i] for i in idx], idx, get("x1"), get("x2"), get("xt"), mask, plain_attrs(f), has)


def count_pairs(path: Path | str) -> int:
    """Number of images in a pairs file."""
    with open_h5(path, "pairs file") as f:
        return int(f["x1"].shape[0])


def read_pairs_attrs(path: Path | str) -> dict[str, Any]:
    """The settings the stored views were made with (attributes of the pairs file)."""
    with open_h5(path, "pairs file") as f:
        return plain_attrs(f)
