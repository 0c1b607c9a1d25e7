"""Seeded image augmentations (SimCLR view, photometric-only view) on tensors in [0, 1].

Every random draw comes from an explicit ``torch.Generator``, so a view depends only on the
image and its seed. The operations are torchvision's functional transforms; the parameter
draws follow torchvision's ``RandomResizedCrop``, ``ColorJitter``, ``RandomGrayscale`` and
``GaussianBlur`` (kernel 21 and sigma in [0.1, 2] at 224 px, scaled with the image size).
"""

from __future__ import annotations

import math

import torch
import torchvision.transforms.v2.functional as TF


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return float(lo + (hi - lo) * torch.rand((), generator=g))


def _bernoulli(g: torch.Generator, p: float) -> bool:
    return bool(torch.rand((), generator=g) < p)


def blur_kernel_size(size: int, kernel_at_224: int = 21) -> int:
    """Odd Gaussian-blur kernel size scaled from its value at 224 px."""
    return 2 * int(kernel_at_224 * size / 224 / 2) + 1


def random_resized_crop_box(
    h: int, w: int, g: torch.Generator, scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)
) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random crop as torchvision's RandomResizedCrop draws it."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(g, *scale)
        aspect = math.exp(_uniform(g, *log_ratio))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (), generator=g))
            left = int(torch.randint(0, w - cw + 1, (), generator=g))
            return top, left, ch, cw
    in_ratio = w / h  # fallback: central crop
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def color_jitter(
    img: torch.Tensor, g: torch.Generator, brightness: float, contrast: float, saturation: float, hue: float
) -> torch.Tensor:
    """ColorJitter on [3, H, W]: the four operations in random order with random factors."""
    order = torch.randperm(4, generator=g).tolist()
    factors = [
        _uniform(g, max(0.0, 1 - brightness), 1 + brightness),
        _uniform(g, max(0.0, 1 - contrast), 1 + contrast),
        _uniform(g, max(0.0, 1 - saturation), 1 + saturation),
        _uniform(g, -hue, hue),
    ]
    for op in order:
        if op == 0 and brightness > 0:
            img = TF.adjust_brightness(img, factors[0])
        elif op == 1 and contrast > 0:
            img = TF.adjust_contrast(img, factors[1])
        elif op == 2 and saturation > 0:
            img = TF.adjust_saturation(img, factors[2])
        elif op == 3 and hue > 0:
            img = TF.adjust_hue(img, factors[3])
    return img


def photometric_augment(
    img: torch.Tensor,
    g: torch.Generator,
    jitter: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2),
    p_jitter: float = 0.8,
    p_gray: float = 0.2,
    p_blur: float = 0.5,
    blur_sigma: tuple[float, float] = (0.1, 2.0),
) -> torch.Tensor:
    """Colour jitter, greyscale and blur without moving pixels ([3, H, W] -> [3, H, W]); the spec's 'combine'."""
    size = img.shape[-1]
    if _bernoulli(g, p_jitter):
        img = color_jitter(img, g, *jitter)
    if _bernoulli(g, p_gray):
        img = TF.rgb_to_grayscale(img, num_output_channels=3)
    if _bernoulli(g, p_blur):
        sigma = _uniform(g, *blur_sigma) * size / 224
        img = TF.gaussian_blur(img, [blur_kernel_size(size)] * 2, [sigma, sigma])
    return img.clamp(0.0, 1.0)


def simclr_augment(
    img: torch.Tensor,
    size: int,
    g: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    p_flip: float = 0.5,
    **photometric: object,
) -> torch.Tensor:
    """SimCLR view of [3, H, W]: random resized crop to ``size``, flip, then :func:`photometric_augment`."""
    top, left, ch, cw = random_resized_crop_box(img.shape[-2], img.shape[-1], g, scale)
    out = TF.resized_crop(img, top, left, ch, cw, [size, size], antialias=True)
    if _bernoulli(g, p_flip):
        out = TF.horizontal_flip(out)
    return photometric_augment(out, g, **photometric)  # type: ignore[arg-type]


def survey_augment(
    img: torch.Tensor,
    size: int,
    g: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    p_rotate: float = 0.5,
    p_flip: float = 0.5,
    p_blur: float = 0.5,
    blur_sigma: tuple[float, float] = (0.1, 2.0),
) -> torch.Tensor:
    """The survey's SimCLR view (lightly SimCLRTransform with rr_prob=vf_prob=0.5, no colour jitter, no greyscale).

    [3, H, W] -> [3, size, size]: random resized crop -> +90 degree rotation (p 0.5) -> horizontal flip
    (0.5) -> vertical flip (0.5) -> Gaussian blur (p 0.5, sigma ~ U(0.1, 2) px at 128 px, scaled with
    the size; kernel 2*ceil(3 sigma)+1). ``methods-survey.md`` §6; our re-implementation, not lightly's code.
    """
    top, left, ch, cw = random_resized_crop_box(img.shape[-2], img.shape[-1], g, scale)
    out = TF.resized_crop(img, top, left, ch, cw, [size, size], antialias=True)
    if _bernoulli(g, p_rotate):
        out = torch.rot90(out, 1, dims=(-2, -1))  # counter-clockwise, as a +90 degree rotate
    if _bernoulli(g, p_flip):
        out = TF.horizontal_flip(out)
    if _bernoulli(g, p_flip):
        out = TF.vertical_flip(out)
    if _bernoulli(g, p_blur):
        sigma = _uniform(g, *blur_sigma) * size / 128
        k = 2 * math.ceil(3 * sigma) + 1
        out = TF.gaussian_blur(out, [k, k], [sigma, sigma])
    return out.clamp(0.0, 1.0)


AUGMENTATIONS = {"simclr": simclr_augment, "survey": survey_augment}


def center_view(img: torch.Tensor, size: int) -> torch.Tensor:
    """Resize the shorter side to size*256/224, then centre-crop ``size`` ([3, H, W] -> [3, size, size])."""
    resize_to = int(round(size * 256 / 224))
    out = TF.resize(img, [resize_to], antialias=True)
    return TF.center_crop(out, [size, size]).clamp(0.0, 1.0)
