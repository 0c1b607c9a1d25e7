"""Decoding image files (RGB views and label masks), with clear errors naming the file."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from xai_ssl.data.records import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# Integer greyscale modes that Pillow uses for 16-bit images (PNG/TIFF).
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def is_image_file(path: Path | str) -> bool:
    """True if the file name ends with one of IMAGE_EXTENSIONS (case-insensitive)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def _open_loaded(path: Path) -> Image.Image:
    """Open an image and decode all of its pixels, so truncated files fail here."""
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except Exception as exc:  # PIL raises OSError, UnidentifiedImageError, ValueError, ...
        raise DataError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from exc
    return image


def _to_rgb_array(image: Image.Image, path: Path) -> np.ndarray:
    """Convert a decoded PIL image of any common mode to float32 RGB in [0, 1]."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(image, dtype=np.float64) / 65535.0  # [H, W]
        grey = np.clip(grey, 0.0, 1.0)
        return np.repeat(grey[:, :, None], 3, axis=2).astype(np.float32)  # [H, W, 3]
    if mode == "F":
        grey = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)  # [H, W]
        return np.repeat(grey[:, :, None], 3, axis=2).astype(np.float32)
    if mode == "RGB":
        rgb = image
    elif mode in ("RGBA", "RGBa", "RGBX"):
        rgb = image.convert("RGB")  # alpha dropped (not composited)
    elif mode in ("P", "PA"):
        rgb = image.convert("RGBA").convert("RGB")
    else:  # L, LA, 1, CMYK, YCbCr, LAB, HSV, I;16 variants handled above
        try:
            rgb = image.convert("RGB")
        except Exception as exc:
            raise DataError(f"{path}: cannot convert image mode {mode!r} to RGB ({exc})") from exc
    return np.asarray(rgb, dtype=np.float32) / 255.0  # [H, W, 3]


def check_pixel_limit(path_or_file: Path | str | BinaryIO, max_pixels: int) -> tuple[int, int]:
    """(width, height) of an image read from its header only; DataError when it is not an image or has more than
    ``max_pixels`` pixels (a decompression bomb: a small file that decodes to gigabytes), before any decoding."""
    name = getattr(path_or_file, "name", None) or str(path_or_file)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below decides
            with Image.open(path_or_file) as image:  # reads the header, decodes no pixels
                width, height = image.size
    except FileNotFoundError as exc:
        raise DataError(f"{name}: file not found") from exc
    except Image.DecompressionBombError as exc:  # beyond twice Pillow's own limit: refused while opening
        raise DataError(f"{name}: image too large to decode safely ({exc}); the limit is {max_pixels} pixels") from exc
    except Exception as exc:  # UnidentifiedImageError (not an image), OSError (truncated header), ...
        raise DataError(f"{name}: not a readable image ({type(exc).__name__}: {exc})") from exc
    finally:
        if hasattr(path_or_file, "seek"):
            path_or_file.seek(0)
    if width * height > max_pixels:
        raise DataError(f"{name}: {width}×{height} = {width * height} pixels is more than the limit of {max_pixels} pixels (a decompression bomb, or resize it first)")
    return width, height


def image_to_rgb(image: Image.Image, name: str = "image") -> torch.Tensor:
    """A decoded PIL image of any common mode as a float32 RGB tensor [3, H, W] in [0, 1] (what :func:`load_rgb` returns)."""
    array = _to_rgb_array(image, Path(name))  # [H, W, 3]
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"{name}: unexpected decoded shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))  # [3, H, W]


def load_rgb(path: Path | str) -> torch.Tensor:
    """Load an image file as a float32 RGB tensor [3, H, W] with values in [0, 1]."""
    path = Path(path)
    image = _open_loaded(path)
    with image:
        return image_to_rgb(image, str(path))


def load_mask(path: Path | str) -> np.ndarray:
    """Load a single-channel label map as uint8 [H, W] (modes L, P, or RGB with equal channels)."""
    path = Path(path)
    image = _open_loaded(path)
    with image:
        mode = image.mode
        if mode in ("L", "P"):
            mask = np.asarray(image, dtype=np.uint8)  # [H, W]
        elif mode == "RGB":
            rgb = np.asarray(image, dtype=np.uint8)  # [H, W, 3]
            if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
                raise DataError(f"{path}: mask is RGB with different channels, expected a single-channel label map")
            mask = rgb[..., 0]
        else:
            raise DataError(f"{path}: mask has image mode {mode!r}, expected a single-channel label map (L or P)")
    return np.ascontiguousarray(mask)


def load_resized(paths: list[Path | str], size: int) -> torch.Tensor:
    """Images resized (squashed) to [N, 3, size, size] in [0, 1] (training images)."""
    import torchvision.transforms.v2.functional as TF

    return torch.stack([TF.resize(load_rgb(p), [size, size], antialias=True) for p in paths])
