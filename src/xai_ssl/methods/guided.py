"""Guided backprop (Springenberg et al., "Striving for Simplicity", ICLR-W 2015) as Sammani et al. §3.9 use it.

The reference code puts a legacy backward hook on every ``nn.ReLU`` module. Here the same rule is an
autograd function swapped into those modules for the duration of a ``with guided_relu(model):`` block:
forward = relu(x); backward = grad_out.clamp(min=0) * (x > 0).

Only ``nn.ReLU`` modules are guided. Functional ``F.relu`` calls inside a ``forward`` stay vanilla, as in
the reference: SimCLRv2's post-residual block ReLU (models/simclrv2.py) is functional and not guided.
small_resnet and torchvision ResNets (Barlow Twins, SimSiam) use ``nn.ReLU`` modules only; a torchvision
Bottleneck reuses one ``relu`` module three times, and swapping the attribute guides all three uses.
In-place ReLU modules are replaced by the (out-of-place) guided one.

A model with other activation modules (a ViT's GELUs, a DINO head's GELUs, SiLU, ...) or without any
ReLU module is refused: there the rule would leave a silent vanilla gradient. The config validation
refuses such (method, model) pairs first (``MethodSpec.applies``); this is the run-time guard.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class GuidedReLUFunction(torch.autograd.Function):
    """relu forward; backward passes only positive gradients where the input was positive."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """relu(x), keeping x for the backward pass."""
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_out: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """grad_in = max(grad_out, 0) * 1[x > 0]."""
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad_out.clamp(min=0) * (x > 0).to(grad_out.dtype)


class GuidedReLU(nn.Module):
    """Drop-in replacement for ``nn.ReLU`` using :class:`GuidedReLUFunction`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Guided relu of any tensor shape."""
        return GuidedReLUFunction.apply(x)


def relu_slots(module: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute name, child) for every ``nn.ReLU`` child anywhere in ``module``."""
    slots = []
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.ReLU):
                slots.append((parent, name, child))
    return slots


@contextmanager
def guided_relu(module: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Swap every ``nn.ReLU`` of ``module`` for a :class:`GuidedReLU`; restore the originals on exit (also on errors).

    Run both the forward and the backward pass inside the block. ``enabled=False`` is a no-op. A module
    whose activations are not all ReLU modules is refused (ValueError naming them).
    """
    if enabled:
        from xai_ssl.models.traits import encoder_traits

        traits = encoder_traits(module, type(module).__name__)
        if not traits.guided_backprop_defined:
            raise ValueError(f"guided backpropagation is not defined for this model ({type(module).__name__}): {traits.why_not_guided()}")
    slots = relu_slots(module) if enabled else []
    try:
        for parent, name, _ in slots:
            setattr(parent, name, GuidedReLU())
        yield module
    finally:
        for parent, name, child in slots:
            setattr(parent, name, child)
