"""Stage ``attribution`` (rules/attribution.smk): a method's maps per shard, and the images of image methods."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from xai_ssl.data.corpus import corpus_for
from xai_ssl.engine import explain_pairs, map_diagnostics
from xai_ssl.io.maps_file import DreamedImages, save_attributions, save_dreamed
from xai_ssl.io.pairs_file import read_pairs
from xai_ssl.methods import MethodSpec, get_method
from xai_ssl.methods.feature_visualisation import resolve_runtime
from xai_ssl.models.encoder import Encoder
from xai_ssl.provenance import config_hash
from xai_ssl.stages.inference import job_provenance, load_for_inference, resolve_batch_size
from xai_ssl.stages.job import log_diagnostics

log = logging.getLogger(__name__)


def job_settings(spec: MethodSpec, method_params: dict[str, Any], net: Encoder, size: int, batch_size: int | str, device: torch.device) -> tuple[int, dict[str, Any]]:
    """The batch size (``auto`` resolved by timing) and the method's parameters resolved for ``size`` px."""
    return resolve_batch_size(batch_size, net, size, device), spec.resolve_params(method_params, size)


def compute_attributions(
    pairs: str,
    encoder: str,
    maps: str,
    registry_method: str,
    method_params: dict[str, Any],
    n_shards: int,
    seed: int,
    device: str,
    batch_size: int | str,
    dataset: str,
    model: str,
    method: str,
    shard: str | int,
    index: str | None = None,
    speed: dict[str, Any] | None = None,
    torch_threads: int | None = None,
    progress: bool = True,
) -> None:
    """Compute the maps of method ``method`` (config name; ``registry_method`` in the registry) for one shard.

    Methods registered with ``needs_corpus`` get reference images from the dataset index ``index``.
    """
    spec = get_method(registry_method)
    net, torch_device, model_hash = load_for_inference(encoder, device, speed, torch_threads)
    data = read_pairs(pairs, shard=(int(shard), int(n_shards)))
    if not data.image_ids:  # the config check counts images before the run; skipped unreadable ones can make fewer
        from xai_ssl.io.pairs_file import count_pairs

        raise ValueError(f"config key 'datasets.{dataset}.n_shards': shard {shard} of {n_shards} is empty: {pairs} holds {count_pairs(pairs)} images; set n_shards <= {count_pairs(pairs)}")
    batch, resolved = job_settings(spec, method_params, net, data.x1.shape[-1], batch_size, torch_device)
    corpus = corpus_for(spec.needs_corpus, resolved, index, data.attrs, seed)
    extras: dict[str, torch.Tensor] = {}  # per-image arrays the method adds beside its maps (vit_attention: heads)
    t0 = time.perf_counter()
    map1, map2 = explain_pairs(net, data, spec, resolved, seed, torch_device, batch, method, progress, corpus=corpus, extras=extras)
    wall = time.perf_counter() - t0
    flags = map_diagnostics(map1, map2)
    diagnostics = {"nonfinite_maps": int(flags["nonfinite"].sum()), "constant_maps": int(flags["constant"].sum()), "maps_with_ties": int(flags["ties"].sum())}
    log_diagnostics(method, diagnostics)
    attrs = {
        "method": method,
        "registry_method": registry_method,
        "diagnostics": diagnostics,
        "config_hash": config_hash({"method": method, "registry_method": registry_method, "params": resolved, "seed": seed, "pairs": data.attrs, "model": model_hash}),
        "pair_family": spec.pair_family,
        "params": resolved,
        "seed": seed,
        "shard": int(shard),
        "n_shards": int(n_shards),
        "wall_time_s": wall,
        "batch_size": batch,
        "params_hash": config_hash(resolved),
        **job_provenance(torch_device, torch_threads, dataset=dataset, model=model),
    }
    save_attributions(maps, data.image_ids, data.indices, map1, map2, attrs, extras=extras)
    log.info("%s: %d images in %.2f s (%.3f s/image); map shape %s", method, len(data.image_ids), wall, wall / max(1, len(data.image_ids)), tuple(map1.shape[1:]))


def feature_visualisation(
    pairs: str,
    encoder: str,
    images: str,
    registry_method: str,
    method_params: dict[str, Any],
    seed: int,
    device: str,
    batch_size: int | str,
    dataset: str,
    model: str,
    method: str,
    speed: dict[str, Any] | None = None,
    torch_threads: int | None = None,
    progress: bool = True,
) -> None:
    """Run an image method (``kind='image'``, feature visualisation) on every pair; dreamed images and details (HDF5)."""
    spec = get_method(registry_method)
    if spec.kind != "image":
        raise ValueError(f"method {registry_method!r} is a {spec.kind!r} method, not an image method")
    net, torch_device, _ = load_for_inference(encoder, device, speed, torch_threads)
    data = read_pairs(pairs)
    batch, resolved = job_settings(spec, method_params, net, data.x1.shape[-1], batch_size, torch_device)
    t0 = time.perf_counter()
    image, detail = explain_pairs(net, data, spec, resolved, seed, torch_device, batch, method, progress, chunk=max(1, batch))
    wall = time.perf_counter() - t0
    attrs = {
        "method": method,
        "registry_method": registry_method,
        "kind": spec.kind,
        "pair_family": spec.pair_family,
        "params": resolved,
        "runtime_params": resolve_runtime(net, resolved),
        "seed": seed,
        "wall_time_s": wall,
        "batch_size": batch,
        "params_hash": config_hash(resolved),
        **job_provenance(torch_device, torch_threads, dataset=dataset, model=model),
    }
    save_dreamed(images, DreamedImages(list(data.image_ids), data.indices, image, detail, attrs))
    log.info("%s: %d images in %.2f s (%.3f s/image)", method, image.shape[0], wall, wall / max(1, image.shape[0]))
