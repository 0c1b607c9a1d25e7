"""One function per workflow step; the Snakemake scripts only unpack ``snakemake.*`` and call these."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torchvision.transforms.v2.functional as TF

from xai_ssl.attribution import compute_attributions, load_attributions, save_attributions
from xai_ssl.corpus import corpus_for
from xai_ssl.data.image_folder import read_image_folder
from xai_ssl.data.imagenet import prepare_imagenet_val
from xai_ssl.data.index import read_index, screen_records, select_records, skipped_report_path, write_index, write_skipped
from xai_ssl.data.io import load_rgb
from xai_ssl.data.records import DataError, ImageRecord
from xai_ssl.data.synthetic_two4two import generate_two4two
from xai_ssl.data.two4two import read_two4two_split
from xai_ssl.data.two4two_archive import extract_two4two_archive, find_two4two_splits
from xai_ssl.device import choose_batch_size, resolve_device
from xai_ssl.evaluation import map_diagnostics, save_scores, score_attributions
from xai_ssl.methods import get_method
from xai_ssl.metrics import PAPER_ORDER, get_metric
from xai_ssl.models.checkpoints import CheckpointError
from xai_ssl.models.download import ChecksumError, manual_hint, normalise_digest, sha256_file, verify_file, write_record
from xai_ssl.models.registry import PRETRAINED_SOURCES, build_architecture, load_encoder, load_pretrained, save_encoder
from xai_ssl.models.encoder import Encoder
from xai_ssl.models.simclr_training import SimCLRParams, train_simclr
from xai_ssl.models.simclrv2 import convert_tf_checkpoint
from xai_ssl.pairs import count_pairs, read_pairs, shard_range, write_pairs
from xai_ssl.provenance import code_fingerprint, config_hash, environment
from xai_ssl.reference import write_comparison
from xai_ssl.seeding import generator
from xai_ssl.seeding import derive_seed
from xai_ssl.tables import diagnostic_counts, na_counts, read_per_image, read_shard_attrs, summary_table, table_provenance, write_tables

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


def generate_dataset(out_dir: Path, generate: dict[str, int], seed: int, progress: bool = True) -> None:
    """Write a synthetic Two4Two-format dataset (train/validation/test) into ``out_dir``."""
    sizes = {s: int(generate[s]) for s in SPLITS if int(generate.get(s, 0)) > 0}
    t0 = time.perf_counter()
    generate_two4two(Path(out_dir), sizes, seed=seed, resolution=int(generate.get("resolution", 128)), progress=progress)
    log.info("generated %s in %.1f s", sizes, time.perf_counter() - t0)


def index_dataset(source: str, root: Path, out_csv: Path, on_bad_image: str = "stop", skipped_csv: Path | None = None) -> list[ImageRecord]:
    """List a dataset's readable images (all splits) into the index CSV.

    Every image is decoded once: with ``on_bad_image='stop'`` the first unreadable one fails the job
    (file and reason); with ``'skip'`` it is left out, logged, and listed with its reason in
    ``skipped_csv`` (default: ``index.skipped.csv`` next to the index; header only when none).
    """
    root = Path(root)
    if source in ("synthetic_two4two", "two4two", "two4two_archive"):
        if source == "two4two_archive":  # extracted archive: split folders at any depth
            splits = find_two4two_splits(root) if root.is_dir() else []
        else:
            splits = sorted(p for p in root.iterdir() if (p / "parameters.jsonl").is_file()) if root.is_dir() else []
        if not splits:
            raise FileNotFoundError(f"{root}: no Two4Two split folders (with parameters.jsonl) found")
        records = [r for split in splits for r in read_two4two_split(split, split.name)]
    elif source == "image_folder":
        records = read_image_folder(root)
    else:
        raise ValueError(f"unknown dataset source {source!r}")
    records, bad = screen_records(records, on_bad_image)
    for record, reason in bad:
        log.warning("skipped unreadable image: %s", reason)
    if not records:
        raise DataError(f"{root}: no readable images (all {len(bad)} skipped; see the log)")
    write_skipped(bad, Path(skipped_csv) if skipped_csv is not None else skipped_report_path(out_csv))
    write_index(records, Path(out_csv))
    log.info("indexed %d images from %s; skipped %d unreadable", len(records), root, len(bad))
    return records


def extract_dataset_archive(archive: Path, out_dir: Path, splits: Sequence[str] | None, sha256: str | None = None, url: str | None = None) -> list[Path]:
    """Verify a Two4Two tar (pinned digest, or trusted on first use) and extract its split folders into ``out_dir``."""
    archive = Path(archive)
    if not archive.is_file():
        hint = f"; {manual_hint(url, archive)}" if url else ""
        raise FileNotFoundError(f"{archive}: Two4Two archive not found{hint}")
    t0 = time.perf_counter()
    digest = verify_file(archive, sha256)
    found = extract_two4two_archive(archive, Path(out_dir), splits)
    log.info("%s (sha256 %s): %d split folder(s) in %.1f s: %s", archive, digest, len(found), time.perf_counter() - t0, [p.name for p in found])
    return found


def prepare_imagenet(source_path: Path, out_csv: Path, images_dir: Path, n_images: int | None, pattern: str | None = None) -> list[ImageRecord]:
    """Select the first ``n_images`` ImageNet validation images by file name (folder or tar) and write the index."""
    return prepare_imagenet_val(Path(source_path), Path(out_csv), Path(images_dir), n_images, pattern)


def make_pairs(
    index_csv: Path,
    out_h5: Path,
    split: str | None,
    n_images: int | None,
    image_size: int,
    seed: int,
    crop_scale: Sequence[float] = (0.08, 1.0),
    progress: bool = True,
) -> None:
    """Select the explained images and store their views."""
    records = select_records(read_index(Path(index_csv)), split, n_images)
    if not records:
        raise ValueError(f"{index_csv}: no images in split {split!r}")
    write_pairs(records, Path(out_h5), image_size, seed, progress, {"split": split, "index": str(index_csv)}, tuple(crop_scale))
    log.info("stored views of %d images (%d px)", len(records), image_size)


def load_training_images(records: Sequence[ImageRecord], size: int) -> torch.Tensor:
    """Training images resized to [N, 3, size, size]."""
    return torch.stack([TF.resize(load_rgb(r.path), [size, size], antialias=True) for r in records])


def train_model(
    index_csv: Path, model_cfg: dict[str, Any], seed: int, device_name: str, out_ckpt: Path, out_history: Path, out_figure: Path, progress: bool = True
) -> None:
    """Train an encoder with SimCLR on the configured split; save checkpoint, loss table and loss figure."""
    device = resolve_device(device_name)
    records = select_records(read_index(Path(index_csv)), model_cfg.get("train_split"), None)
    images = load_training_images(records, int(model_cfg["image_size"]))  # [N, 3, S, S]
    with torch.random.fork_rng(devices=[]):  # initial weights depend on the seed only
        torch.manual_seed(derive_seed(seed, "init-weights"))
        encoder = build_architecture(model_cfg["arch"], **model_cfg.get("arch_params", {}))
    tr = dict(model_cfg.get("training", {}))
    if "crop_scale" in tr:
        tr["crop_scale"] = tuple(tr["crop_scale"])
    params = SimCLRParams(**tr)
    log.info("training %s on %d images (%s) on %s with %s", model_cfg["arch"], len(records), model_cfg.get("train_split"), device, params)
    t0 = time.perf_counter()
    history = train_simclr(encoder, images, params, seed, device, progress)
    wall = time.perf_counter() - t0
    save_encoder(encoder, Path(out_ckpt), model_cfg["arch"], model_cfg.get("arch_params", {}),
                 extra={"history": history, "seed": seed, "wall_time_s": wall, "config_hash": config_hash(model_cfg), **environment(device)})
    df = pd.DataFrame(history)
    df.to_csv(out_history, index=False)
    _plots().loss_curve(df, Path(out_figure), title=f"SimCLR training ({len(records)} images, {wall:.0f} s)")
    log.info("trained in %.1f s; final loss %.4f", wall, history[-1]["loss"])


def convert_simclrv2(tf_index: Path, out_ckpt: Path, width: int, ema: bool = True, sha256: str | None = None) -> str:
    """Convert a SimCLRv2 TF checkpoint (``<prefix>.index`` + data) to the PyTorch ``{'resnet', 'head'}`` file; record its digest."""
    tf_index = Path(tf_index)
    t0 = time.perf_counter()
    convert_tf_checkpoint(tf_index.with_suffix(""), Path(out_ckpt), int(width), bool(ema))
    digest = sha256_file(out_ckpt)
    pin = normalise_digest(sha256)
    if pin is not None and digest != pin:
        Path(out_ckpt).unlink()
        raise ChecksumError(f"{out_ckpt}: converted file has sha256 {digest}, differs from the pinned {pin}")
    write_record(Path(out_ckpt), digest)  # the converted file is ours: its record follows each conversion
    log.info("converted %s in %.1f s; sha256 %s", tf_index.with_suffix(""), time.perf_counter() - t0, digest)
    return digest


SMOKE_SIZE = 64  # side of the fixed images embedded once when a model is prepared (recorded in source.json)


def checkpoint_hint(path: Path, source: str, url: str | None) -> str:
    """What to do about a checkpoint file that is corrupt, truncated, of another format or another version."""
    fix = "delete it and rerun to download it again" if url else "replace it with the original file"
    return (f"what to do: the file is truncated, corrupt, or not the {source!r} checkpoint this model entry expects; "
            f"{fix} (and its {path.name}.sha256 record if the new file is meant to differ), or correct the model's 'source'/'sha256'")


def prepare_model(model_cfg: dict[str, Any], checkpoint: Path, out_ckpt: Path, out_info: Path, sha256: str | None = None, url: str | None = None) -> dict[str, Any]:
    """Verify a third-party checkpoint's digest, load it strictly into the common Encoder and save it as ``encoder.pt``.

    The digest is checked against ``sha256`` (pinned) or the record made on first use (``<checkpoint>.sha256``);
    with neither, it is recorded now. ``out_info`` (JSON) records the source, file, digest, licence,
    embedding and a smoke embedding of fixed images (norms and their cosine) for later comparisons.
    """
    source = model_cfg["source"]
    path = Path(checkpoint)
    if not path.is_file():
        hint = f"; {manual_hint(url, path)}" if url else f"; place the {source} checkpoint there, or set the model's 'url' so it is downloaded"
        raise CheckpointError(f"{path} (format {source}): checkpoint file not found{hint}")
    t0 = time.perf_counter()
    try:
        digest = verify_file(path, sha256)
        encoder, arch, arch_params = load_pretrained(source, path, **model_cfg)
    except CheckpointError as exc:  # ChecksumError too: add what to do
        raise type(exc)(f"{exc}; {checkpoint_hint(path, source, url)}") from exc
    x = torch.rand((2, 3, SMOKE_SIZE, SMOKE_SIZE), generator=generator(0, "smoke", "prepare_model"))
    with torch.no_grad():
        a = encoder.features(x)
        z = encoder.embed_features(a)
    if not torch.isfinite(z).all():
        raise CheckpointError(f"{path} (format {source}): the embedding of a test image is not finite")
    spec = PRETRAINED_SOURCES[source]
    facts = dict(getattr(encoder, "source_facts", None) or {})  # timm / python loaders describe the loaded model
    info = {
        "model_source": source,
        "checkpoint": str(path.resolve()),
        "url": url,
        "sha256": digest,
        "sha256_pinned": sha256 is not None,
        "size_bytes": path.stat().st_size,
        "arch": arch,
        "arch_params": arch_params,
        "trunk_channels": int(a.shape[1]),
        "embedding_dim": int(z.shape[1]),
        "embedding": facts.pop("embedding", spec.embedding),
        "normalised": bool(encoder.normalised),
        "licence": facts.pop("licence", spec.licence),
        **facts,
        "smoke": {"image_size": SMOKE_SIZE, "norms": [float(v) for v in z.norm(dim=1)], "cosine": float(torch.nn.functional.cosine_similarity(z[:1], z[1:]).item())},
    }
    save_encoder(encoder, Path(out_ckpt), arch, arch_params, extra={"pretrained": info, "config_hash": config_hash(model_cfg), **environment(torch.device("cpu"))})
    Path(out_info).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(out_info).with_name(Path(out_info).name + ".tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out_info)
    log.info("prepared %s from %s (sha256 %s) in %.1f s: trunk %d channels, embedding %d-d", source, path, digest, time.perf_counter() - t0, info["trunk_channels"], info["embedding_dim"])
    return info


def compare_reference(scores_csv: Path, reference_csv: Path, reference_model: str, out_csv: Path, out_md: Path, title: str) -> pd.DataFrame:
    """Per-cell difference (ours − reference) of a scores table and the reference CSV; CSV + Markdown."""
    long = write_comparison(Path(scores_csv), Path(reference_csv), reference_model, Path(out_csv), Path(out_md), title)
    log.info("compared %d of %d cells with %s", int(long["difference"].notna().sum()), len(long), reference_model)
    return long


def log_diagnostics(method_key: str, diagnostics: dict[str, Any]) -> None:
    """One log line with the bad-number counts of a job (a warning when maps/images were affected)."""
    bad = {k: v for k, v in diagnostics.items() if k in ("nonfinite_maps", "zero_norm_embeddings", "excluded_images", "nonfinite_scores", "nonfinite_curves") and v}
    log.log(logging.WARNING if bad else logging.INFO, "%s: bad numbers %s", method_key, json.dumps(diagnostics, sort_keys=True))


def pairs_provenance(pairs_h5: Path) -> dict[str, Any]:
    """The settings the stored views were made with (attributes of the pairs file)."""
    import h5py

    with h5py.File(pairs_h5, "r") as f:
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in sorted(f.attrs.items())}


def model_hash(model_ckpt: Path) -> str:
    """The config hash stored in an encoder checkpoint (else its file's sha256 prefix)."""
    extra = torch.load(model_ckpt, map_location="cpu", weights_only=True).get("extra", {}) if Path(model_ckpt).is_file() else {}
    return str(extra.get("config_hash") or sha256_file(model_ckpt)[:16])


def _plots() -> Any:
    """The plotting module, imported only by figure steps (matplotlib/seaborn cost ~1.5 s per compute job)."""
    from xai_ssl import plots

    return plots


def load_for_inference(model_ckpt: Path, device: torch.device, speed: dict[str, Any] | None) -> Encoder:
    """Load an encoder and apply the config's speed settings (``channels_last``, ``autocast``)."""
    encoder = load_encoder(Path(model_ckpt), device)
    return encoder.set_speed(**(speed or {}))


def resolve_batch_size(batch_size: int | str, encoder: Encoder, image_size: int, device: torch.device) -> int:
    """``batch_size`` as configured, or with ``auto`` the fastest batch for this encoder and device (timed)."""
    if batch_size != "auto":
        return int(batch_size)
    chosen = choose_batch_size(encoder, image_size, device)
    log.info("batch_size auto: %d is the fastest plain-forward batch on %s", chosen, device)
    return chosen


def attribute(
    pairs_h5: Path,
    model_ckpt: Path,
    out_h5: Path,
    method_key: str,
    registry_name: str,
    params: dict[str, Any],
    seed: int,
    device_name: str,
    batch_size: int,
    shard: int,
    n_shards: int,
    provenance: dict[str, Any] | None = None,
    progress: bool = True,
    speed: dict[str, Any] | None = None,
    index_csv: Path | None = None,
) -> None:
    """Compute one method's maps for one shard of a dataset and store them (HDF5).

    Methods registered with ``needs_corpus`` get reference images from the dataset index ``index_csv``.
    """
    device = resolve_device(device_name)
    spec = get_method(registry_name)
    encoder = load_for_inference(Path(model_ckpt), device, speed)
    pairs = read_pairs(Path(pairs_h5), shard_range(count_pairs(Path(pairs_h5)), shard, n_shards))
    batch_size = resolve_batch_size(batch_size, encoder, pairs.x1.shape[-1], device)
    resolved = spec.resolve_params(params, pairs.x1.shape[-1])
    corpus = corpus_for(spec.needs_corpus, resolved, index_csv, Path(pairs_h5), seed)
    t0 = time.perf_counter()
    extras: dict[str, torch.Tensor] = {}
    map1, map2 = compute_attributions(encoder, pairs, spec, resolved, seed, device, batch_size, method_key, progress, corpus=corpus, extras=extras)
    wall = time.perf_counter() - t0
    flags = map_diagnostics(map1, map2)
    diagnostics = {"nonfinite_maps": int(flags["nonfinite"].sum()), "constant_maps": int(flags["constant"].sum()), "maps_with_ties": int(flags["ties"].sum())}
    log_diagnostics(method_key, diagnostics)
    pairs_attrs = pairs_provenance(Path(pairs_h5))
    attrs = {
        "method": method_key,
        "registry_method": registry_name,
        "diagnostics": diagnostics,
        "config_hash": config_hash({"method": method_key, "registry_method": registry_name, "params": resolved, "seed": seed, "pairs": pairs_attrs, "model": model_hash(Path(model_ckpt))}),
        "pair_family": spec.pair_family,
        "params": resolved,
        "seed": seed,
        "shard": shard,
        "n_shards": n_shards,
        "wall_time_s": wall,
        "batch_size": batch_size,
        "code_version": code_fingerprint("."),
        "params_hash": config_hash(resolved),
        **environment(device),
        **(provenance or {}),
    }
    save_attributions(Path(out_h5), pairs.image_ids, pairs.indices, map1, map2, attrs, extras=extras)
    log.info("%s: %d images in %.2f s (%.3f s/image); map shape %s", method_key, len(pairs.image_ids), wall, wall / max(1, len(pairs.image_ids)), tuple(map1.shape[1:]))


def evaluate(
    pairs_h5: Path,
    model_ckpt: Path,
    attributions_h5: Path,
    metrics: dict[str, dict[str, Any]],
    device_name: str,
    batch_size: int,
    out_csv: Path,
    out_curves: Path,
    provenance: dict[str, Any] | None = None,
    progress: bool = True,
    speed: dict[str, Any] | None = None,
    index_csv: Path | None = None,
) -> None:
    """Score one shard of maps with the configured metrics; per-image CSV and curves HDF5.

    Methods with ``needs_corpus`` re-run by a metric get the same reference images as in the
    attribution step (from the dataset index ``index_csv``).

    The explained method, its resolved parameters, its config name and the seed come from the
    attribution file's attributes (metrics such as max-sensitivity re-run the method with them).
    The resolved parameters of every metric, the method's parameters, each metric's wall time and
    the NA counts per column are written into the curves HDF5 attributes.
    """
    device = resolve_device(device_name)
    encoder = load_for_inference(Path(model_ckpt), device, speed)
    attributions = load_attributions(Path(attributions_h5))
    pairs = read_pairs(Path(pairs_h5), attributions.indices)
    size = pairs.x1.shape[-1]
    batch_size = resolve_batch_size(batch_size, encoder, size, device)
    specs = [(get_metric(name), get_metric(name).resolve_params(p, size)) for name, p in metrics.items()]
    aattrs = attributions.attrs
    method_key = str(aattrs["method"])
    method_spec = get_method(str(aattrs.get("registry_method", method_key)))
    method_params = dict(aattrs.get("params") or {})
    seed = int(aattrs.get("seed", 0))
    corpus = corpus_for(method_spec.needs_corpus, method_params, index_csv, Path(pairs_h5), seed)
    timings: dict[str, float] = {}
    diagnostics: dict[str, Any] = {}
    t0 = time.perf_counter()
    table, curves = score_attributions(
        encoder, pairs, attributions, str(aattrs["pair_family"]), specs, device, batch_size, progress,
        method=method_spec, method_params=method_params, method_key=method_key, seed=seed, timings=timings,
        diagnostics=diagnostics, corpus=corpus,
    )
    wall = time.perf_counter() - t0
    na = {c: int(table[c].isna().sum()) for c in table.columns if c != "image_id"}
    attrs = {
        "metrics": {s.name: p for s, p in specs},
        "method": method_key,
        "registry_method": method_spec.name,
        "method_params": method_params,
        "seed": seed,
        "wall_time_s": wall,
        "metric_wall_time_s": timings,
        "na_counts": na,
        "diagnostics": diagnostics,
        "config_hash": config_hash({"metrics": {s.name: p for s, p in specs}, "attributions": str(aattrs.get("config_hash", ""))}),
        "batch_size": batch_size,
        "code_version": code_fingerprint("."),
        **environment(device),
        **(provenance or {}),
    }
    save_scores(table, curves, Path(out_csv), Path(out_curves), attrs)
    for name, sec in timings.items():
        log.info("%s: %s in %.2f s", method_key, name, sec)
    log_diagnostics(method_key, diagnostics)
    partial = {c: k for c, k in na.items() if 0 < k}
    if partial:
        log.info("NA values per column: %s", partial)
    log.info("scored %d images in %.2f s", len(table), wall)


def metric_directions(metric_names: Sequence[str]) -> dict[str, str]:
    """Reported columns and their arrows: the paper's order (SI, SD, CI, CD, SAD, SIC, CAD, CID, MS) first,
    then the other columns in the order of the given metrics (e.g. RAND); a ``<col>_median`` column
    (e.g. MS_median) follows its ``<col>``."""
    found: dict[str, str] = {}
    for name in metric_names:
        found.update(get_metric(name).directions)
    medians = [c for c in found if c.endswith("_median")]
    plain = [c for c in PAPER_ORDER if c in found] + [c for c in found if c not in PAPER_ORDER and c not in medians]
    order: list[str] = []
    for c in plain:
        order += [c] + [m for m in medians if m == f"{c}_median"]
    order += [m for m in medians if m not in order]
    return {c: found[c] for c in order}


def aggregate(score_csvs: Sequence[Path], methods: Sequence[str], metric_names: Sequence[str], out_csv: Path, out_md: Path, out_long: Path, title: str) -> pd.DataFrame:
    """Merge per-image scores of all methods (and shards) into the summary table and a long CSV.

    Summary: mean over images per method and column (``<col>_median`` columns: the median of
    ``<col>``), methods in config order, columns in the paper's order; the CSV also carries
    ``n_images`` and ``na_<col>`` (images without a value), the Markdown notes partial NA counts.
    """
    per_image = read_per_image([Path(p) for p in score_csvs], list(methods))
    directions = metric_directions(metric_names)
    order = list(dict.fromkeys(methods))
    table = summary_table(per_image, directions, order)
    shard_attrs = [read_shard_attrs(Path(p)) for p in score_csvs]
    counts = diagnostic_counts(shard_attrs, list(methods), order)
    for method, row in counts.iterrows():
        if row.any():
            log.info("%s: bad-number counts %s", method, {k: int(v) for k, v in row.items() if v})
    provenance = table_provenance(shard_attrs, [Path(p) for p in score_csvs], list(methods))
    write_tables(table, per_image, directions, Path(out_csv), Path(out_md), Path(out_long), title,
                 na=na_counts(per_image, directions, order), counts=counts, provenance=provenance)
    return table


def grid_figure(pairs_h5: Path, attribution_files: dict[str, Sequence[Path]], n_images: int, out_png: Path) -> None:
    """Attribution grid of the first ``n_images`` images for every method (files = that method's shards)."""
    pairs = read_pairs(Path(pairs_h5))
    n = min(n_images, len(pairs.image_ids))
    maps, views = {}, {}
    for method, files in attribution_files.items():
        parts = [load_attributions(Path(p)) for p in files]
        m1 = torch.cat([p.map1 for p in parts])[:n]
        m2 = torch.cat([p.map2 for p in parts])[:n] if parts[0].map2 is not None else None
        maps[method] = (m1, m2)
        a, b = pairs.pair(str(parts[0].attrs["pair_family"]))
        views[method] = (a[:n], b[:n])
    _plots().attribution_grid([(pairs.x1[i], pairs.x2[i]) for i in range(n)], views, maps, pairs.image_ids[:n], Path(out_png))


def curves_plot(curve_files: dict[str, Sequence[Path]], out_png: Path, title: str) -> None:
    """Mean insertion/deletion curves per method (files = that method's shards)."""
    import h5py
    import numpy as np

    curves: dict[str, dict[str, Any]] = {}
    for method, files in curve_files.items():
        merged: dict[str, list] = {}
        for path in files:
            with h5py.File(path, "r") as f:
                for k in f:
                    if k != "image_id":
                        merged.setdefault(k, []).append(f[k][()])
        curves[method] = {k: np.concatenate(v) for k, v in merged.items()}
    _plots().curves_figure(curves, Path(out_png), title)


def bars_plot(per_image_csv: Path, metric_names: Sequence[str], out_png: Path, title: str, out_panels: Path | None = None) -> None:
    """Bar chart of every metric per method with 95 % bootstrap confidence intervals over images;
    with ``out_panels`` also one panel per metric (own y-axis) in one faceted figure."""
    per_image = pd.read_csv(per_image_csv, na_values=["NA"], keep_default_na=False)
    directions = metric_directions(metric_names)
    _plots().metric_bars(per_image, directions, Path(out_png), title)
    if out_panels is not None:
        _plots().metric_panels(per_image, directions, Path(out_panels), title)


def feature_visualisation(
    pairs_h5: Path,
    model_ckpt: Path,
    out_h5: Path,
    out_png: Path,
    method_key: str,
    registry_name: str,
    params: dict[str, Any],
    seed: int,
    device_name: str,
    batch_size: int,
    n_grid_images: int,
    provenance: dict[str, Any] | None = None,
    progress: bool = True,
    speed: dict[str, Any] | None = None,
) -> None:
    """Run an image method (``kind='image'``, e.g. feature visualisation) on every pair; HDF5 + PNG grid.

    HDF5: ``image_id`` [N], ``index`` [N], ``image`` float32 [N, 3, H, W] (dreamed images), ``detail``
    float32 [N, 3, H, W] (dreamed - initial noise); provenance attributes as attribution files.
    PNG: the first ``n_grid_images`` rows of dreamed image | condition x2 | detail (clipped to [0, 1]).
    """
    import sys

    from tqdm import tqdm

    from xai_ssl.h5io import atomic_h5, set_attrs, write_strings
    from xai_ssl.methods import MethodContext
    from xai_ssl.plots import dream_grid

    device = resolve_device(device_name)
    spec = get_method(registry_name)
    if spec.kind != "image":
        raise ValueError(f"method {registry_name!r} is a {spec.kind!r} method, not an image method")
    encoder = load_for_inference(Path(model_ckpt), device, speed)
    pairs = read_pairs(Path(pairs_h5))
    x1, x2 = pairs.pair(spec.pair_family)  # [N, 3, H, W] each
    batch_size = resolve_batch_size(batch_size, encoder, x1.shape[-1], device)
    resolved = spec.resolve_params(params, x1.shape[-1])
    runtime = getattr(sys.modules[spec.fn.__module__], "resolve_runtime", None)  # model-dependent nulls, for the record
    images, details = [], []
    chunk = max(1, batch_size)
    t0 = time.perf_counter()
    for start in tqdm(range(0, x1.shape[0], chunk), desc=method_key, unit="chunk", disable=not progress):
        ids = pairs.image_ids[start : start + chunk]
        ctx = MethodContext(device=device, batch_size=batch_size, seeds=[derive_seed(seed, i, method_key) for i in ids])
        img, det = spec.fn(encoder, x1[start : start + chunk].to(device), x2[start : start + chunk].to(device), resolved, ctx)
        images.append(img.detach().float().cpu())
        details.append(det.detach().float().cpu())
    wall = time.perf_counter() - t0
    image, detail = torch.cat(images), torch.cat(details)
    attrs = {
        "method": method_key,
        "registry_method": registry_name,
        "kind": spec.kind,
        "pair_family": spec.pair_family,
        "params": resolved,
        "runtime_params": runtime(encoder, resolved) if runtime else resolved,
        "seed": seed,
        "wall_time_s": wall,
        "batch_size": batch_size,
        "code_version": code_fingerprint("."),
        "params_hash": config_hash(resolved),
        **environment(device),
        **(provenance or {}),
    }
    import numpy as np

    with atomic_h5(Path(out_h5)) as f:
        write_strings(f, "image_id", list(pairs.image_ids))
        f.create_dataset("index", data=np.asarray(pairs.indices, dtype=np.int64))
        f.create_dataset("image", data=image.numpy().astype(np.float32))
        f.create_dataset("detail", data=detail.numpy().astype(np.float32))
        set_attrs(f, attrs)
    n = min(int(n_grid_images), image.shape[0])
    title = " / ".join(str(v) for v in (provenance or {}).values()) + f" / {method_key}"
    dream_grid(image[:n], x2[:n].float(), detail[:n], pairs.image_ids[:n], Path(out_png), title)
    log.info("%s: %d images in %.2f s (%.3f s/image)", method_key, image.shape[0], wall, wall / max(1, image.shape[0]))
