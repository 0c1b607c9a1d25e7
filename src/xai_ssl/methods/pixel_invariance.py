"""Pixel Invariance (Sammani et al. §3.10): a sparse linear surrogate of the similarity under photometric changes.

For the clean view P = x1 (our centre view stands in for the reference's no-shift Resize((224, 224)); the
method uses the "crop_aug" pair, so the conditional metrics use the same x2 view as the other methods, the
spec's recommended partner, §8) we draw n_augmentations copies a_n = erase(aug(P)): 'aug' = colour jitter
(0.8, 0.8, 0.8, 0.2) p 0.8 + greyscale p 0.2, no blur and no shift (augment.photometric_augment with
p_blur 0), then RandomErasing(p 0.5, scale (0.02, 0.33), ratio (0.3, 3.3)) with the model-input zero as the
fill (the reference erases after normalisation). Labels y_n = cos(f(P), f(a_n)), no gradient.

Surrogate u(v) = wᵀv + b on images bilinearly resized (no antialias, as the old tensor Resize) to s×s in
model-input space, s = surrogate_size (null = 64 at 224 px, scaled: round(64·size/224)). Logit
ŷ_n = (u(P) + u(a_n)) / 2; loss Σ_n BCEWithLogits(ŷ_n, y_n) (soft targets in [−1, 1], as the reference,
§6.10) + l1·(‖w‖₁ + |b|); full-batch SGD (lr, epochs), nn.Linear's default init from a seeded generator.
Map = max_c w reshaped (3, s, s), min–max to [0, 1], values < threshold set to 0, Gaussian blur (null =
11 / σ 5 at s = 64, scaled with s). One map [B, s, s] per image (map2 = None).
Every draw is seeded per image from ctx.seeds[b] (purposes "augment" and "init").
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from xai_ssl.engine import cosine
from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.methods.smooth_grad import image_seed
from xai_ssl.models.encoder import Encoder
from xai_ssl.seeding import generator

DEFAULTS: dict[str, Any] = {
    "n_augmentations": 1000,
    "surrogate_size": None,
    "lr": 0.1,
    "l1": 0.2,
    "epochs": 10,
    "threshold": 0.5,
    "blur_kernel": None,
    "blur_sigma": None,
    "erase_p": 0.5,
    "erase_scale": [0.02, 0.33],
    "erase_ratio": [0.3, 3.3],
}


def _scale(params: dict[str, Any], size: int) -> dict[str, Any]:
    """Surrogate 64 px at 224 px (scaled, at most the image size); blur 11 / σ 5 at 64 px, scaled with the surrogate."""
    out = dict(params)
    if out["surrogate_size"] is None:
        out["surrogate_size"] = max(1, min(size, int(round(64 * size / 224))))
    s = int(out["surrogate_size"])
    if out["blur_kernel"] is None:
        out["blur_kernel"] = 2 * int(11 * s / 64 / 2) + 1  # odd; 11 at s = 64
    if out["blur_sigma"] is None:
        out["blur_sigma"] = 5.0 * s / 64
    if int(out["n_augmentations"]) < 1 or int(out["epochs"]) < 0 or s < 1:
        raise ValueError("pixel_invariance: n_augmentations and surrogate_size must be >= 1, epochs >= 0")
    k = int(out["blur_kernel"])
    if k < 1 or k % 2 != 1 or k // 2 >= s:
        raise ValueError(f"pixel_invariance: blur_kernel must be odd, >= 1 and < 2*surrogate_size, got {k}")
    return out




def erase_box(h: int, w: int, g: torch.Generator, scale: tuple[float, float], ratio: tuple[float, float]) -> tuple[int, int, int, int] | None:
    """(top, left, height, width) drawn as torchvision's RandomErasing.get_params (10 tries), or None."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * float(scale[0] + (scale[1] - scale[0]) * torch.rand((), generator=g))
        aspect = math.exp(float(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * torch.rand((), generator=g)))
        eh, ew = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if not (eh < h and ew < w):
            continue
        top = int(torch.randint(0, h - eh + 1, (), generator=g))
        left = int(torch.randint(0, w - ew + 1, (), generator=g))
        return top, left, eh, ew
    return None


def augmented_copy(encoder: Encoder, x: torch.Tensor, g: torch.Generator, params: dict[str, Any]) -> torch.Tensor:
    """One a_n = RandomErasing(no-shift 'aug'(x)) for x [3, H, W] in [0, 1] (fill = the model-input zero)."""
    from xai_ssl.augment import photometric_augment  # torchvision: imported by this method's jobs only

    a = photometric_augment(x, g, p_blur=0.0)  # [3, H, W]
    if bool(torch.rand((), generator=g) < float(params["erase_p"])):
        box = erase_box(x.shape[-2], x.shape[-1], g, tuple(params["erase_scale"]), tuple(params["erase_ratio"]))
        if box is not None:
            top, left, eh, ew = box
            a = a.clone()
            a[:, top : top + eh, left : left + ew] = encoder.baseline_pixel[0].to(a.dtype)
    return a


