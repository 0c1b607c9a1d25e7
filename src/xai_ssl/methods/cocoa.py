"""COCOA, contrastive corpus attribution (Lin, Chen, Kim & Lee, ICLR 2023; survey spec §5).

Single-image method on the crop_aug pair: map1 explains x1 (n_maps = 1). Target (spec §5.1, "mean"
form, normalize=True): γ(x) = mean_{c∈C} cos(f(x), f(c)) − mean_{a∈F} cos(f(x), f(a))
= ⟨f(x)/‖f(x)‖, c̄ − ā⟩, c̄ and ā the means of the unit embeddings of corpus C and foil F, embedded
once per job and encoder (cached on ``ctx.corpus``). Corpus = the loaded reference images (training
split centre views, ``corpus_size`` of them) minus the explicand: "mixed" (all) or "same_class" (those
with the explicand's label). Foil = "noise" (``foil_size`` seeded uniform byte-noise images, the
survey's setting) or "other_class" (the loaded images of other labels). γ is attributed with RISE
(our batched version: masks seeded per image, one shift per mask unless ``shared_shift``, the
reference code's per-call shift), Captum IntegratedGradients or GradientShap in model-input space.
Baseline "zero" = model-input zero (the project's, the mean colour), "black" = pixel 0 (the
"corrected" mode). Maps [B, H, W]: RISE Σ_n γ(x_n) m_n / (N p); IG/GS the signed channel mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from xai_ssl.engine import embed_batched
from xai_ssl.methods.base import MethodContext, Passes, register_method
from xai_ssl.methods.corpus import Corpus
from xai_ssl.methods.label_free import captum_attribution, embed_model_input, model_input_baseline
from xai_ssl.models.encoder import Encoder
from xai_ssl.seeding import generator

CORPUS_MODES = ("mixed", "same_class")
FOIL_MODES = ("noise", "other_class")
COMMON = {"corpus_size": 350, "corpus": "mixed", "foil": "noise", "foil_size": 350, "baseline": "zero"}


def cocoa_passes(per_image: str, backward: bool) -> Callable[[dict[str, Any], int], Passes]:
    """Passes of a COCOA variant: ``params[per_image]`` per image; the corpus and the noise foil once per job."""

    def passes(params: dict[str, Any], size: int) -> Passes:
        n = int(params[per_image])
        setup = int(params["corpus_size"]) + (int(params["foil_size"]) if params["foil"] == "noise" else 0)
        return Passes(n, n if backward else 0, setup)

    return passes


def unit_embeddings(encoder: Encoder, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """f(x)/‖f(x)‖ [N, D] (norm clamped at 1e-8), without gradients."""
    return F.normalize(embed_batched(encoder, x, batch_size), dim=-1, eps=1e-8)


def noise_foil(seed: int, n: int, size: int) -> torch.Tensor:
    """``n`` uniform byte-noise images [n, 3, size, size] in [0, 1], drawn from the config seed."""
    return torch.randint(0, 256, (n, 3, size, size), generator=generator(seed, "cocoa-foil-noise")).float() / 255


def reference_units(encoder: Encoder, corpus: Corpus, params: dict[str, Any], like: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Unit embeddings of the corpus images [R, D] and of the noise foil [F, D] (None for "other_class"), cached per encoder."""
    dev, dt, size = like.device, like.dtype, like.shape[-1]
    units = F.normalize(corpus.embeddings(encoder, dev, dt, batch_size), dim=-1, eps=1e-8)  # [R, D]
    foil = None
    if params["foil"] == "noise":
        n = int(params["foil_size"])
        foil = corpus.cached(encoder, ("cocoa-noise", n, size, str(dev), dt), lambda: unit_embeddings(encoder, noise_foil(corpus.seed, n, size).to(dev, dt), batch_size))
    return units, foil


