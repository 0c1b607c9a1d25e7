"""Shared test helpers: repository paths, tiny encoders and random images (one copy for every test module)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from xai_ssl.models.encoder import Encoder
from xai_ssl.models.registry import build_architecture, save_encoder

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CPU = torch.device("cpu")


def shared_data(name: str) -> Path:
    """A folder of ``../shared/data``; outside CI a test needing an absent one is skipped, in CI (``CI=true``) it fails."""
    path = SHARED_DATA / name
    if not path.is_dir():
        message = f"{path} is absent (the shared test data beside the checkout: ../shared/data/{name})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must have it", pytrace=False)
        pytest.skip(message)
    return path


def tiny_encoder(seed: int = 0, normalise: bool = True, fit_size: int = 16) -> Encoder:
    """A tiny small_resnet in float64 / eval mode whose BatchNorm statistics are fitted to random images.

    With fitted statistics the embeddings are centred, so cosine similarities (and their drops) spread over
    [-1, 1] instead of all being ~1 (~0) as with the initial running statistics.
    """
    torch.manual_seed(seed)
    enc = build_architecture("small_resnet", width=4, embedding_dim=8, hidden_dim=16, normalise=normalise).double()
    for mod in enc.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.momentum = None  # cumulative average
    enc.train()
    with torch.no_grad():
        enc(torch.rand(16, 3, fit_size, fit_size, generator=torch.Generator().manual_seed(seed + 100), dtype=torch.float64))
    return enc.eval()


def images(n: int, size: int, seed: int = 1) -> torch.Tensor:
    """Random images [n, 3, size, size] in [0, 1] (float64), from ``seed``."""
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def aggregate(score_csvs: list[Path], methods: list[str], metric_names: list[str], out_csv: Path, out_md: Path, out_long: Path, title: str):
    """``stages.evaluation.aggregate_tables`` on score CSVs written by a test (an empty curves file beside each CSV
    that has none, as a metric job without curves or diagnostics would leave)."""
    import h5py

    from xai_ssl.io.hdf5 import write_strings
    from xai_ssl.metrics import metric_directions
    from xai_ssl.stages.evaluation import aggregate_tables

    curves = []
    for csv in map(Path, score_csvs):
        path = csv.with_name(csv.name.removesuffix(".csv") + ".curves.h5")
        if not path.exists():
            with h5py.File(path, "w") as f:
                write_strings(f, "image_id", [])
        curves.append(str(path))
    provenance = Path(out_csv).with_name(Path(out_csv).name.removesuffix(".csv") + ".provenance.json")
    return aggregate_tables(
        [str(p) for p in score_csvs], curves, str(out_csv), str(out_md), str(out_long), str(provenance), list(methods), metric_directions(metric_names), title
    )


def write_pairs(records: list, path: Path, size: int, seed: int, progress: bool = False, crop_scale: tuple[float, float] = (0.08, 1.0)) -> None:
    """The pairs file of ``records`` as ``stages.data.make_pairs`` writes it (without an index CSV)."""
    from xai_ssl.io.pairs_file import write_pairs as write
    from xai_ssl.pairs import record_views

    with_masks = bool(records) and all(r.mask_path is not None for r in records)
    views = record_views(records, size, seed, tuple(crop_scale), with_masks)
    write(path, [r.image_id for r in records], size, views, with_masks, {"seed": seed, "crop_scale": list(crop_scale)})


# ---------- the live demo and uploads

DEMO_ARCH = {"width": 4, "embedding_dim": 8, "hidden_dim": 16}


def demo_config(**demo: object) -> dict:
    """The default config with a ``demo`` section."""
    import yaml

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["demo"] = dict(demo)
    return config


def prepare_model(results: Path, name: str = "simclr_small") -> Path:
    """A tiny random small_resnet as the prepared encoder of ``name``."""
    torch.manual_seed(0)
    path = results / "models" / name / "encoder.pt"
    save_encoder(build_architecture("small_resnet", **DEMO_ARCH).eval(), path, "small_resnet", DEMO_ARCH)
    return path


def png_bomb(path: Path, side: int) -> Path:
    """A real greyscale PNG of side × side zero pixels whose compressed file is tiny (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path
