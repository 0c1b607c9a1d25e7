"""Preparing a third-party checkpoint: a smoke embedding of fixed images and the record of where it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from xai_ssl.models.checkpoints import CheckpointError
from xai_ssl.models.encoder import Encoder
from xai_ssl.models.registry import PRETRAINED_SOURCES
from xai_ssl.seeding import generator

SMOKE_SIZE = 64  # side of the fixed images embedded once when a model is prepared (recorded in source.json)


def checkpoint_hint(path: Path, source: str, url: str | None) -> str:
    """What to do about a checkpoint file that is corrupt, truncated, of another format or another version."""
    fix = "delete it and rerun to download it again" if url else "replace it with the original file"
    return (f"what to do: the file is truncated, corrupt, or not the {source!r} checkpoint this model entry expects; "
            f"{fix} (and its {path.name}.sha256 record if the new file is meant to differ), or correct the model's 'source'/'sha256'")


MIN_NORM = 1e-8  # an embedding with a smaller L2 norm counts as zero (as in scoring: its cosine is undefined)


def check_embedding(z: torch.Tensor, path: Path, source: str) -> None:
    """Refuse embeddings [B, D] with NaN or inf values or a (near) zero norm, naming the checkpoint and what was seen.

    Every similarity, and so every map and score, of such an encoder would be NA.
    """
    fix = "the weights are broken (e.g. scaled or zeroed) or not those of this source: replace the file or correct the model's 'source'"
    finite = torch.isfinite(z)
    if not bool(finite.all()):
        n_inf, n_nan = int(torch.isinf(z).sum()), int(torch.isnan(z).sum())
        raise CheckpointError(
            f"{path} (format {source}): the embedding of a fixed test image is not finite ({n_inf} of {z.numel()} values are inf, "
            f"{n_nan} nan); {fix}"
        )
    norms = z.double().norm(dim=1)
    if bool((norms < MIN_NORM).any()):
        raise CheckpointError(
            f"{path} (format {source}): the embedding of a fixed test image is (near) zero (norms {[float(f'{v:.3g}') for v in norms]}, "
            f"max |value| {float(z.abs().max()):.3g}); cosine similarities are undefined; {fix}"
        )


def smoke_embedding(encoder: Encoder, path: Path, source: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature maps [2, C, h, w] and embeddings [2, D] of two fixed random images; refuses an infinite, NaN or zero embedding."""
    x = torch.rand((2, 3, SMOKE_SIZE, SMOKE_SIZE), generator=generator(0, "smoke", "prepare_model"))
    with torch.no_grad():
        a = encoder.features(x)
        z = encoder.embed_features(a)
    check_embedding(z, path, source)
    return a, z


def source_record(
    encoder: Encoder, path: Path, source: str, url: str | None, digest: str, pinned: bool, arch: str, arch_params: dict[str, Any]
) -> dict[str, Any]:
    """The ``source.json`` record of a prepared model: file, digest, licence, embedding and a smoke embedding.

    Loaders that learn the model from the file (timm, python) describe it in ``encoder.source_facts``
    (embedding, licence, layout, network, published, ...): those facts replace the source's generic ones.
    """
    a, z = smoke_embedding(encoder, path, source)
    spec = PRETRAINED_SOURCES[source]
    facts = dict(getattr(encoder, "source_facts", None) or {})
    return {
        "model_source": source,
        "checkpoint": str(path.resolve()),
        "url": url,
        "sha256": digest,
        "sha256_pinned": pinned,
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
