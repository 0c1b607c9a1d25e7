"""How long a method takes on this device: its encoder passes (``MethodSpec.passes``) × the measured time per pass.

A method declares its cost as :class:`~xai_ssl.methods.base.Passes` (images through the trunk, forward and
backward, per pair and once per job) for its resolved parameters and the image size; the time of one pass is
measured once per encoder and device (:func:`measure_pass_times`). :class:`PassCounter` counts the passes a run
really makes (hooks on the trunk's first layer): the demo's progress bar, and the tests' check of every
method's declared passes against its code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import torch
from torch import nn

from xai_ssl.methods.base import MethodSpec, Passes
from xai_ssl.models.encoder import Encoder


@dataclass(frozen=True)
class PassTimes:
    """Seconds per image of one forward (no gradients) and one backward through the trunk, measured on ``device``."""

    forward_s: float
    backward_s: float
    image_size: int
    device: str
    batch_size: int


@dataclass(frozen=True)
class Estimate:
    """The estimated seconds of a method on ``n_images`` pairs (``seconds`` None: the method declares no passes)."""

    seconds: float | None
    passes: Passes | None
    setup_seconds: float = 0.0  # once per job (corpus methods), included in ``seconds``


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_pass_times(encoder: Encoder, size: int, device: torch.device, batch_size: int = 8, repeats: int = 2) -> PassTimes:
    """Time ``repeats`` forwards (inference mode) and forward+backward passes of ``batch_size`` random images after a warm-up."""
    dtype = next(encoder.parameters()).dtype
    x = torch.rand(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device, dtype)  # [b, 3, S, S]
    with torch.inference_mode():
        encoder(x)  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            encoder(x)
        _sync(device)
        forward = (time.perf_counter() - t0) / (repeats * batch_size)
    backward_total = 0.0
    with torch.enable_grad():
        for _ in range(repeats):
            xi = x.clone().requires_grad_(True)
            z = encoder(xi)
            _sync(device)
            t1 = time.perf_counter()
            torch.autograd.grad(z.square().sum(), [xi])
            _sync(device)
            backward_total += time.perf_counter() - t1
    return PassTimes(forward, backward_total / (repeats * batch_size), size, str(device), batch_size)


def estimate(spec: MethodSpec, params: dict[str, Any], size: int, times: PassTimes, n_images: int = 1, setup: bool = True) -> Estimate:
    """Seconds of ``spec`` with resolved ``params`` on ``n_images`` pairs of ``size`` px (``setup``: include the once-per-job passes)."""
    if spec.passes is None:
        return Estimate(None, None)
    p = spec.passes(params, size)
    per_image = p.forwards * times.forward_s + p.backwards * times.backward_s
    once = (p.setup_forwards * times.forward_s + p.setup_backwards * times.backward_s) if setup else 0.0
    return Estimate(n_images * per_image + once, p, once)


def first_layer(encoder: Encoder) -> nn.Module:
    """The module every image enters first (a ViT's patch embedding, else the trunk's first child): every pass goes through it."""
    vit = getattr(encoder, "vit", None)
    if vit is not None and hasattr(vit, "patch_embed"):
        return vit.patch_embed
    return next(iter(encoder.trunk.children()), encoder.trunk)


class PassCounter:
    """Counts encoder passes while active (``with PassCounter(encoder, size) as c``): images of side s count (s/size)².

    ``on_pass(counter)`` is called after every counted forward or backward (e.g. to move a progress bar).
    """

    def __init__(self, encoder: Encoder, size: int, on_pass: Callable[[PassCounter], None] | None = None) -> None:
        self.encoder = encoder
        self.size = int(size)
        self.on_pass = on_pass
        self.forwards = 0.0
        self.backwards = 0.0
        self._handle: Any = None

    def _weight(self, x: torch.Tensor) -> float:
        return x.shape[0] * x.shape[-2] * x.shape[-1] / self.size**2

    def _hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        w = self._weight(inputs[0])
        self.forwards += w
        if output.requires_grad:  # a backward that reaches the first layer went through the whole trunk
            output.register_hook(lambda grad, w=w: self._backward(w))
        if self.on_pass:
            self.on_pass(self)

    def _backward(self, w: float) -> None:
        self.backwards += w
        if self.on_pass:
            self.on_pass(self)

    def seconds(self, times: PassTimes) -> float:
        """The estimated time of the passes counted so far."""
        return self.forwards * times.forward_s + self.backwards * times.backward_s

    def __enter__(self) -> Self:
        self._handle = first_layer(self.encoder).register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()