def surrogate_features(encoder: Encoder, x: torch.Tensor, s: int) -> torch.Tensor:
    """Flattened model-input images resized to s×s (bilinear, no antialias): [N, 3, H, W] -> [N, 3*s*s]."""
    return F.interpolate(encoder.normalise(x), size=(s, s), mode="bilinear", align_corners=False, antialias=False).flatten(1)


def invariance_dataset(
    encoder: Encoder, x: torch.Tensor, params: dict[str, Any], seed: int, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(features of P [F], features of a_n [N, F], labels y_n [N]) for one image x [3, H, W]; batched, no gradient."""
    n, s = int(params["n_augmentations"]), int(params["surrogate_size"])
    g = generator(seed, "augment")  # consumed in order n = 0..N-1, so batching does not change the draws
    feats, labels = [], []
    with torch.inference_mode():
        z_p = encoder(x[None])  # [1, D], embedded once
        for start in range(0, n, batch_size):
            batch = torch.stack([augmented_copy(encoder, x, g, params) for _ in range(min(batch_size, n - start))])
            labels.append(cosine(encoder(batch), z_p))  # [b]
            feats.append(surrogate_features(encoder, batch, s))  # [b, F]
        v_p = surrogate_features(encoder, x[None], s)[0]
    return v_p, torch.cat(feats), torch.cat(labels)


def fit_surrogate(
    v_p: torch.Tensor, v: torch.Tensor, y: torch.Tensor, params: dict[str, Any], seed: int
) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """Full-batch SGD on Σ BCEWithLogits((u(P)+u(a_n))/2, y_n) + l1·(‖w‖₁+|b|); returns (w [F], b [], losses per epoch + final)."""
    n_feat = v.shape[1]
    bound = 1 / math.sqrt(n_feat)  # nn.Linear default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for w and b
    g = generator(seed, "init")
    w = ((torch.rand(n_feat, generator=g, dtype=torch.float64) * 2 - 1) * bound).to(v.device, v.dtype)
    b = ((torch.rand((), generator=g, dtype=torch.float64) * 2 - 1) * bound).to(v.device, v.dtype)
    mid = (v_p[None] + v) / 2  # [N, F]: (u(P) + u(a_n)) / 2 = wᵀ mid_n + b
    lr, l1 = float(params["lr"]), float(params["l1"])
    losses: list[float] = []
    with torch.enable_grad():
        w.requires_grad_(True)
        b.requires_grad_(True)
        for epoch in range(int(params["epochs"]) + 1):
            logits = mid @ w + b  # [N]
            loss = F.binary_cross_entropy_with_logits(logits, y, reduction="sum") + l1 * (w.abs().sum() + b.abs())
            losses.append(float(loss.detach()))
            if epoch == int(params["epochs"]):
                break
            gw, gb = torch.autograd.grad(loss, [w, b])
            with torch.no_grad():
                w -= lr * gw
                b -= lr * gb
    return w.detach(), b.detach(), losses


def weights_to_map(w: torch.Tensor, s: int, params: dict[str, Any]) -> torch.Tensor:
    """max_c w (3, s, s) -> min–max -> zero below threshold -> blur; [s, s]."""
    m = w.view(3, s, s).amax(0)  # [s, s]
    span = m.max() - m.min()
    m = (m - m.min()) / span if span > 0 else torch.zeros_like(m)
    m = torch.where(m < float(params["threshold"]), torch.zeros_like(m), m)
    k, sigma = int(params["blur_kernel"]), float(params["blur_sigma"])
    import torchvision.transforms.v2.functional as TF

    return TF.gaussian_blur(m[None], [k, k], [sigma, sigma])[0] if k > 1 else m


def pixel_invariance_one(
    encoder: Encoder, x: torch.Tensor, params: dict[str, Any], seed: int, batch_size: int
) -> tuple[torch.Tensor, list[float]]:
    """Map [s, s] and the surrogate's loss curve for one image x [3, H, W]."""
    v_p, v, y = invariance_dataset(encoder, x, params, seed, batch_size)
    w, _, losses = fit_surrogate(v_p, v, y, params, seed)
    return weights_to_map(w, int(params["surrogate_size"]), params), losses


@register_method(
    "pixel_invariance", pair_family="crop_aug", family="perturbation", defaults=DEFAULTS, n_maps=1,
    cost="n_augmentations + 1 forwards (1000), no backward through the encoder; `epochs` full-batch steps of a linear surrogate", scale=_scale,
    passes=lambda p, size: Passes(int(p["n_augmentations"]) + 1),
)
def pixel_invariance(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, None]:
    """One map [B, s, s] for x1 (x2 is only the conditional metrics' partner); seeded by ctx.seeds[b]."""
    maps = [
        pixel_invariance_one(encoder, x1[b], params, image_seed(ctx, b, "pixel_invariance"), max(1, ctx.batch_size))[0]
        for b in range(x1.shape[0])
    ]
    return torch.stack(maps), None
