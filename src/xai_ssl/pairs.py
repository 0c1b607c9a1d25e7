"""The explained pairs: deterministic views per image, stored once per dataset.

For every image: ``x1`` = clean centre view, ``x2`` = SimCLR-augmented view, ``xt`` = a
photometric-only ('combine') view of ``x1``. All are 8-bit (the definition of a view includes
rounding to 8 bits), so stored pairs are exact. Each method family explains its own pair:
``crop_aug`` = (x1, x2); ``interpolation`` = (x1, 0.1*x1 + 0.9*xt), the (m_0, m_9) of the spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from tqdm import tqdm

from xai_ssl.augment import center_view, photometric_augment, simclr_augment
from xai_ssl.data.io import load_mask, load_rgb
from xai_ssl.data.records import ImageRecord
from xai_ssl.h5io import atomic_h5, read_strings, set_attrs, write_strings
from xai_ssl.seeding import generator

PAIR_FAMILIES = ("crop_aug", "interpolation")


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[..] float in [0, 1] -> uint8 (round to nearest)."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def make_views(
    img: torch.Tensor, size: int, seed: int, image_id: str, crop_scale: tuple[float, float] = (0.08, 1.0)
) -> dict[str, torch.Tensor]:
    """Views x1, x2, xt (uint8 [3, size, size]) of one image, seeded by (seed, image_id)."""
    x1 = to_uint8(center_view(img, size))
    x2 = to_uint8(simclr_augment(img, size, generator(seed, image_id, "view-aug"), scale=crop_scale))
    xt = to_uint8(photometric_augment(x1.float() / 255, generator(seed, image_id, "view-photometric")))
    return {"x1": x1, "x2": x2, "xt": xt}


def center_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """The label mask [H, W] under the same resize + centre crop as x1 (nearest neighbour)."""
    m = torch.from_numpy(mask)[None]  # [1, H, W]
    m = TF.resize(m, [int(round(size * 256 / 224))], interpolation=TF.InterpolationMode.NEAREST_EXACT)
    return TF.center_crop(m, [size, size])[0].numpy()


def write_pairs(
    records: Sequence[ImageRecord],
    path: Path,
    size: int,
    seed: int,
    progress: bool = True,
    attrs: dict | None = None,
    crop_scale: tuple[float, float] = (0.08, 1.0),
) -> None:
    """Make and store the views of every record in ``path`` (atomic HDF5)."""
    if not records:
        raise ValueError("write_pairs: no images to make pairs from")
    n = len(records)
    with_masks = all(r.mask_path is not None for r in records)
    with atomic_h5(path) as f:
        write_strings(f, "image_id", [r.image_id for r in records])
        dsets = {k: f.create_dataset(k, (n, 3, size, size), dtype="uint8", chunks=(1, 3, size, size)) for k in ("x1", "x2", "xt")}
        masks = f.create_dataset("mask1", (n, size, size), dtype="uint8") if with_masks else None
        for i, rec in enumerate(tqdm(records, desc="pairs", unit="img", disable=not progress)):
            views = make_views(load_rgb(rec.path), size, seed, rec.image_id, crop_scale)
            for k, d in dsets.items():
                d[i] = views[k].numpy()
            if masks is not None:
                masks[i] = center_mask(load_mask(rec.mask_path), size)
        set_attrs(f, {"seed": seed, "image_size": size, "n_images": n, "crop_scale": list(crop_scale), **(attrs or {})})


@dataclass
class Pairs:
    """Views of a set of images as float tensors in [0, 1]."""

    image_ids: list[str]
    indices: np.ndarray  # [N] positions in the pairs file
    x1: torch.Tensor  # [N, 3, S, S]
    x2: torch.Tensor  # [N, 3, S, S]
    xt: torch.Tensor  # [N, 3, S, S]
    mask1: np.ndarray | None  # [N, S, S] labels of x1, if the dataset has masks

    def pair(self, family: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The two inputs a method family explains."""
        if family == "crop_aug":
            return self.x1, self.x2
        if family == "interpolation":
            return self.x1, 0.1 * self.x1 + 0.9 * self.xt
        raise KeyError(f"unknown pair family {family!r}; accepted: {list(PAIR_FAMILIES)}")


def shard_range(n: int, shard: int, n_shards: int) -> range:
    """Contiguous block of image positions of shard ``shard`` out of ``n_shards``."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} out of range for {n_shards} shards")
    return range(shard * n // n_shards, (shard + 1) * n // n_shards)


def count_pairs(path: Path) -> int:
    """Number of images in a pairs file."""
    with h5py.File(path, "r") as f:
        return int(f["x1"].shape[0])


def read_pairs(path: Path, indices: Sequence[int] | None = None) -> Pairs:
    """Read (a subset of) the stored views as floats in [0, 1]."""
    with h5py.File(path, "r") as f:
        ids = read_strings(f, "image_id")
        idx = np.arange(len(ids)) if indices is None else np.asarray(list(indices), dtype=np.int64)

        def get(name: str) -> torch.Tensor:
            return torch.from_numpy(f[name][idx] if len(idx) else np.zeros((0, *f[name].shape[1:]), np.uint8)).float() / 255

        mask = f["mask1"][idx] if "mask1" in f and len(idx) else None
        return Pairs([ids[i] for i in idx], idx, get("x1"), get("x2"), get("xt"), mask)
