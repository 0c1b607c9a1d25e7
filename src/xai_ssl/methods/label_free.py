"""Label-free feature importance (Crabbé & van der Schaar, ICML 2022; survey spec §4) with Captum.

Single-image method on the crop_aug pair: map1 explains x1 (n_maps = 1). The explained scalar is
g_x(x̃) = ⟨f(x1), f(x̃)⟩ (dot product, f(x1) fixed), attributed at x̃ = x1 by Captum's
IntegratedGradients (``lffi_ig``) or GradientShap (``lffi_gradshap``) in model-input space, where the
baseline "zero" is the model-input zero (the mean colour for normalised encoders; the project's and
lfxai's default) and "black" is pixel 0. IG completeness: Σ attr = ‖f(x)‖² − ⟨f(x), f(baseline)⟩.
Map = Σ_c |attr| (the project's visualisation), [B, H, W]. GradientShap's draws (NumPy and torch
global generators inside Captum) are seeded per image and the global generator states restored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.models.encoder import Encoder

BASELINES = ("zero", "black")

ScalarFn = Callable[[torch.Tensor], torch.Tensor]  # model-input images [N, 3, H, W] -> scalars [N]


@contextlib.contextmanager
def seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's and NumPy's global generators (Captum draws from them) and restore them afterwards."""
    np_state = np.random.get_state()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            np.random.set_state(np_state)


def model_input_baseline(encoder: Encoder, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Baseline [1, 3, H, W] in model-input space: "zero" (model-input zero) or "black" (pixel 0, normalised)."""
    if kind == "zero":
        return torch.zeros_like(x[:1])
    if kind == "black":
        return encoder.normalise(torch.zeros_like(x[:1])).to(x.dtype)
    raise ValueError(f"unknown baseline {kind!r}; accepted: {list(BASELINES)}")


def captum_attribution(
    scalar: ScalarFn, xn: torch.Tensor, baseline: torch.Tensor, algorithm: str, params: dict[str, Any], batch_size: int, seed: int
) -> torch.Tensor:
    """Attribution [1, 3, H, W] of ``scalar`` at one model-input image xn [1, 3, H, W] by Captum IG or GradientShap."""
    from captum.attr import GradientShap, IntegratedGradients  # imported here: ~1 s that other methods' jobs skip

    with torch.enable_grad():
        if algorithm == "ig":
            ig = IntegratedGradients(scalar)
            n_steps = int(params["n_steps"])
            return ig.attribute(xn, baselines=baseline, n_steps=n_steps, method=params["ig_method"], internal_batch_size=max(batch_size, 1))
        if algorithm == "gradshap":
            with seeded_global_rng(seed, xn.device):
                gs = GradientShap(scalar)
                return gs.attribute(xn, baselines=baseline, n_samples=int(params["n_samples"]), stdevs=float(params["stdevs"]))
    raise ValueError(f"unknown attribution algorithm {algorithm!r}")


def embed_model_input(encoder: Encoder, xn: torch.Tensor) -> torch.Tensor:
    """Embedding [N, D] of images already in model-input space [N, 3, H, W]."""
    return encoder.embed_features(encoder.trunk(xn))


def lffi_scalar(encoder: Encoder, z: torch.Tensor) -> ScalarFn:
    """g(x̃) = ⟨z, f(x̃)⟩ for model-input images x̃ [N, 3, H, W]; z [D] fixed."""
    return lambda xn: embed_model_input(encoder, xn) @ z


def lffi(encoder: Encoder, x1: torch.Tensor, params: dict[str, Any], ctx: MethodContext, algorithm: str) -> torch.Tensor:
    """Σ_c |attr| [B, H, W] of ⟨f(x1), f(·)⟩ at x1, one image at a time (Captum batches steps / samples)."""
    with torch.inference_mode():
        z = encoder(x1)  # [B, D]
    z = z.clone()
    out = []
    for b in range(x1.shape[0]):
        xn = encoder.normalise(x1[b : b + 1]).to(x1.dtype)  # [1, 3, H, W]
        base = model_input_baseline(encoder, xn, params["baseline"])
        seed = ctx.seeds[b] if ctx.seeds else 0
        attr = captum_attribution(lffi_scalar(encoder, z[b]), xn, base, algorithm, params, ctx.batch_size, seed)
        out.append(attr[0].abs().sum(0))  # [H, W]
    return torch.stack(out).detach()


@register_method(
    "lffi_ig", pair_family="crop_aug", family="gradient", defaults={"n_steps": 50, "ig_method": "gausslegendre", "baseline": "zero"}, n_maps=1,
    cost="1 + n_steps forwards and n_steps backwards per image", passes=lambda p, size: Passes(1 + int(p["n_steps"]), int(p["n_steps"])),
)
def lffi_ig(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, None]:
    """LFFI with Integrated Gradients: Σ_c |IG_c| of ⟨f(x1), f(·)⟩ at x1; [B, H, W]."""
    return lffi(encoder, x1, params, ctx, "ig"), None


@register_method(
    "lffi_gradshap", pair_family="crop_aug", family="gradient", defaults={"n_samples": 5, "stdevs": 0.0, "baseline": "zero"}, n_maps=1,
    cost="1 + n_samples forwards and n_samples backwards per image", passes=lambda p, size: Passes(1 + int(p["n_samples"]), int(p["n_samples"])),
)
def lffi_gradshap(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, None]:
    """LFFI with GradientShap: Σ_c |GS_c| of ⟨f(x1), f(·)⟩ at x1 (seeded per image); [B, H, W]."""
    return lffi(encoder, x1, params, ctx, "gradshap"), None
