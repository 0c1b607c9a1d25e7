"""Model-parameter randomisation test RAND (sanity check beyond the paper) — Adebayo et al., "Sanity Checks
for Saliency Maps", NeurIPS 2018, cascading randomisation.

Layers, from the top down (``Encoder.cascade_layers``): the encoder's ``head`` first, then the top-level
children of ``encoder.trunk`` from the last to the first (a trunk without children is one layer); for a
Vision Transformer the head, the final norm, the blocks from the last to the first, then the patch
embedding (its position embedding and class token are parameters without an initialiser and stay). Cascade level k
re-initialises the top k layers (levels are cumulative, as in Adebayo et al.): every sub-module with a
``reset_parameters`` method is re-drawn from its default initialiser (weights and biases; batch-norm
affine parameters and running statistics are reset too) under a CPU generator seeded by
``derive_seed(seed, "model_randomisation", layer_name)`` — the same randomised model for every image,
shard and method, independent of the device.

The explained method is re-run on the randomised encoder with the same parameters and the same
per-image seeds as the attribution step, and each map is compared with the stored map of the trained
encoder by the Spearman rank correlation of the raw maps at native resolution (average ranks for
ties; signed values, since the faithfulness metrics rank signed values). Per image and level:
``RAND_L<k>`` = mean over the maps (two for two-map methods). **RAND = the correlation at the deepest
configured level** (the most randomised model). A method that depends on the model gives a LOW
correlation, so RAND is reported ↓. With zero levels the "randomised" model is the trained one and
RAND = 1 (a self-check of the comparison).

Edge cases: a constant trained map has no ranking (NA); a constant randomised map shares no ranking
with the trained one (correlation 0). ``max_images`` scores only the images whose row in the pairs
file is below it (shard-independent; the rest are NA), and ``methods_without_rand`` lists methods
(registry or config names) that are skipped (NA) — the test costs ``cascade_levels`` full
re-computations of the method per image, which for occlusion is 2·K² forwards each.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from xai_ssl.engine import MethodContext, explain_batches
from xai_ssl.metrics.base import MetricResult, register_metric, require_method
from xai_ssl.models.encoder import Encoder
from xai_ssl.seeding import derive_seed

log = logging.getLogger(__name__)


def _check(params: dict[str, Any], size: int) -> dict[str, Any]:
    out = dict(params)
    if out["cascade_levels"] is not None and int(out["cascade_levels"]) < 0:
        raise ValueError(f"model_randomisation: cascade_levels must be >= 0 or null (all layers), got {out['cascade_levels']!r}")
    if out["max_images"] is not None and int(out["max_images"]) < 1:
        raise ValueError(f"model_randomisation: max_images must be >= 1 or null (all images), got {out['max_images']!r}")
    out["methods_without_rand"] = list(out["methods_without_rand"] or [])
    return out




def randomisation_layers(encoder: Encoder) -> list[tuple[str, nn.Module]]:
    """(name, module) from the top down (``Encoder.cascade_layers``): for CNN trunks the head, then the trunk's
    top-level children from last to first; for Vision Transformers the head, the final norm, then the blocks
    from last to first and the patch embedding."""
    return encoder.cascade_layers()


def reinitialise(module: nn.Module, seed: int) -> None:
    """Re-draw every ``reset_parameters`` sub-module of ``module`` in place, on the CPU under ``seed``."""
    cpu = copy.deepcopy(module).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for sub in cpu.modules():
            reset = getattr(sub, "reset_parameters", None)
            if callable(reset):
                reset()
    module.load_state_dict(cpu.state_dict())


def randomised_encoder(encoder: Encoder, levels: int, seed: int) -> Encoder:
    """A copy of ``encoder`` with its top ``levels`` layers re-initialised (cascading); eval mode."""
    out = copy.deepcopy(encoder)
    for name, layer in randomisation_layers(out)[:levels]:
        reinitialise(layer, derive_seed(seed, "model_randomisation", name))
    return out.eval()


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array, tied values sharing their average rank (as ``scipy.stats.rankdata``)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], x.size]
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two maps (flattened; average ranks for ties).

    NA if ``a`` (the reference) is constant; 0 if only ``b`` is constant.
    """
    x = a.detach().double().flatten().cpu().numpy()
    y = b.detach().double().flatten().cpu().numpy()
    if x.size != y.size:
        raise ValueError(f"spearman: maps of different sizes {tuple(a.shape)} and {tuple(b.shape)}")
    if np.ptp(x) == 0:
        return float("nan")
    if np.ptp(y) == 0:
        return 0.0
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float(np.clip((rx @ ry) / np.sqrt((rx @ rx) * (ry @ ry)), -1.0, 1.0))


def _levels(encoder: Encoder, params: dict[str, Any]) -> int:
    n_layers = len(randomisation_layers(encoder))
    wanted = params["cascade_levels"]
    if wanted is None:
        return n_layers
    if int(wanted) > n_layers:
        log.warning("model_randomisation: cascade_levels %s > %d layers of the encoder; using %d", wanted, n_layers, n_layers)
    return min(int(wanted), n_layers)


@register_metric(
    "model_randomisation", defaults={"cascade_levels": None, "max_images": None, "methods_without_rand": []}, directions={"RAND": "↓"}, scale=_check
)
def model_randomisation(
    encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, map1: torch.Tensor, map2: torch.Tensor | None, params: dict[str, Any], ctx: MethodContext
) -> MetricResult:
    """Per-image RAND (final level) and RAND_L1..RAND_L<k> (Spearman of trained vs randomised maps)."""
    mctx = require_method(ctx, "model_randomisation")
    n, levels = x1.shape[0], _levels(encoder, params)
    level_list = list(range(1, levels + 1)) or [0]
    cols = {f"RAND_L{k}": np.full(n, np.nan) for k in level_list if k > 0}
    cols["RAND"] = np.full(n, np.nan)
    if {mctx.method.name, mctx.method_key} & set(params["methods_without_rand"]):
        return cols, {}
    limit = params["max_images"]
    chosen = [b for b in range(n) if limit is None or int(mctx.indices[b]) < int(limit)]
    if not chosen:
        return cols, {}
    sel = torch.tensor(chosen, device=x1.device)
    seeds = [mctx.attribution_seed(b) for b in chosen]
    refs = [map1] + ([map2] if map2 is not None else [])
    for k in level_list:
        key = ("model_randomisation", id(encoder), k, mctx.seed)
        if key not in mctx.cache:
            mctx.cache[key] = randomised_encoder(encoder, k, mctx.seed)
        rand_enc = mctx.cache[key]
        new = explain_batches(
            rand_enc, mctx.method, x1[sel], x2[sel], mctx.method_params, seeds, [mctx.image_ids[b] for b in chosen], mctx.device, mctx.batch_size,
            corpus=mctx.corpus, chunk=len(chosen), to_cpu=False,
        )
        for j, b in enumerate(chosen):
            r = float(np.mean([spearman(ref[b], m[j]) for ref, m in zip(refs, new)]))
            if k > 0:
                cols[f"RAND_L{k}"][b] = r
            cols["RAND"][b] = r  # the last (deepest) level wins
    return cols, {}
