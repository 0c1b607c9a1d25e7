"""Batched SimCLR training views: the draws of :mod:`xai_ssl.augment` for a whole batch at once.

:func:`xai_ssl.augment.simclr_augment` makes one view per call from per-image Python draws; for training
that loop cost ~30 % of the step time on a CPU. Here every random parameter of a batch (crop box, flip,
jitter factors and order, greyscale, blur sigma) is drawn from one seeded ``torch.Generator`` as a tensor,
in a fixed order, and applied with batched tensor operations, so a batch of views depends only on the
images and the generator state. The distributions are those of the per-image presets (torchvision's
``RandomResizedCrop``, ``ColorJitter``, ``RandomGrayscale``, ``GaussianBlur``); the crop is resampled with
``torchvision.ops.roi_align`` (bilinear samples averaged over each output pixel, i.e. an antialiased
resize), the colour operations follow torchvision's formulas (checked against ``torchvision.transforms.v2
.functional`` in the tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from xai_ssl.augment import blur_kernel_size

GREY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale


def crop_boxes(
    n: int, h: int, w: int, g: torch.Generator, scale: tuple[float, float], ratio: tuple[float, float] = (3 / 4, 4 / 3), attempts: int = 10
) -> torch.Tensor:
    """Random resized-crop boxes [n, 4] = (top, left, height, width) in pixels, drawn as RandomResizedCrop does.

    Per image: up to ``attempts`` (area, log-aspect) draws, the first that fits is used; otherwise the
    central crop of the clamped aspect ratio. Boxes are continuous (the resampling handles sub-pixels).
    """
    area = torch.empty(n, attempts).uniform_(scale[0], scale[1], generator=g) * (h * w)  # [n, A]
    log_aspect = torch.empty(n, attempts).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=g)
    aspect = log_aspect.exp()
    cw, ch = (area * aspect).sqrt(), (area / aspect).sqrt()  # [n, A]
    fits = (cw <= w) & (ch <= h)
    first = torch.where(fits.any(dim=1), fits.float().argmax(dim=1), torch.full((n,), -1))  # [n], -1: none fits
    pos = torch.rand(n, 2, generator=g)  # [n, 2] where the box sits inside the free range
    in_ratio = w / h
    fb_w = w if in_ratio <= ratio[1] else h * ratio[1]
    fb_h = h if in_ratio >= ratio[0] else w / ratio[0]
    pick = first.clamp(min=0)[:, None]
    bw = torch.where(first >= 0, cw.gather(1, pick)[:, 0], torch.full((n,), float(fb_w)))
    bh = torch.where(first >= 0, ch.gather(1, pick)[:, 0], torch.full((n,), float(fb_h)))
    top = torch.where(first >= 0, pos[:, 0] * (h - bh), (h - bh) / 2)
    left = torch.where(first >= 0, pos[:, 1] * (w - bw), (w - bw) / 2)
    return torch.stack([top, left, bh, bw], dim=1)


def resized_crops(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop boxes [B, 4] (top, left, height, width) of images [B, C, H, W], resampled to [B, C, size, size].

    Each output pixel averages ceil(box side / size)^2 bilinear samples of its footprint (roi_align with
    ``aligned=True``): plain bilinear interpolation when enlarging, a box-filtered reduction when shrinking.
    """
    top, left, bh, bw = boxes.unbind(dim=1)
    rois = torch.stack([torch.arange(len(boxes), dtype=images.dtype), left, top, left + bw, top + bh], dim=1).to(images.dtype)  # [B, 5]
    return roi_align(images, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)


def _per_image(f: torch.Tensor) -> torch.Tensor:
    """Factors [B] -> [B, 1, 1, 1] for broadcasting over images."""
    return f.view(-1, 1, 1, 1)


