"""Batched SimCLR training views: each operation against torchvision's per-image functional, the draws against
their distributions, and determinism."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from xai_ssl.models import batch_views as bv


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _images(b: int = 6, size: int = 20, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("batched", "reference"),
    [
        (bv.adjust_brightness, TF.adjust_brightness),
        (bv.adjust_contrast, TF.adjust_contrast),
        (bv.adjust_saturation, TF.adjust_saturation),
    ],
)
def test_colour_operations_match_torchvision(batched, reference) -> None:
    x = _images()
    f = torch.linspace(0.2, 1.8, 6)
    expected = torch.stack([reference(x[i], float(f[i])) for i in range(6)])
    torch.testing.assert_close(batched(x, f), expected, atol=1e-6, rtol=0)


def test_hue_matches_torchvision() -> None:
    x = _images()
    x[0, :, :4] = 0.5  # grey pixels (no hue)
    x[1, 0, :4] = 1.0  # saturated reds
    f = torch.tensor([-0.2, -0.1, 0.0, 0.05, 0.15, 0.5])
    expected = torch.stack([TF.adjust_hue(x[i], float(f[i])) for i in range(6)])
    torch.testing.assert_close(bv.adjust_hue(x, f), expected, atol=2e-6, rtol=0)


def test_hsv_round_trip() -> None:
    x = _images(4, 9)
    torch.testing.assert_close(bv.hsv_to_rgb(bv.rgb_to_hsv(x)), x, atol=1e-6, rtol=0)


def test_grey_and_blur_match_torchvision() -> None:
    x = _images()
    torch.testing.assert_close(bv.grey(x).expand(-1, 3, -1, -1), TF.rgb_to_grayscale(x, num_output_channels=3), atol=1e-6, rtol=0)
    sigma = torch.tensor([0.1, 0.3, 0.5, 0.8, 1.2, 2.0])
    expected = torch.stack([TF.gaussian_blur(x[i], [7, 7], [float(sigma[i])] * 2) for i in range(6)])
    torch.testing.assert_close(bv.blur(x, bv.gaussian_kernels(sigma, 3)), expected, atol=1e-6, rtol=0)


def test_truncated_kernels_equal_their_own_width() -> None:
    """A kernel padded with zero taps to a wider radius blurs exactly as the narrow kernel (reflect padding)."""
    x = _images(2, 16)
    sigma = torch.tensor([0.4, 0.9])
    cutoff = torch.ceil(3 * sigma)  # 2, 3
    wide = bv.blur(x, bv.gaussian_kernels(sigma, 5, cutoff))
    for i in range(2):
        k = 2 * int(cutoff[i]) + 1
        torch.testing.assert_close(wide[i], TF.gaussian_blur(x[i], [k, k], [float(sigma[i])] * 2), atol=1e-6, rtol=0)


def test_resized_crops_against_slicing_and_pooling() -> None:
    x = _images(3, 20)
    # an integer box at its own size is a slice
    same = bv.resized_crops(x, torch.tensor([[3.0, 4.0, 8.0, 8.0]] * 3), 8)
    torch.testing.assert_close(same, x[:, :, 3:11, 4:12], atol=1e-6, rtol=0)
    # the whole image at half size is the mean of each 2x2 block
    half = bv.resized_crops(x, torch.tensor([[0.0, 0.0, 20.0, 20.0]] * 3), 10)
    torch.testing.assert_close(half, F.avg_pool2d(x, 2), atol=1e-6, rtol=0)
    # a different box per image
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [10.0, 10.0, 10.0, 10.0], [5.0, 0.0, 10.0, 20.0]])
    out = bv.resized_crops(x, boxes, 10)
    torch.testing.assert_close(out[0], x[0, :, :10, :10], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[1], x[1, :, 10:, 10:], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[2], F.avg_pool2d(x[2:3, :, 5:15, :], (1, 2))[0], atol=1e-6, rtol=0)


def test_crop_boxes_follow_random_resized_crop() -> None:
    g = torch.Generator().manual_seed(1)
    h = w = 100
    boxes = bv.crop_boxes(4000, h, w, g, scale=(0.3, 1.0))
    top, left, bh, bw = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + bh <= h + 1e-4).all() and (left + bw <= w + 1e-4).all()
    area = bh * bw / (h * w)
    aspect = bw / bh
    fitted = (area >= 0.3 - 1e-4) & (area <= 1.0 + 1e-4) & (aspect >= 0.75 - 1e-4) & (aspect <= 4 / 3 + 1e-4)
    assert fitted.all()  # every box is a draw of the ranges or the central fallback (which has aspect 1, area 1)
    # areas of accepted draws are uniform on [0.3, 1] truncated where the aspect does not fit: mean in a narrow band
    assert 0.55 < float(area.mean()) < 0.66
    # positions are uniform over the free range: the box centre averages the image centre
    assert abs(float((left + bw / 2).mean()) - 50) < 1.0 and abs(float((top + bh / 2).mean()) - 50) < 1.0
    # no box fits -> the central crop of the clamped aspect (wide image, ratio 4/3 at most)
    fallback = bv.crop_boxes(3, 10, 40, g, scale=(1.0, 1.0))
    torch.testing.assert_close(fallback, torch.tensor([[0.0, (40 - 40 / 3) / 2, 10.0, 40 / 3]] * 3))


def test_colour_jitter_draws_and_identity() -> None:
    x = _images(8, 12)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(bv.color_jitter(x, g, (0.8, 0.8, 0.8, 0.2), p=0.0), x)  # p 0: untouched
    assert torch.equal(bv.color_jitter(x, g, (0.0, 0.0, 0.0, 0.0), p=1.0), x)  # zero strengths: untouched
    # one operation only: brightness with factors uniform in [0.5, 1.5] -> each image scaled by one factor
    y = bv.color_jitter(x * 0.5, torch.Generator().manual_seed(3), (0.5, 0.0, 0.0, 0.0), p=1.0)
    ratio = (y / (x * 0.5)).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1], atol=1e-5)
    assert ((ratio[:, 0] >= 0.5) & (ratio[:, 0] <= 1.5)).all() and float(ratio[:, 0].std()) > 0.1


def test_jitter_order_is_random_per_image() -> None:
    """Brightness then contrast differs from contrast then brightness only through clamping; use saturation + hue,
    which do not commute: with a random order per image both orders occur in a batch."""
    x = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(5)).expand(64, -1, -1, -1).contiguous()
    g = torch.Generator().manual_seed(0)
    y = bv.color_jitter(x, g, (0.0, 0.0, 0.9, 0.3), p=1.0)
    g = torch.Generator().manual_seed(0)
    b = 64
    torch.rand(b, generator=g)  # the same draws as color_jitter, in its order: apply (p = 1), order, factors
    order = torch.rand(b, 4, generator=g).argsort(dim=1)
    u = torch.rand(b, 4, generator=g)
    sat, hue = 0.1 + 1.8 * u[:, 2], -0.3 + 0.6 * u[:, 3]
    for i in range(b):
        sat_first = (order[i] == 2).nonzero().item() < (order[i] == 3).nonzero().item()
        img = x[i]
        if sat_first:
            ref = TF.adjust_hue(TF.adjust_saturation(img, float(sat[i])), float(hue[i]))
        else:
            ref = TF.adjust_saturation(TF.adjust_hue(img, float(hue[i])), float(sat[i]))
        torch.testing.assert_close(y[i], ref, atol=2e-6, rtol=0)
    firsts = [(order[i] == 2).nonzero().item() < (order[i] == 3).nonzero().item() for i in range(b)]
    assert 0 < sum(firsts) < b


@pytest.mark.parametrize("preset", ["simclr", "survey"])
def test_views_are_seeded_and_in_range(preset: str) -> None:
    x = _images(16, 32)
    fn = bv.BATCH_AUGMENTATIONS[preset]
    a = fn(x, 24, torch.Generator().manual_seed(0), scale=(0.3, 1.0))
    b = fn(x, 24, torch.Generator().manual_seed(0), scale=(0.3, 1.0))
    c = fn(x, 24, torch.Generator().manual_seed(1), scale=(0.3, 1.0))
    assert a.shape == (16, 3, 24, 24) and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    # views of one image do not depend on the other images of the batch (all draws are per image)
    d = fn(torch.cat([x[:1], _images(15, 32, seed=9)]), 24, torch.Generator().manual_seed(0), scale=(0.3, 1.0))
    torch.testing.assert_close(d[0], a[0], atol=1e-6, rtol=0)


def test_simclr_view_rates() -> None:
    """Flip, greyscale and blur happen at their probabilities (grey views have equal channels)."""
    x = _images(2000, 8)
    v = bv.simclr_views(x, 8, torch.Generator().manual_seed(0), scale=(1.0, 1.0), p_jitter=0.0, p_gray=0.2, p_blur=0.0, p_flip=0.0)
    grey_rate = float(((v[:, 0] == v[:, 1]) & (v[:, 1] == v[:, 2])).flatten(1).all(1).float().mean())
    assert abs(grey_rate - 0.2) < 0.03
    flipped = bv.simclr_views(x, 8, torch.Generator().manual_seed(0), scale=(1.0, 1.0), p_jitter=0.0, p_gray=0.0, p_blur=0.0, p_flip=0.5)
    mirror = torch.isclose(flipped, x.flip(-1), atol=1e-6).flatten(1).all(1)
    same = torch.isclose(flipped, x, atol=1e-6).flatten(1).all(1)
    assert bool((mirror | same).all()) and abs(float(mirror.float().mean()) - 0.5) < 0.04


def test_survey_rotation_and_flips() -> None:
    x = _images(400, 8)
    v = bv.survey_views(x, 8, torch.Generator().manual_seed(0), scale=(1.0, 1.0), p_blur=0.0)
    candidates = []
    for rot in (False, True):
        r = torch.rot90(x, 1, dims=(-2, -1)) if rot else x
        for h in (False, True):
            for vflip in (False, True):
                c = r.flip(-1) if h else r
                candidates.append(c.flip(-2) if vflip else c)
    match = torch.stack([torch.isclose(v, c, atol=1e-6).flatten(1).all(1) for c in candidates])  # [8, N]
    assert bool(match.any(0).all())
    assert abs(float(match[4:].any(0).float().mean()) - 0.5) < 0.08  # rotated half of the time (rot90 first)
    assert math.isfinite(float(v.sum()))
