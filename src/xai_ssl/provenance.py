"""Provenance: library versions, code fingerprints and config hashes written into every output."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

import xai_ssl

PACKAGE_DIR = Path(__file__).resolve().parent


def code_fingerprint(*modules: str) -> str:
    """Hash the source of the given ``xai_ssl`` modules/subpackages (e.g. ``"methods"``, ``"methods.base"``; ``"."`` = all)."""
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        target = PACKAGE_DIR if name == "." else PACKAGE_DIR / name.replace(".", "/")
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
        if not files or not all(f.exists() for f in files):
            raise FileNotFoundError(f"code_fingerprint: no module xai_ssl.{name} under {PACKAGE_DIR}")
        for f in files:
            h.update(str(f.relative_to(PACKAGE_DIR)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def config_hash(obj: Any) -> str:
    """Stable hash of a JSON-serialisable object (config section, parameters)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def environment(device: torch.device | None = None) -> dict[str, str]:
    """Versions and machine facts to store as output attributes."""
    import torch

    info = {
        "xai_ssl_version": xai_ssl.__version__,
        "python": sys.version.split()[0],
        "torch": str(torch.__version__),
        "platform": platform.platform(),
    }
    try:  # the installed version, without importing torchvision (~2 s)
        info["torchvision"] = importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        pass
    if device is not None:
        info["device"] = str(device)
        if device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(device)
    return info
