"""Model registry: architectures by config name, the checkpoint format of encoders trained or prepared
here, and the third-party checkpoint formats (model ``source``s) that load into the common Encoder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from xai_ssl.io.atomic import atomic_path
from xai_ssl.models.barlow_twins import build_barlow_twins_encoder, load_barlow_twins
from xai_ssl.models.checkpoints import CheckpointError
from xai_ssl.models.encoder import Encoder
from xai_ssl.models.python_source import build_python_encoder, load_python
from xai_ssl.models.simclrv2 import build_simclrv2_encoder, load_simclrv2
from xai_ssl.models.simsiam import build_simsiam_encoder, load_simsiam
from xai_ssl.models.small_resnet import build_resnet18, build_small_resnet
from xai_ssl.models.timm_source import build_timm_encoder, load_timm
from xai_ssl.models.torchvision_resnet import build_torchvision_resnet_encoder, load_torchvision_resnet

__all__ = [
    "ARCHITECTURES",
    "CHECKPOINT_FORMAT",
    "PRETRAINED_SOURCES",
    "CheckpointError",
    "PretrainedSource",
    "build_architecture",
    "load_encoder",
    "read_encoder",
    "load_pretrained",
    "save_encoder",
]

ARCHITECTURES: dict[str, Callable[..., Encoder]] = {
    "small_resnet": build_small_resnet,
    "resnet18": build_resnet18,
    # structures of the pretrained sources below (how their prepared encoder.pt is rebuilt)
    "simclrv2_resnet50": build_simclrv2_encoder,
    "barlow_twins_resnet50": build_barlow_twins_encoder,
    "simsiam_resnet50": build_simsiam_encoder,
    "torchvision_resnet": build_torchvision_resnet_encoder,
    "timm": build_timm_encoder,  # any timm architecture (arch params: model, readout, num_classes, dino_head, ...)
    "python": build_python_encoder,  # your factory (arch params: factory, kwargs)
}
TRAINABLE_ARCHITECTURES = ("small_resnet", "resnet18")  # the 'arch' of source simclr_trained

CHECKPOINT_FORMAT = "xai_ssl.encoder/1"


@dataclass(frozen=True)
class PretrainedSource:
    """A third-party checkpoint format: its loader, the registry architecture it becomes, and facts for the record."""

    name: str
    load: Callable[..., Encoder]
    arch: str
    params: tuple[str, ...]  # model config keys passed to the loader (and, unless it returns its own, the builder)
    embedding: str
    licence: str
    published: str = ""  # where the checkpoints are published


PRETRAINED_SOURCES: dict[str, PretrainedSource] = {
    "simclrv2": PretrainedSource(
        "simclrv2", load_simclrv2, "simclrv2_resnet50", ("width",),
        "128-d output of the 3-layer contrastive head; inputs in [0, 1] without normalisation",
        "Apache-2.0 (google-research/simclr) [UNVERIFIED]",
    ),
    "barlow_twins": PretrainedSource(
        "barlow_twins", load_barlow_twins, "barlow_twins_resnet50", (),
        "8192-d projector output (third Linear, without the loss BN); ImageNet normalisation",
        "MIT (facebookresearch/barlowtwins)",
    ),
    "simsiam": PretrainedSource(
        "simsiam", load_simsiam, "simsiam_resnet50", (),
        "2048-d predictor output p = predictor(projector(pool(trunk))); ImageNet normalisation",
        "CC BY-NC 4.0 (facebookresearch/simsiam)",
    ),
    "torchvision_resnet": PretrainedSource(
        "torchvision_resnet", load_torchvision_resnet, "torchvision_resnet", ("variant", "normalise"),
        "pooled last-stage features (identity head)",
        "that of the weights' provider",
    ),
    "timm": PretrainedSource(
        "timm", load_timm, "timm", ("arch", "layout", "network", "embedding", "mean", "std", "input_size", "model_kwargs"),
        "embedding: cls (class token), pooled (mean of the patch tokens / of the last map) or head (DINO's projection head, "
        "or the file's classifier); see source.json for the model's",
        "that of the weights (timm's pretrained config of arch names it)",
        "local file in timm's, DINO's or DINOv2's layout (e.g. dl.fbaipublicfiles.com/dino/, dl.fbaipublicfiles.com/dinov2/)",
    ),
    "python": PretrainedSource(
        "python", load_python, "python", ("factory", "kwargs"),
        "defined by your factory (Encoder protocol, docs/models.md)",
        "that of your weights",
    ),
}


def load_pretrained(source: str, path: Path | str, /, **params: Any) -> tuple[Encoder, str, dict[str, Any]]:
    """Load a third-party checkpoint strictly: (encoder in eval mode, registry arch, arch params).

    ``params`` may be a whole model config entry: only the keys the source uses (``width``, ``variant``,
    ``normalise``, timm's ``arch``, ``embedding``, ...) are passed on. Loaders that learn the structure from
    the file (timm: classifier size, DINO head) return (encoder, arch params) themselves.
    """
    if source not in PRETRAINED_SOURCES:
        raise KeyError(f"unknown checkpoint source {source!r}; accepted: {sorted(PRETRAINED_SOURCES)}")
    spec = PRETRAINED_SOURCES[source]
    arch_params = {k: params[k] for k in spec.params if k in params and params[k] is not None}
    loaded = spec.load(path, **arch_params)
    if isinstance(loaded, tuple):
        loaded, arch_params = loaded
    return loaded, spec.arch, arch_params


def build_architecture(arch: str, **params: Any) -> Encoder:
    """Build an encoder from its registry name and architecture parameters."""
    if arch not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {arch!r}; accepted: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](**params)


def save_encoder(encoder: Encoder, path: Path, arch: str, arch_params: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """Write an encoder checkpoint atomically (temporary file, then rename)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "arch": arch,
        "arch_params": dict(arch_params),
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        "extra": extra or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_encoder(path: Path | str, device: torch.device | str = "cpu") -> tuple[Encoder, dict[str, Any]]:
    """Load an encoder checkpoint written by :func:`save_encoder`, strictly, in eval mode, with its ``extra`` record."""
    from xai_ssl.io.damaged import rebuild_hint

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint file not found; {rebuild_hint(path)}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({str(exc)[:300]}); it is damaged: {rebuild_hint(path)}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: expected format {CHECKPOINT_FORMAT!r}, got {payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r}; {rebuild_hint(path)}")
    try:
        encoder = build_architecture(payload["arch"], **payload["arch_params"])
        result = encoder.load_state_dict(payload["state_dict"], strict=False)
    except (KeyError, TypeError, RuntimeError) as exc:  # unknown arch/params, or a tensor of the wrong shape
        raise CheckpointError(f"{path} (format {CHECKPOINT_FORMAT}): does not match its architecture ({exc})") from exc
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{path} (format {CHECKPOINT_FORMAT}, arch {payload['arch']}): missing keys {result.missing_keys[:5]}, "
            f"unexpected keys {result.unexpected_keys[:5]}"
        )
    return encoder.to(device).eval(), dict(payload.get("extra") or {})


def load_encoder(path: Path | str, device: torch.device | str = "cpu") -> Encoder:
    """Load an encoder checkpoint written by :func:`save_encoder`, strictly, in eval mode."""
    return read_encoder(path, device)[0]
