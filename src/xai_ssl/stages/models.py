"""Stage ``models`` (rules/models.smk): train an encoder here, or download, convert and prepare a pretrained one."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from xai_ssl.data.images import load_resized
from xai_ssl.data.index import read_index, select_records
from xai_ssl.data.two4two import probe_labels
from xai_ssl.device import resolve_device, set_threads
from xai_ssl.io.atomic import atomic_path, write_json
from xai_ssl.io.download import ChecksumError, fetch, manual_hint, normalise_digest, sha256_file, verify_file, write_record
from xai_ssl.io.pairs_file import read_pairs
from xai_ssl.models.checkpoints import CheckpointError
from xai_ssl.models.encoder import Encoder
from xai_ssl.models.prepare import checkpoint_hint, source_record
from xai_ssl.models.quality import model_quality
from xai_ssl.models.registry import build_architecture, load_encoder, load_pretrained, save_encoder
from xai_ssl.models.simclr_training import SimCLRParams, train_simclr
from xai_ssl.models.simclrv2 import convert_tf_checkpoint
from xai_ssl.provenance import config_hash, environment
from xai_ssl.seeding import derive_seed

log = logging.getLogger(__name__)


def train_model(index: str, encoder: str, history: str, model: dict[str, Any], seed: int, device: str, progress: bool = True) -> None:
    """Train an encoder with SimCLR on the configured split; save the checkpoint and the loss table.

    The training sets torch's CPU threads to ``training.threads`` (config, not ``--cores``), so the weights do
    not depend on how the workflow was started; the count is recorded in the checkpoint (``extra.threads``).
    """
    torch_device = resolve_device(device)
    records = select_records(read_index(Path(index)), model.get("train_split"), None)
    images = load_resized([r.path for r in records], int(model["image_size"]))  # [N, 3, S, S]
    with torch.random.fork_rng(devices=[]):  # initial weights depend on the seed only
        torch.manual_seed(derive_seed(seed, "init-weights"))
        net = build_architecture(model["arch"], **model.get("arch_params", {}))
    params = simclr_params(model)
    log.info("training %s on %d images (%s) on %s with %s", model["arch"], len(records), model.get("train_split"), torch_device, params)
    t0 = time.perf_counter()
    steps = train_simclr(net, images, params, seed, torch_device, progress)
    wall = time.perf_counter() - t0
    extra = {"history": steps, "seed": seed, "wall_time_s": wall, "n_images": len(records), "threads": params.threads, "config_hash": config_hash(model), **environment(torch_device)}
    save_encoder(net, Path(encoder), model["arch"], model.get("arch_params", {}), extra=extra)
    with atomic_path(history) as tmp:
        pd.DataFrame(steps).to_csv(tmp, index=False)
    log.info("trained in %.1f s; final loss %.4f", wall, steps[-1]["loss"])


def simclr_params(model: dict[str, Any]) -> SimCLRParams:
    """The model's ``training`` entry as :class:`SimCLRParams` (lists of the YAML as tuples)."""
    tr = dict(model.get("training", {}))
    for key in ("crop_scale", "colour_jitter"):
        if key in tr:
            tr[key] = tuple(tr[key])
    return SimCLRParams(**tr)


def model_card(
    encoder: str, index: str, pairs: Sequence[str], quality: str, model: dict[str, Any], datasets: Sequence[str], seed: int, device: str
) -> dict[str, Any]:
    """The model card ``quality.json`` of a model trained here (models/quality.py): view cosine and linear probes.

    View cosine: cos(f(x1), f(x2)) over the explained pairs of each dataset in ``datasets`` (``pairs``, same
    order). Probes: frozen pooled features of the train split (at most ``card.max_train_images``) -> the
    ``card.test_split`` of the training dataset, at the training image size, for the class label and the
    scene attributes of Two4Two (``data.two4two.probe_labels``), on this encoder, on raw pixels and on a
    randomly initialised encoder of the same architecture. Runs on one torch thread whatever ``--cores``
    (same bytes; the fits are small, more threads only add overhead).
    """
    card_cfg = dict(model.get("card") or {})
    set_threads(1)
    torch_device = resolve_device(device)
    t0 = time.perf_counter()
    net = load_encoder(encoder, torch_device)
    records = read_index(Path(index))
    train = select_records(records, model.get("train_split"), card_cfg.get("max_train_images", 512))
    test_split = card_cfg.get("test_split", "test")
    test = select_records(records, test_split, card_cfg.get("max_test_images"))
    if not train or not test:
        raise ValueError(f"{index}: the model card needs images in the train split {model.get('train_split')!r} ({len(train)}) and the test split {test_split!r} ({len(test)}); set models.<name>.card.test_split")
    size = int(model["image_size"])
    labels = {}
    for name, values in probe_labels([*train, *test]).items():
        tr, te = values[: len(train)], values[len(train) :]
        if len(set(tr)) < 2 or not set(te) <= set(tr):  # e.g. no bent spine among a handful of train images
            log.warning("model card: no probe for %r (train classes %s, test classes %s)", name, sorted(set(tr)), sorted(set(te)))
            continue
        labels[name] = (tr, te)
    views = {}
    for name, path in zip(datasets, pairs, strict=True):
        p = read_pairs(path)
        views[name] = (p.x1, p.x2)  # [P, 3, S, S]

    def factory() -> Encoder:
        return build_architecture(model["arch"], **model.get("arch_params", {}))

    card = model_quality(net, views, load_resized([r.path for r in train], size), load_resized([r.path for r in test], size), labels, factory, seed)
    card.update({"train_split": model.get("train_split"), "test_split": test_split, "image_size": size, "threads": torch.get_num_threads()})
    write_json(quality, card)
    log.info("model card in %.1f s: %s", time.perf_counter() - t0, card_summary(card))
    return card


