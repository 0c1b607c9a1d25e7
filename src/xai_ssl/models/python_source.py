"""Model source ``python``: your own encoder from a Python factory (``factory: package.module:function`` + ``kwargs``).

Protocol (docs/models.md has a worked example):

* ``factory`` names a function, either ``package.module:function`` (imported with the working directory
  on the module search path) or ``path/to/file.py:function`` (a file, relative to the working directory).
* It is called as ``function(checkpoint=<path or None>, **kwargs)`` and returns an
  :class:`xai_ssl.models.Encoder`: ``Encoder(trunk, head, mean, std)`` where

  - ``trunk`` maps model-input images [B, 3, H, W] to the **feature map** [B, C, h, w] that the CAM
    methods (Grad-CAM, Interaction-CAM, embedded Grad-CAM, VDSN) explain;
  - ``head`` maps the spatial mean of that map [B, C] to the **embedding** [B, D] whose cosine
    similarity is explained (``nn.Identity()`` for the pooled features); override
    ``Encoder.embed_features(a)`` for another pooling;
  - ``mean`` / ``std`` are the input **normalisation** (3 floats each, or both None): every method passes
    images in [0, 1] and the encoder normalises them itself.

  A Vision Transformer built with timm can be wrapped with :class:`xai_ssl.models.vit.VitEncoder`.
* With ``checkpoint`` set in the model entry, the file's sha256 is verified (pinned or trusted on first
  use) and its path passed in: load it strictly, e.g. with :func:`load_state_file` below. The prepared
  encoder (``results/models/<model>/encoder.pt``) stores the resulting weights; every later job rebuilds the
  structure with ``function(checkpoint=None, **kwargs)`` and loads those weights strictly, so the factory
  must build the same structure without a checkpoint and must not download anything.
* The factory also runs once (``checkpoint=None``, on PyTorch's meta device) when the config is validated,
  to learn the model's activations (guided backpropagation needs ReLUs). Keep it side-effect free.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xai_ssl.models.checkpoints import CheckpointError, is_state_dict, load_strict, read_state_file
from xai_ssl.models.encoder import Encoder

FORMAT = "python (your factory's checkpoint)"


def resolve_factory(spec: str) -> Callable[..., Any]:
    """The function named by ``package.module:function`` or ``path/to/file.py:function``."""
    if not isinstance(spec, str):
        raise TypeError(f"factory must be a string 'package.module:function' or 'path/to/file.py:function', got {spec!r}")
    if spec.count(":") != 1:
        raise ValueError(f"factory must be 'package.module:function' or 'path/to/file.py:function', got {spec!r}")
    target, name = spec.split(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ValueError(f"factory {spec!r}: file {path.resolve()} does not exist (relative paths are relative to the working directory)")
        mod_name = f"xai_ssl_user_factory_{abs(hash(str(path.resolve())))}"
        module = sys.modules.get(mod_name)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(mod_name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise ValueError(f"factory {spec!r}: cannot import {path}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[mod_name] = module
            try:
                loader_spec.loader.exec_module(module)
            except Exception:
                del sys.modules[mod_name]
                raise
    else:
        cwd = os.getcwd()
        if cwd not in sys.path:
            sys.path.append(cwd)
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ValueError(f"factory {spec!r}: cannot import module {target!r} ({exc}); put it on PYTHONPATH or in the working directory") from exc
    fn = getattr(module, name, None)
    if not callable(fn):
        raise TypeError(f"factory {spec!r}: {target} has no function {name!r}")
    if "checkpoint" not in inspect.signature(fn).parameters:
        raise ValueError(f"factory {spec!r}: the function must accept a 'checkpoint' argument (path of the weights, or None)")
    return fn


def call_factory(factory: str, kwargs: dict[str, Any] | None, checkpoint: Path | None) -> Encoder:
    """``function(checkpoint=..., **kwargs)``; the result must be an xai_ssl Encoder (the protocol above)."""
    fn = resolve_factory(factory)
    out = fn(checkpoint=checkpoint, **dict(kwargs or {}))
    if not isinstance(out, Encoder):
        raise TypeError(
            f"factory {factory!r} returned {type(out).__name__}; it must return an xai_ssl.models.Encoder(trunk, head, mean, std): "
            "trunk = model-input images [B, 3, H, W] -> feature map [B, C, h, w], head = pooled [B, C] -> embedding [B, D] "
            "(see docs/models.md)"
        )
    return out


def build_python_encoder(factory: str, kwargs: dict[str, Any] | None = None) -> Encoder:
    """The registry architecture ``python``: the factory's structure (called with checkpoint=None)."""
    return call_factory(factory, kwargs, None).eval()


def load_python(path: Path | str, factory: str, kwargs: dict[str, Any] | None = None) -> tuple[Encoder, dict[str, Any]]:
    """Call the factory with the (verified) checkpoint path; (encoder in eval mode, arch params)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} (format {FORMAT}): checkpoint file not found")
    try:
        enc = call_factory(factory, kwargs, path)
    except CheckpointError:
        raise
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} (format {FORMAT}): {exc}") from exc
    enc.source_facts = {"embedding": f"defined by the factory {factory}", "licence": "that of your weights"}  # type: ignore[attr-defined]
    return enc.eval(), {"factory": factory, "kwargs": dict(kwargs or {})}


def load_state_file(module: nn.Module, path: Path | str, prefix: str = "") -> None:
    """For factories: load a ``.pth``/``.safetensors`` state dict into ``module`` strictly (keys under ``prefix`` only,
    the prefix stripped); a mismatch is a CheckpointError naming the file and the keys."""
    state = read_state_file(path, FORMAT)
    if isinstance(state, dict) and not is_state_dict(state) and is_state_dict(state.get("state_dict")):
        state = state["state_dict"]
    if not is_state_dict(state):
        raise CheckpointError(f"{path} (format {FORMAT}): expected a state dict of tensors")
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    load_strict(module, state, path, FORMAT)


def meta_build(factory: str, kwargs: dict[str, Any] | None) -> Encoder:
    """The factory's encoder built on the meta device (no memory, no weights), for config validation."""
    with torch.device("meta"):
        return call_factory(factory, kwargs, None)