def contrast_direction(corpus: Corpus, units: torch.Tensor, foil: torch.Tensor | None, params: dict[str, Any], image_id: str | None) -> torch.Tensor:
    """c̄ − ā [D] for one explicand: means of the unit embeddings of its corpus and its foil."""
    if params["corpus"] not in CORPUS_MODES or params["foil"] not in FOIL_MODES:
        raise ValueError(f"cocoa: corpus must be one of {CORPUS_MODES} and foil one of {FOIL_MODES}")
    label = corpus.labels_by_id.get(image_id) if image_id is not None else None
    keep_c = corpus.keep(image_id, label, True if params["corpus"] == "same_class" else None)
    if not bool(keep_c.any()):
        raise ValueError(f"cocoa: empty corpus for image {image_id!r}")
    c_bar = units[keep_c.to(units.device)].mean(0)
    if foil is None:
        idx = torch.nonzero(corpus.keep(image_id, label, False)).flatten()[: int(params["foil_size"])]
        if idx.numel() == 0:
            raise ValueError(f"cocoa: empty other-class foil for image {image_id!r}")
        foil = units[idx.to(units.device)]
    return c_bar - foil.mean(0)


def gamma(encoder: Encoder, x: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """γ [N] of images x [N, 3, H, W] in [0, 1] for one direction c̄ − ā [D]."""
    return F.normalize(encoder(x), dim=-1, eps=1e-8) @ direction


def directions(encoder: Encoder, x: torch.Tensor, params: dict[str, Any], ctx: MethodContext) -> torch.Tensor:
    """c̄ − ā for every image of the batch; [B, D]."""
    if ctx.corpus is None:
        raise ValueError("cocoa: needs reference images (ctx.corpus); the workflow loads them from the dataset index")
    units, foil = reference_units(encoder, ctx.corpus, params, x, ctx.batch_size)
    ids = ctx.image_ids or [None] * x.shape[0]
    return torch.stack([contrast_direction(ctx.corpus, units, foil, params, ids[b]) for b in range(x.shape[0])]).clone()


def rise_masks(grids: torch.Tensor, shifts: torch.Tensor, size: int, cell: int) -> torch.Tensor:
    """RISE masks [n, 1, size, size]: grid up-sampled bilinearly to (G+1)·cell, cropped at the shifts [n, 2]."""
    big = (grids.shape[-1] + 1) * cell
    up = F.interpolate(grids, size=(big, big), mode="bilinear", align_corners=False)  # [n, 1, big, big]
    return torch.stack([up[i, :, int(dy) : int(dy) + size, int(dx) : int(dx) + size] for i, (dy, dx) in enumerate(shifts.tolist())])


def draw_rise(n: int, cells: int, p: float, cell: int, shared_shift: bool, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep-grids [n, 1, G, G] (P(keep) = p) and shifts [n, 2] in [0, cell), drawn on the CPU."""
    grids = (torch.rand(n, 1, cells, cells, generator=gen) < p).float()
    shifts = torch.randint(0, cell, (1 if shared_shift else n, 2), generator=gen).expand(n, 2)
    return grids, shifts


def rise_map(
    encoder: Encoder, x: torch.Tensor, direction: torch.Tensor, fill: torch.Tensor, grids: torch.Tensor, shifts: torch.Tensor, p: float, batch_size: int
) -> torch.Tensor:
    """Σ_n γ(x ⊙ m_n + fill ⊙ (1 − m_n)) m_n / (N p) for one image x [3, S, S]; [S, S]."""
    size = x.shape[-1]
    cell = math.ceil(size / grids.shape[-1])
    acc = torch.zeros(size, size, dtype=torch.float64, device=x.device)
    for i in range(0, grids.shape[0], batch_size):
        m = rise_masks(grids[i : i + batch_size].to(x.device, x.dtype), shifts[i : i + batch_size], size, cell)  # [b, 1, S, S]
        g = gamma(encoder, fill + m * (x - fill), direction).double()  # [b]
        acc += torch.einsum("b,bhw->hw", g, m[:, 0].double())
    return acc / (grids.shape[0] * p)


def pixel_fill(encoder: Encoder, x: torch.Tensor, kind: str) -> torch.Tensor:
    """The baseline in pixel space [3, 1, 1]: the model-input zero ("zero") or black ("black")."""
    if kind == "zero":
        return encoder.baseline_pixel[0].to(x.dtype)
    if kind == "black":
        return torch.zeros(3, 1, 1, dtype=x.dtype, device=x.device)
    raise ValueError(f"cocoa: unknown baseline {kind!r}")


@register_method(
    "cocoa_rise", pair_family="crop_aug", family="perturbation", defaults={**COMMON, "num_cells": 8, "p": 0.5, "n_masks": 3000, "shared_shift": False}, n_maps=1,
    cost="n_masks forwards per image, no backward; once per job: corpus_size (+ foil_size) forwards", needs_corpus=True,
    passes=cocoa_passes("n_masks", backward=False),
)
def cocoa_rise(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, None]:
    """COCOA target γ explained with RISE; [B, H, W], masks seeded per image."""
    cells, p, n = int(params["num_cells"]), float(params["p"]), int(params["n_masks"])
    cell = math.ceil(x1.shape[-1] / cells)
    out = []
    with torch.inference_mode():
        dirs = directions(encoder, x1, params, ctx)  # [B, D]
        fill = pixel_fill(encoder, x1, params["baseline"])
        for b in range(x1.shape[0]):
            grids, shifts = draw_rise(n, cells, p, cell, bool(params["shared_shift"]), torch.Generator().manual_seed(ctx.seeds[b]))
            out.append(rise_map(encoder, x1[b], dirs[b], fill, grids, shifts, p, ctx.batch_size).to(x1.dtype))
    return torch.stack(out), None


def cocoa_captum(encoder: Encoder, x1: torch.Tensor, params: dict[str, Any], ctx: MethodContext, algorithm: str) -> torch.Tensor:
    """Signed channel mean [B, H, W] of Captum IG / GradientShap of γ at x1 (model-input space)."""
    dirs = directions(encoder, x1, params, ctx)  # [B, D]
    out = []
    for b in range(x1.shape[0]):
        xn = encoder.normalise(x1[b : b + 1]).to(x1.dtype)  # [1, 3, H, W]
        base = model_input_baseline(encoder, xn, params["baseline"])
        d = dirs[b]
        scalar = lambda zn, d=d: F.normalize(embed_model_input(encoder, zn), dim=-1, eps=1e-8) @ d  # noqa: E731
        attr = captum_attribution(scalar, xn, base, algorithm, params, ctx.batch_size, ctx.seeds[b] if ctx.seeds else 0)
        out.append(attr[0].mean(0))  # [H, W]
    return torch.stack(out).detach()


@register_method(
    "cocoa_ig", pair_family="crop_aug", family="gradient", defaults={**COMMON, "n_steps": 50, "ig_method": "gausslegendre"}, n_maps=1,
    cost="n_steps forwards + n_steps backwards per image; once per job: corpus_size (+ foil_size) forwards", needs_corpus=True,
    passes=cocoa_passes("n_steps", backward=True),
)
def cocoa_ig(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, None]:
    """COCOA target γ explained with Integrated Gradients; [B, H, W]."""
    return cocoa_captum(encoder, x1, params, ctx, "ig"), None


@register_method(
    "cocoa_gradshap", pair_family="crop_aug", family="gradient", defaults={**COMMON, "n_samples": 50, "stdevs": 0.2}, n_maps=1,
    cost="n_samples forwards + n_samples backwards per image; once per job: corpus_size (+ foil_size) forwards", needs_corpus=True,
    passes=cocoa_passes("n_samples", backward=True),
)
def cocoa_gradshap(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
) -> tuple[torch.Tensor, None]:
    """COCOA target γ explained with GradientShap (seeded per image); [B, H, W]."""
    return cocoa_captum(encoder, x1, params, ctx, "gradshap"), None
