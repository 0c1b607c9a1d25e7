"""Reading third-party checkpoint files strictly: the error type, safe loading, prefix stripping and key checks.

Every format loader (SimCLRv2, Barlow Twins, SimSiam, torchvision ResNet) goes through these helpers, so
a file that does not match its format fails the same way: a :class:`CheckpointError` whose message names
the file, the format and the first keys that differ (missing, unexpected, wrong shape).

Files are read with ``torch.load(map_location="cpu", weights_only=True)`` (loader checklist of
``peers-and-checkpoints.md`` B.3): no code from the file runs, and a machine without a GPU can read
checkpoints saved on one.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

N_SHOWN = 5  # keys shown per category in an error message


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or does not match the expected layout."""


def _inert(*args: Any, **kwargs: Any) -> None:
    """Stand-in for a training-script function pickled into an optimizer state (never called here)."""
    return None


# classes a training script commonly pickles beside the weights that are plain data: DINO's and timm's
# training checkpoints store their command line as an argparse.Namespace under 'args'
SAFE_CLASSES: list[Any] = [argparse.Namespace]

_UNSUPPORTED_GLOBAL = re.compile(r"GLOBAL (__main__\.[A-Za-z_][A-Za-z0-9_.]*)")


def read_torch_file(path: Path | str, fmt: str) -> Any:
    """``torch.load`` a checkpoint on the CPU with ``weights_only=True``; errors name the file and the format.

    Training checkpoints sometimes pickle a helper of the training script into the optimizer's
    parameter groups (e.g. a ``__main__.exclude_bias_and_norm`` filter function). Such names are
    not allowed by the weights-only unpickler; each ``__main__.*`` global is then allow-listed as an
    inert stand-in and the load retried (the optimizer state is never used). ``argparse.Namespace``
    (the command line DINO and timm store under ``'args'``) is allowed as plain data. Anything else that
    is not a plain tensor container is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} (format {fmt}): checkpoint file not found")
    stubs: list[tuple[Any, str]] = []
    for _ in range(8):
        try:
            with torch.serialization.safe_globals([*SAFE_CLASSES, *stubs]):
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
            match = _UNSUPPORTED_GLOBAL.search(str(exc))
            if match is None or any(name == match.group(1) for _, name in stubs):
                raise CheckpointError(f"{path} (format {fmt}): not a readable torch checkpoint ({type(exc).__name__}: {str(exc)[:500]})") from exc
            stubs.append((_inert, match.group(1)))
    raise CheckpointError(f"{path} (format {fmt}): too many unsupported globals in the file")


def read_state_file(path: Path | str, fmt: str) -> Any:
    """A checkpoint's content: ``.safetensors`` files with safetensors (a flat tensor dict, no pickle), others
    with :func:`read_torch_file`."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return read_torch_file(path, fmt)
    if not path.is_file():
        raise CheckpointError(f"{path} (format {fmt}): checkpoint file not found")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} (format {fmt}): not a readable safetensors file ({type(exc).__name__}: {str(exc)[:300]})") from exc


def is_state_dict(payload: Any) -> bool:
    """True for a non-empty mapping of string keys to tensors."""
    return isinstance(payload, Mapping) and bool(payload) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items())


def require_dict_keys(payload: Any, keys: Iterable[str], path: Path | str, fmt: str) -> dict[str, Any]:
    """The payload must be a dict holding ``keys`` (extra top-level keys such as ``optimizer`` are fine)."""
    keys = list(keys)
    if not isinstance(payload, Mapping):
        raise CheckpointError(f"{path} (format {fmt}): expected a dict with keys {keys}, got {type(payload).__name__}")
    missing = [k for k in keys if k not in payload]
    if missing:
        raise CheckpointError(
            f"{path} (format {fmt}): top-level key(s) {missing} missing; the file has {sorted(map(str, payload))[:10]}"
        )
    for k in keys:
        if not isinstance(payload[k], Mapping):
            raise CheckpointError(f"{path} (format {fmt}): '{k}' should be a state dict, got {type(payload[k]).__name__}")
    return dict(payload)


def strip_prefix(state_dict: Mapping[str, Any], prefix: str, path: Path | str, fmt: str) -> dict[str, Any]:
    """Remove ``prefix`` (e.g. ``module.`` of DistributedDataParallel) from every key; every key must carry it."""
    lacking = [k for k in state_dict if not k.startswith(prefix)]
    if lacking:
        raise CheckpointError(
            f"{path} (format {fmt}): expected every key to start with {prefix!r}; "
            f"{len(lacking)} do not, e.g. {lacking[:N_SHOWN]}"
        )
    return {k[len(prefix):]: v for k, v in state_dict.items()}


def state_dict_differences(expected: Mapping[str, torch.Tensor], given: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(missing keys, unexpected keys, 'key: file [shape] vs expected [shape]') in the expected key order."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    wrong = []
    for k, ref in expected.items():
        if k in given:
            v = given[k]
            if not isinstance(v, torch.Tensor):
                wrong.append(f"{k}: file holds {type(v).__name__}, expected a tensor {list(ref.shape)}")
            elif tuple(v.shape) != tuple(ref.shape):
                wrong.append(f"{k}: file {list(v.shape)} vs expected {list(ref.shape)}")
    return missing, unexpected, wrong


def load_strict(module: nn.Module, state_dict: Mapping[str, Any], path: Path | str, fmt: str, part: str = "state dict") -> None:
    """Load ``state_dict`` into ``module`` requiring exactly its keys and shapes; else a CheckpointError.

    The message names the file, the format, the part of the file (e.g. ``'resnet'``) and the first
    missing / unexpected / wrongly shaped keys with their counts. A module built on the ``meta`` device
    (no memory, no initialisation) takes the file's tensors over (``assign=True``), floating point ones
    as float32.
    """
    missing, unexpected, wrong = state_dict_differences(module.state_dict(), state_dict)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) {missing[:N_SHOWN]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) {unexpected[:N_SHOWN]}")
        if wrong:
            parts.append(f"{len(wrong)} tensor(s) of the wrong shape {wrong[:N_SHOWN]}")
        raise CheckpointError(f"{path} (format {fmt}): {part} does not match the expected layout: " + "; ".join(parts))
    on_meta = any(t.is_meta for t in module.state_dict().values())
    if on_meta:
        state_dict = {k: (v.float() if v.is_floating_point() else v) for k, v in state_dict.items()}
    try:
        module.load_state_dict(dict(state_dict), strict=True, assign=on_meta)
    except RuntimeError as exc:  # e.g. a dtype that cannot be copied
        raise CheckpointError(f"{path} (format {fmt}): {part} cannot be loaded ({exc})") from exc
