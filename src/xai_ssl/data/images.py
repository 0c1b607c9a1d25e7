"""Decoding image files (RGB views and label masks), with clear errors naming the file.

Before any pixel is decoded, the size the file declares in its header is checked against a pixel limit
(:func:`check_pixel_limit`; ``datasets.<name>.max_image_pixels``, default Pillow's 89 478 485 px), so a
decompression bomb (a few KB declaring 10⁸ px) is refused instead of decoded. Photos are turned upright by
their EXIF orientation (``ImageOps.exif_transpose``), as every image viewer shows them. Animated GIF / PNG /
WebP files are refused with :class:`UnsupportedImageError` (which frame to explain is unknown); indexing lists
them in ``index.skipped.csv``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps

from xai_ssl.data.records import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")

# Pillow's default ``Image.MAX_IMAGE_PIXELS`` (1024 * 1024 * 1024 // 4 // 3): above it Pillow only warns, above
# twice it Pillow refuses on its own; we refuse above the configured limit, before decoding.
DEFAULT_MAX_PIXELS = 89_478_485
# Formats whose multi-frame files are animations (MPO / multi-page TIFF: the first frame is the picture).
ANIMATION_FORMATS = ("GIF", "PNG", "WEBP")


class UnsupportedImageError(DataError):
    """A readable image the workflow does not explain (an animation); indexing skips it whatever ``on_bad_image``."""


def check_pixel_limit(path_or_file: Path | str | IO[bytes], max_pixels: int, setting: str = "datasets.<name>.max_image_pixels") -> tuple[int, int]:
    """(width, height) the image declares in its header; DataError naming the file when width × height > ``max_pixels``.

    Only the header is read (no pixel is decoded). An open file is returned to its position, so the caller can
    decode it afterwards. ``setting`` names the config key of the limit in the message.
    """
    is_path = isinstance(path_or_file, (str, Path))
    name = str(path_or_file) if is_path else str(getattr(path_or_file, "name", None) or "<uploaded file>")
    start = None if is_path else path_or_file.tell()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, with the configured limit
            with Image.open(path_or_file) as image:
                width, height = image.size
    except FileNotFoundError as exc:
        raise DataError(f"{name}: file not found") from exc
    except Image.DecompressionBombError as exc:  # more than twice Pillow's own limit: Pillow refuses to open it at all
        raise DataError(f"{name}: cannot read image (DecompressionBombError: {exc}); the limit is {max_pixels} pixels ({setting})") from exc
    except Exception as exc:  # PIL raises OSError, UnidentifiedImageError, ValueError, ...
        raise DataError(f"{name}: cannot read image ({type(exc).__name__}: {exc})") from exc
    finally:
        if start is not None:
            path_or_file.seek(start)
    if width * height > max_pixels:
        raise DataError(
            f"{name}: {width}×{height} = {width * height} pixels, more than the limit of {max_pixels} "
            f"({setting}); refused before decoding (a decompression bomb, or raise the limit)"
        )
    return width, height

# Integer greyscale modes that Pillow uses for 16-bit images (PNG/TIFF).
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def is_image_file(path: Path | str) -> bool:
    """True if the file name ends with one of IMAGE_EXTENSIONS (case-insensitive)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def _open_loaded(path: Path, max_pixels: int | None = None) -> Image.Image:
    """Open an image (size checked first when ``max_pixels`` is given), refuse animations, decode all of its pixels
    (so truncated files fail here) and turn it upright by its EXIF orientation."""
    if max_pixels is not None:
        check_pixel_limit(path, max_pixels)
    try:
        with warnings.catch_warnings():
            if max_pixels is not None:  # checked above against the configured limit
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        frames = int(getattr(image, "n_frames", 1))
        if frames > 1 and image.format in ANIMATION_FORMATS:
            image.close()
            raise UnsupportedImageError(f"{path}: animated image ({image.format}, {frames} frames) is not explained; save the frame to explain as PNG")
        image.load()
    except DataError:
        raise
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except Exception as exc:  # PIL raises OSError, UnidentifiedImageError, ValueError, ...
        raise DataError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from exc
    return _upright(image)


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (unchanged without one, or when the EXIF block is unreadable)."""
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block does not make the pixels unreadable
        return image
    if orientation in (None, 1):
        return image
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001
        return image
    image.close()
    return upright


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


def load_rgb(path: Path | str, max_pixels: int | None = None) -> torch.Tensor:
    """Load an image file as a float32 RGB tensor [3, H, W] with values in [0, 1] (upright by its EXIF orientation).

    ``max_pixels``: refuse (DataError) a file that declares more pixels, before decoding it (None: Pillow's own
    check only).
    """
    path = Path(path)
    image = _open_loaded(path, max_pixels)
    with image:
        return image_to_rgb(image, str(path))


def image_to_rgb(image: Image.Image, name: str = "image") -> torch.Tensor:
    """A decoded PIL image of any common mode as a float32 RGB tensor [3, H, W] in [0, 1] (what :func:`load_rgb` returns
    for an upright image)."""
    array = _to_rgb_array(image, Path(name))  # [H, W, 3]
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"{name}: unexpected decoded shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))  # [3, H, W]


def load_mask(path: Path | str, max_pixels: int | None = None) -> np.ndarray:
    """Load a single-channel label map as uint8 [H, W] (modes L, P, or RGB with equal channels)."""
    path = Path(path)
    image = _open_loaded(path, max_pixels)
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
