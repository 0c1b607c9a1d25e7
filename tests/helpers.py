"""Shared test helpers: repository paths, tiny encoders and random images (one copy for every test module)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest
import torch
from torch import nn

from xai_ssl.config import ConfigError, validate_config
from xai_ssl.models.encoder import Encoder
from xai_ssl.models.registry import build_architecture, save_encoder

REPO = Path(__file__).resolve().parents[1]
# XAI_SSL_SHARED_DATA: the shared data for runs from a copy of the checkout (mutation testing, docs/mutation-testing.md)
SHARED_DATA = Path(os.environ.get("XAI_SSL_SHARED_DATA") or REPO.parent / "shared" / "data")
CPU = torch.device("cpu")

# ---------------------------------------------------------------------------------------------------------------
# The skip rule (docs/development.md#tests). What the project requires (the shared test data, pyproject's
# dependencies and its test extra, the browser of the browser tests) may be absent on a developer's machine: the
# tests that need it skip, saying what is missing. In CI (CI=true, set by .ci/run) they fail instead. Only optional
# resources (a CUDA device, TensorFlow, a SLURM installation) skip in CI too, through ``skip_optional``: the hooks
# below (imported by conftest.py) turn every other skip under CI=true into a failure, pytest.importorskip included.
# ---------------------------------------------------------------------------------------------------------------
OPTIONAL = "optional:"  # the reason of a skip allowed in CI starts with this


def in_ci() -> bool:
    """True under ``CI=true``: every requirement must be present."""
    return os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> NoReturn:
    """A requirement is missing: skip, ``what`` saying which and how to get it (the hooks fail it under CI=true)."""
    pytest.skip(what, allow_module_level=True)


def skip_optional(what: str) -> NoReturn:
    """Skip for a missing optional resource (CUDA, TensorFlow, SLURM), in CI too; listed in docs/development.md."""
    pytest.skip(f"{OPTIONAL} {what}", allow_module_level=True)


def require_module(name: str) -> ModuleType:
    """Import a required package (pyproject's dependencies or the ``test`` extra); see :func:`missing` when it fails."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"the required package {name!r} cannot be imported ({exc}): pip install -e '.[test]' -c constraints.txt")


def shared_data(name: str) -> Path:
    """A folder of ``../shared/data``; a test needing an absent one skips (fails under CI=true, see :func:`missing`)."""
    path = SHARED_DATA / name
    if not path.is_dir():
        missing(f"{path} is absent (the shared test data beside the checkout: ../shared/data/{name})")
    return path


def _fail_skip_in_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Under CI=true, turn a skip whose reason does not start with ``OPTIONAL`` into a failure."""
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not reason.removeprefix("Skipped: ").startswith(OPTIONAL):
            report.outcome = "failed"
            report.longrepr = f"CI=true: only optional resources may skip a test ('{OPTIONAL} ...'), this one skipped: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """The skip rule for tests and their fixtures (imported by conftest.py)."""
    report = yield
    _fail_skip_in_ci(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> pytest.CollectReport:
    """The skip rule for whole modules (``pytest.skip(..., allow_module_level=True)``, ``pytest.importorskip``)."""
    report = yield
    _fail_skip_in_ci(report)
    return report


def config_refused(cfg: dict, *fragments: str) -> str:
    """The ConfigError message that ``validate_config(cfg)`` raises; it must contain every fragment."""
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    msg = str(err.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    return msg


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


def random_dataset(root: Path, n_test: int, size: int, n_train: int = 0, seed: int = 0) -> dict[str, Path]:
    """Random PNG images, their pairs file (``size`` px, the first ``n_test`` images), a dataset index (the other
    ``n_train`` images are the training split: corpus methods' reference images) and a tiny encoder checkpoint
    (:func:`tiny_encoder` in float32). Returns the paths: ``pairs``, ``index``, ``encoder``."""
    import numpy as np
    from PIL import Image

    from xai_ssl.data.index import write_index
    from xai_ssl.data.records import ImageRecord
    from xai_ssl.models.registry import save_encoder

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n_test + n_train):
        path = root / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (size + 6, size + 12, 3), dtype=np.uint8)).save(path)
        records.append(ImageRecord(f"im{i}", path, label="a", split="test" if i < n_test else "train"))
    write_pairs(records[:n_test], root / "pairs.h5", size, seed=5, crop_scale=(0.3, 1.0))
    write_index(records, root / "index.csv")
    # fitted batch-norm statistics: with the initial ones the ReLU network is positively homogeneous and e.g.
    # GradientSHAP (zero baseline, no noise) would not depend on its random interpolation points
    save_encoder(tiny_encoder(fit_size=size).float(), root / "encoder.pt", "small_resnet", {"width": 4, "embedding_dim": 8, "hidden_dim": 16})
    return {"pairs": root / "pairs.h5", "index": root / "index.csv", "encoder": root / "encoder.pt"}


def background_distance(x: torch.Tensor) -> torch.Tensor:
    """Per-pixel distance [N, H, W] of images [N, 3, H, W] from their background colour (the median colour of the
    image's border pixels): high on an object rendered before a plain background, computed from the image alone."""
    border = torch.cat([x[:, :, 0, :], x[:, :, -1, :], x[:, :, :, 0], x[:, :, :, -1]], dim=2)  # [N, 3, 4W]
    bg = border.median(dim=2).values  # [N, 3]
    return (x - bg[:, :, None, None]).abs().sum(1)


def mask_contrast(x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per image [N]: mean :func:`background_distance` inside the mask minus outside; masks [N, H, W] bool."""
    d = background_distance(x)
    m = masks.to(d.dtype)
    return (d * m).sum((1, 2)) / m.sum((1, 2)) - (d * (1 - m)).sum((1, 2)) / (1 - m).sum((1, 2))


# misplacements a label mask must fit x1 better than: flips, the transpose and 2-pixel shifts; masks [N, H, W]
MASK_MISPLACEMENTS = {
    "mirrored": lambda m: m.flip(-1),
    "upside down": lambda m: m.flip(-2),
    "rotated 180°": lambda m: m.flip(-1, -2),
    "transposed": lambda m: m.transpose(-1, -2),
    "2 px right": lambda m: m.roll(2, -1),
    "2 px left": lambda m: m.roll(-2, -1),
    "2 px down": lambda m: m.roll(2, -2),
    "2 px up": lambda m: m.roll(-2, -2),
}

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
