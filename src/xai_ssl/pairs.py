"""The explained pairs: deterministic views per image (stored once per dataset by ``io.pairs_file``).

For every image: ``x1`` = clean centre view, ``x2`` = SimCLR-augmented view, ``xt`` = a
photometric-only ('combine') view of ``x1``. All are 8-bit (the definition of a view includes
rounding to 8 bits), so stored pairs are exact. Each method family explains its own pair:
``crop_aug`` = (x1, x2); ``interpolation`` = (x1, 0.1*x1 + 0.9*xt), the (m_0, m_9) of the spec.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from xai_ssl.augment import center_view, photometric_augment, simclr_augment
from xai_ssl.data.images import load_mask, load_rgb
from xai_ssl.data.records import ImageRecord
from xai_ssl.seeding import generator


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


def record_views(
    records: Sequence[ImageRecord], size: int, seed: int, crop_scale: tuple[float, float], with_masks: bool, max_pixels: int | None = None
) -> Iterator[tuple[dict[str, torch.Tensor], np.ndarray | None]]:
    """The views (and, when ``with_masks``, the centred mask of every record that has one, else None) of every record, in order.

    ``max_pixels``: files declaring more pixels are refused before decoding (``data.images.check_pixel_limit``).
    """
    for rec in records:
        views = make_views(load_rgb(rec.path, max_pixels), size, seed, rec.image_id, crop_scale)
        has_mask = with_masks and rec.mask_path is not None
        yield views, (center_mask(load_mask(rec.mask_path, max_pixels), size) if has_mask else None)