def card_summary(card: dict[str, Any]) -> str:
    """One line per number of the card: view cosine medians and probe accuracies."""
    parts = [f"view cosine {d}: median {v['median']:.3f} [{v['q25']:.3f}, {v['q75']:.3f}]" for d, v in card["view_cosine"].items()]
    for name, p in card["probe"]["labels"].items():
        parts.append(f"probe {name}: encoder {p['encoder']:.3f}, raw pixels {p['raw_pixels']:.3f}, random encoder {p['random_encoder']:.3f}, majority {p['majority']:.3f}")
    return "; ".join(parts)


def download_checkpoint(checkpoint: str, url: str, sha256: str | None = None) -> str:
    """Download a checkpoint (pinned digest, or trusted on first use); returns its digest."""
    return fetch(url, checkpoint, sha256)


def download_simclrv2_tf(index: str, data: str, urls: dict[str, str], sha256: dict[str, str | None]) -> None:
    """Download both files of a SimCLRv2 TensorFlow checkpoint (``.index`` and ``.data-00000-of-00001``)."""
    for part, dest in (("index", index), ("data", data)):
        fetch(urls[part], dest, sha256[part])


def convert_simclrv2(index: str, data: str, checkpoint: str, width: int, ema: bool = True, sha256: str | None = None) -> str:
    """Convert a SimCLRv2 TF checkpoint (``<prefix>.index`` + ``data``) to the PyTorch ``{'resnet', 'head'}`` file; record its digest."""
    prefix = Path(index).with_suffix("")
    t0 = time.perf_counter()
    convert_tf_checkpoint(prefix, Path(checkpoint), int(width), bool(ema))
    digest = sha256_file(checkpoint)
    pin = normalise_digest(sha256)
    if pin is not None and digest != pin:
        Path(checkpoint).unlink()
        raise ChecksumError(f"{checkpoint}: converted file has sha256 {digest}, differs from the pinned {pin}")
    write_record(Path(checkpoint), digest)  # the converted file is ours: its record follows each conversion
    log.info("converted %s in %.1f s; sha256 %s", prefix, time.perf_counter() - t0, digest)
    return digest


def prepare_model(checkpoint: str, encoder: str, info: str, model: dict[str, Any], sha256: str | None = None, url: str | None = None) -> dict[str, Any]:
    """Verify a third-party checkpoint's digest, load it strictly into the common Encoder and save it as ``encoder``.

    The digest is checked against ``sha256`` (pinned) or the record made on first use (``<checkpoint>.sha256``);
    with neither, it is recorded now. ``info`` (JSON) records the source, file, digest, licence,
    embedding and a smoke embedding of fixed images (norms and their cosine) for later comparisons.
    """
    source = model["source"]
    path = Path(checkpoint)
    if not path.is_file():
        hint = f"; {manual_hint(url, path)}" if url else f"; place the {source} checkpoint there, or set the model's 'url' so it is downloaded"
        raise CheckpointError(f"{path} (format {source}): checkpoint file not found{hint}")
    t0 = time.perf_counter()
    try:
        digest = verify_file(path, sha256)
        net, arch, arch_params = load_pretrained(source, path, **model)
    except CheckpointError as exc:  # ChecksumError too: add what to do
        raise type(exc)(f"{exc}; {checkpoint_hint(path, source, url)}") from exc
    record = source_record(net, path, source, url, digest, sha256 is not None, arch, arch_params)
    save_encoder(net, Path(encoder), arch, arch_params, extra={"pretrained": record, "config_hash": config_hash(model), **environment(torch.device("cpu"))})
    write_json(info, record)
    log.info("prepared %s from %s (sha256 %s) in %.1f s: trunk %d channels, embedding %d-d", source, path, digest, time.perf_counter() - t0, record["trunk_channels"], record["embedding_dim"])
    return record
