"""Stage ``models`` (rules/models.smk): train an encoder here, or download, convert and prepare a pretrained one."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from xai_ssl.data.images import load_resized
from xai_ssl.data.index import read_index, select_records
from xai_ssl.device import resolve_device, set_threads
from xai_ssl.io.atomic import atomic_path, write_json
from xai_ssl.io.download import ChecksumError, fetch, manual_hint, normalise_digest, sha256_file, verify_file, write_record
from xai_ssl.models.checkpoints import CheckpointError
from xai_ssl.models.prepare import checkpoint_hint, source_record
from xai_ssl.models.registry import build_architecture, load_pretrained, save_encoder
from xai_ssl.models.simclr_training import SimCLRParams, train_simclr
from xai_ssl.models.simclrv2 import convert_tf_checkpoint
from xai_ssl.provenance import config_hash, environment
from xai_ssl.seeding import derive_seed

log = logging.getLogger(__name__)


def train_model(
    index: str, encoder: str, history: str, model: dict[str, Any], seed: int, device: str, torch_threads: int | None = None, progress: bool = True
) -> None:
    """Train an encoder with SimCLR on the configured split; save the checkpoint and the loss table.

    ``torch_threads`` (from the config, not from ``--cores``) fixes torch's CPU threads, so the weights do
    not depend on how the workflow was started.
    """
    set_threads(torch_threads)
    torch_device = resolve_device(device)
    records = select_records(read_index(Path(index)), model.get("train_split"), None)
    images = load_resized([r.path for r in records], int(model["image_size"]))  # [N, 3, S, S]
    with torch.random.fork_rng(devices=[]):  # initial weights depend on the seed only
        torch.manual_seed(derive_seed(seed, "init-weights"))
        net = build_architecture(model["arch"], **model.get("arch_params", {}))
    tr = dict(model.get("training", {}))
    if "crop_scale" in tr:
        tr["crop_scale"] = tuple(tr["crop_scale"])
    params = SimCLRParams(**tr)
    log.info("training %s on %d images (%s) on %s with %s", model["arch"], len(records), model.get("train_split"), torch_device, params)
    t0 = time.perf_counter()
    steps = train_simclr(net, images, params, seed, torch_device, progress)
    wall = time.perf_counter() - t0
    extra = {"history": steps, "seed": seed, "wall_time_s": wall, "n_images": len(records), "torch_threads": torch.get_num_threads(), "config_hash": config_hash(model), **environment(torch_device)}
    save_encoder(net, Path(encoder), model["arch"], model.get("arch_params", {}), extra=extra)
    with atomic_path(history) as tmp:
        pd.DataFrame(steps).to_csv(tmp, index=False)
    log.info("trained in %.1f s; final loss %.4f", wall, steps[-1]["loss"])


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
