"""The batching engine: runs a method over many pairs a chunk at a time, with the per-image seed rule.

Everything that calls a method on stored pairs goes through here: the attribution stage, feature
visualisation, the metrics that re-run a method (max-sensitivity, randomisation) and the scoring loop.

* **Seeds**: image ``i`` of a run with config seed ``s`` explained by the method configured as ``key`` gets
  ``image_seed(s, i, key)``; a method's random draws derive from it (and only from it), so maps do not
  depend on sharding, chunking or the order of images.
* **Chunks**: at most ``CHUNK`` images per method call (``chunk_size``); a method embeds its perturbations
  in batches of ``batch_size`` inside a call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from xai_ssl.seeding import derive_seed

if TYPE_CHECKING:  # types only: the engine imports no method or metric module
    from xai_ssl.io.pairs_file import Pairs
    from xai_ssl.models.encoder import Encoder


class MethodSpec(Protocol):
    """What the engine needs of a registered method (``methods.base.MethodSpec``): its name, pair family and function."""

    name: str
    pair_family: str
    fn: Callable[..., tuple[torch.Tensor, torch.Tensor | None]]

CHUNK = 16  # images per method call


def image_seed(seed: int, image_id: str, key: str, *extra: object) -> int:
    """The seed of image ``image_id`` explained by the method configured as ``key`` (``extra``: a sub-purpose)."""
    return derive_seed(seed, image_id, key, *extra)


def chunk_size(batch_size: int) -> int:
    """Images per method call: ``batch_size``, at most ``CHUNK``."""
    return max(1, min(int(batch_size), CHUNK))


def chunk_slices(n: int, chunk: int) -> Iterator[slice]:
    """Consecutive slices of at most ``chunk`` of ``range(n)``."""
    for start in range(0, n, max(1, chunk)):
        yield slice(start, min(n, start + chunk))


@dataclass
class MethodContext:
    """What a method needs besides the model and images: device, batch size, per-image seeds."""

    device: torch.device
    batch_size: int = 32
    seeds: list[int] = field(default_factory=list)  # one per image of the batch
    progress: bool = False
    image_ids: list[str] = field(default_factory=list)  # ids of the batch's images (corpus methods exclude them)
    corpus: Any = None  # xai_ssl.methods.corpus.Corpus (reference images) for methods registered with needs_corpus
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # per-image arrays [B, ...] a method stores beside its maps (vit_attention: heads [B, heads, h, w])


def sub_context(ctx: MethodContext, seeds: list[int], image_ids: list[str]) -> MethodContext:
    """A MethodContext for re-running a method inside a metric: same device, batch size and corpus; new seeds."""
    return MethodContext(device=ctx.device, batch_size=ctx.batch_size, seeds=seeds, progress=False, image_ids=list(image_ids), corpus=ctx.corpus)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of [B, D] embeddings (eps 1e-8, as torch.nn.CosineSimilarity)."""
    return torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-8)


def embed_batched(encoder: Encoder, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Embeddings [N, D] of images [N, 3, H, W], ``batch_size`` at a time, without gradients."""
    with torch.inference_mode():
        return torch.cat([encoder(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def explain_batches(
    encoder: Encoder,
    spec: MethodSpec,
    a: torch.Tensor,
    b: torch.Tensor,
    params: dict[str, Any],
    seeds: Sequence[int],
    image_ids: Sequence[str],
    device: torch.device,
    batch_size: int,
    corpus: Any = None,
    chunk: int | None = None,
    to_cpu: bool = True,
    progress: bool = False,
    desc: str = "",
    extras: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``spec.fn`` on the pairs (a[i], b[i]) [N, 3, H, W] with seed ``seeds[i]``, ``chunk`` pairs per call.

    Returns (map1, map2) [N, h, w] (map2 None for single-map methods), detached, as float on the CPU
    (or left on the device with ``to_cpu=False``). ``extras``, when given, receives the per-image arrays the
    method put in ``ctx.extras`` [N, ...], concatenated in image order (as float, like the maps).
    """
    maps1, maps2 = [], []
    found: dict[str, list[torch.Tensor]] = {}
    step = chunk or chunk_size(batch_size)
    for sl in tqdm(list(chunk_slices(a.shape[0], step)), desc=desc or spec.name, unit="chunk", disable=not progress):
        ctx = MethodContext(device=device, batch_size=batch_size, seeds=list(seeds[sl]), image_ids=list(image_ids[sl]), corpus=corpus)
        m1, m2 = spec.fn(encoder, a[sl].to(device), b[sl].to(device), params, ctx)
        maps1.append(m1.detach().float().cpu() if to_cpu else m1.detach())
        if m2 is not None:
            maps2.append(m2.detach().float().cpu() if to_cpu else m2.detach())
        for name, value in ctx.extras.items():
            found.setdefault(name, []).append(value.detach().float().cpu() if to_cpu else value.detach())
    if extras is not None:
        extras.update({name: torch.cat(parts) for name, parts in found.items()})
    return torch.cat(maps1), (torch.cat(maps2) if maps2 else None)


def explain_pairs(
    encoder: Encoder,
    pairs: Pairs,
    spec: MethodSpec,
    params: dict[str, Any],
    seed: int,
    device: torch.device,
    batch_size: int,
    key: str | None = None,
    progress: bool = True,
    corpus: Any = None,
    chunk: int | None = None,
    extras: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run a method on every stored pair of its family; maps on the CPU [N, h, w] (image methods: images).

    ``key`` is the method's config name (the seed rule's key; default its registry name); ``corpus`` the
    reference images of methods registered with ``needs_corpus``; ``extras`` receives the method's extra
    arrays (see :func:`explain_batches`).
    """
    a, b = pairs.pair(spec.pair_family)
    key = key or spec.name
    seeds = [image_seed(seed, i, key) for i in pairs.image_ids]
    return explain_batches(encoder, spec, a, b, params, seeds, pairs.image_ids, device, batch_size, corpus, chunk, True, progress, f"attribution {key}", extras)


def map_diagnostics(map1: torch.Tensor, map2: torch.Tensor | None) -> dict[str, np.ndarray]:
    """Per-image flags [N] of maps [N, h, w]: ``nonfinite`` (NaN/inf), ``constant`` (min = max), ``ties`` (repeated values)."""
    maps = [map1] if map2 is None else [map1, map2]
    flat = [m.detach().flatten(1).cpu() for m in maps]  # [N, h*w] each
    nonfinite = np.any([(~torch.isfinite(f)).any(1).numpy() for f in flat], axis=0)
    finite = [torch.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0) for f in flat]
    constant = np.any([(f.amax(1) <= f.amin(1)).numpy() for f in finite], axis=0)
    ties = np.any([np.array([len(torch.unique(r)) < r.numel() for r in f], dtype=bool) for f in finite], axis=0)
    return {"nonfinite": nonfinite, "constant": constant, "ties": ties}