def grey(x: torch.Tensor) -> torch.Tensor:
    """Luma [B, 1, H, W] of RGB images [B, 3, H, W] with torchvision's weights."""
    r, gch, b = x.unbind(dim=1)
    return (GREY_WEIGHTS[0] * r + GREY_WEIGHTS[1] * gch + GREY_WEIGHTS[2] * b).unsqueeze(1)


def adjust_brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """x * f, clamped to [0, 1]; f [B]."""
    return (x * _per_image(f)).clamp(0.0, 1.0)


def adjust_contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Blend with each image's mean luma: f * x + (1 - f) * mean, clamped; f [B]."""
    mean = grey(x).mean(dim=(1, 2, 3), keepdim=True)  # [B, 1, 1, 1]
    return (_per_image(f) * x + (1 - _per_image(f)) * mean).clamp(0.0, 1.0)


def adjust_saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Blend with the per-pixel luma: f * x + (1 - f) * grey, clamped; f [B]."""
    return (_per_image(f) * x + (1 - _per_image(f)) * grey(x)).clamp(0.0, 1.0)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB [B, 3, H, W] in [0, 1] -> HSV [B, 3, H, W] with hue in [0, 1) (hexcone model, Smith 1978)."""
    r, gch, b = x.unbind(dim=1)
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    delta = maxc - minc
    grey_pixel = delta == 0
    s = delta / torch.where(maxc == 0, torch.ones_like(maxc), maxc)
    d = torch.where(grey_pixel, torch.ones_like(delta), delta)
    rc, gc, bc = (maxc - r) / d, (maxc - gch) / d, (maxc - b) / d
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == gch, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(grey_pixel, torch.zeros_like(h), (h / 6.0) % 1.0)
    return torch.stack([h, s, maxc], dim=1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV [B, 3, H, W] (hue in [0, 1)) -> RGB [B, 3, H, W]."""
    h, s, v = x.unbind(dim=1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int64) % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # (r, g, b) per sector 0..5
    table = torch.stack(
        [torch.stack(c, dim=1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], dim=0
    )  # [6, B, 3, H, W]
    return table.gather(0, i[None, :, None].expand(1, -1, 3, -1, -1))[0]


def adjust_hue(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by f [B] (fractions of the colour circle, |f| <= 0.5)."""
    hsv = rgb_to_hsv(x)
    h = (hsv[:, 0] + f.view(-1, 1, 1)) % 1.0
    return hsv_to_rgb(torch.stack([h, hsv[:, 1], hsv[:, 2]], dim=1)).clamp(0.0, 1.0)


def gaussian_kernels(sigma: torch.Tensor, radius: int, cutoff: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels [B, 2 * radius + 1]; taps beyond ``cutoff`` [B] (if given) are zero."""
    t = torch.arange(-radius, radius + 1, dtype=sigma.dtype)  # [K]
    k = torch.exp(-0.5 * (t[None] / sigma[:, None]) ** 2)  # [B, K]
    if cutoff is not None:
        k = k * (t.abs()[None] <= cutoff[:, None])
    return k / k.sum(dim=1, keepdim=True)


def blur(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Separable blur of [B, C, H, W], one kernel [B, K] per image, reflect padding (as torchvision)."""
    b, c, h, w = x.shape
    r = kernels.shape[1] // 2
    weight = kernels.repeat_interleave(c, dim=0)  # [B*C, K]
    y = F.pad(x.reshape(1, b * c, h, w), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, weight.view(b * c, 1, -1, 1), groups=b * c)  # vertical
    y = F.conv2d(y, weight.view(b * c, 1, 1, -1), groups=b * c)  # horizontal
    return y.view(b, c, h, w)


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image: a where mask [B] else b."""
    return torch.where(mask.view(-1, 1, 1, 1), a, b)


def _apply(x: torch.Tensor, mask: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """fn on the images selected by mask [B] only (the others unchanged)."""
    idx = mask.nonzero()[:, 0]
    if len(idx) == 0:
        return x
    out = x.clone()
    out[idx] = fn(idx)
    return out


def color_jitter(
    x: torch.Tensor, g: torch.Generator, strengths: tuple[float, float, float, float], p: float
) -> torch.Tensor:
    """ColorJitter with probability p per image: brightness, contrast, saturation, hue in a random order each."""
    b = len(x)
    apply = torch.rand(b, generator=g) < p  # [B]
    order = torch.rand(b, 4, generator=g).argsort(dim=1)  # [B, 4] a random permutation per image
    u = torch.rand(b, 4, generator=g)
    br, co, sa, hu = strengths
    lo = torch.tensor([max(0.0, 1 - br), max(0.0, 1 - co), max(0.0, 1 - sa), -hu])
    hi = torch.tensor([1 + br, 1 + co, 1 + sa, hu])
    factors = lo + (hi - lo) * u  # [B, 4]
    ops = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
    active = (br > 0, co > 0, sa > 0, hu > 0)
    for position in range(4):
        for k in range(4):
            if active[k]:
                x = _apply(x, apply & (order[:, position] == k), lambda idx, k=k, x=x: ops[k](x[idx], factors[idx, k]))
    return x


def simclr_views(
    images: torch.Tensor,
    size: int,
    g: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    p_flip: float = 0.5,
    jitter: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2),
    p_jitter: float = 0.8,
    p_gray: float = 0.2,
    p_blur: float = 0.5,
    blur_sigma: tuple[float, float] = (0.1, 2.0),
) -> torch.Tensor:
    """SimCLR views [B, 3, size, size] of images [B, 3, H, W]: the batched :func:`xai_ssl.augment.simclr_augment`."""
    b, _, h, w = images.shape
    x = resized_crops(images, crop_boxes(b, h, w, g, scale), size)
    x = _where(torch.rand(b, generator=g) < p_flip, x.flip(-1), x)
    x = color_jitter(x, g, jitter, p_jitter)
    x = _where(torch.rand(b, generator=g) < p_gray, grey(x).expand(-1, 3, -1, -1), x)
    do_blur = torch.rand(b, generator=g) < p_blur
    sigma = (blur_sigma[0] + (blur_sigma[1] - blur_sigma[0]) * torch.rand(b, generator=g)) * size / 224
    x = _apply(x, do_blur, lambda idx: blur(x[idx], gaussian_kernels(sigma[idx], blur_kernel_size(size) // 2)))
    return x.clamp(0.0, 1.0)


def survey_views(
    images: torch.Tensor,
    size: int,
    g: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    p_rotate: float = 0.5,
    p_flip: float = 0.5,
    p_blur: float = 0.5,
    blur_sigma: tuple[float, float] = (0.1, 2.0),
) -> torch.Tensor:
    """The survey's views [B, 3, size, size]: the batched :func:`xai_ssl.augment.survey_augment`.

    Blur kernels are 2 * ceil(3 sigma) + 1 taps per image (zero taps pad them to the batch's widest).
    """
    b, _, h, w = images.shape
    x = resized_crops(images, crop_boxes(b, h, w, g, scale), size)
    x = _where(torch.rand(b, generator=g) < p_rotate, torch.rot90(x, 1, dims=(-2, -1)), x)
    x = _where(torch.rand(b, generator=g) < p_flip, x.flip(-1), x)
    x = _where(torch.rand(b, generator=g) < p_flip, x.flip(-2), x)
    do_blur = torch.rand(b, generator=g) < p_blur
    sigma = (blur_sigma[0] + (blur_sigma[1] - blur_sigma[0]) * torch.rand(b, generator=g)) * size / 128
    radius = torch.ceil(3 * sigma)
    if bool(do_blur.any()):
        r = int(radius[do_blur].max())
        x = _apply(x, do_blur, lambda idx: blur(x[idx], gaussian_kernels(sigma[idx], r, radius[idx])))
    return x.clamp(0.0, 1.0)


BATCH_AUGMENTATIONS: dict[str, Callable[..., torch.Tensor]] = {"simclr": simclr_views, "survey": survey_views}
