"""The method signature and registry: one module per method, found by its config name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch

from xai_ssl.engine import MethodContext
from xai_ssl.models.encoder import Encoder
from xai_ssl.models.traits import ModelTraits
from xai_ssl.registry import Scaler, Spec, lookup

__all__ = [
    "METHOD_REGISTRY", "AppliesFn", "MethodContext", "MethodFn", "MethodSpec", "Passes", "always", "get_method", "register_method", "relu_if_guided",
    "vit_with_class_token",
]

AppliesFn = Callable[[ModelTraits, dict[str, Any]], "str | None"]  # (model traits, resolved params) -> None, or why not defined


def always(traits: ModelTraits, params: dict[str, Any]) -> str | None:
    """Defined for every model."""
    return None


def relu_if_guided(traits: ModelTraits, params: dict[str, Any]) -> str | None:
    """Guided variants (``guided: true``) need a model whose activations are all ReLU modules."""
    if params.get("guided") and not traits.guided_backprop_defined:
        return f"guided backpropagation is a rule for ReLUs and {traits.description or 'this model'} is not a ReLU network: {traits.why_not_guided()}"
    return None


def vit_with_class_token(traits: ModelTraits, params: dict[str, Any]) -> str | None:
    """Attention maps of the class token: Vision Transformers with a class token only."""
    if traits.family != "vit":
        return f"it reads the class token's self-attention of a Vision Transformer and {traits.description or 'this model'} is a CNN (no attention)"
    if not traits.class_token:
        return f"it reads the class token's self-attention and {traits.description or 'this model'} has no class token"
    return None


class MethodFn(Protocol):
    """Explain cos(f(x1), f(x2)) for a batch of pairs [B, 3, H, W] in [0, 1]; return (map1, map2) [B, h, w]."""

    def __call__(
        self, encoder: Encoder, x1: torch.Tensor, x2: torch.Tensor, params: dict[str, Any], ctx: MethodContext
    ) -> tuple[torch.Tensor, torch.Tensor | None]: ...


@dataclass(frozen=True)
class Passes:
    """Encoder passes of a method, in images through the trunk (an image of side s at image size S counts (s/S)²).

    ``forwards``/``backwards``: per explained pair; ``setup_*``: once per job (a corpus method's reference
    images, cached afterwards). A backward counts where the gradient flows back through the whole trunk
    (Grad-CAM's backward through the head only counts 0).
    """

    forwards: float
    backwards: float = 0.0
    setup_forwards: float = 0.0
    setup_backwards: float = 0.0


PassCounter = Callable[[dict[str, Any], int], Passes]


@dataclass(frozen=True)
class MethodSpec(Spec):
    """A registered method: its function, the pair family it explains and its parameter defaults."""

    what: ClassVar[str] = "method"

    pair_family: str = "crop_aug"
    n_maps: int = 2
    cost: str = ""
    kind: str = "map"  # "map": attributed and scored; "image": produces images (feature visualisation), not scored
    needs_corpus: bool = False  # True: ctx.corpus must hold reference images (COCOA corpus, VDSN / embedded Grad-CAM database)
    family: str = "other"  # figure grouping: occlusion, cam, gradient, perturbation, attention, other (baselines: "baseline")
    baseline: bool = False  # a reference map that ignores the model (random, centre, edge): tables and figures show it apart
    passes: PassCounter | None = None  # passes(resolved params, image size) -> Passes: the cost, for time estimates (xai_ssl.cost)
    applies: AppliesFn = always  # (model traits, resolved params) -> None, or why the method is not defined for that model

    def not_defined_for(self, traits: ModelTraits, params: dict[str, Any]) -> str | None:
        """Why this method (with these resolved params) is not defined for a model with ``traits``; None when it is."""
        return self.applies(traits, params)


METHOD_REGISTRY: dict[str, MethodSpec] = {}


def register_method(
    name: str,
    pair_family: str,
    defaults: dict[str, Any] | None = None,
    n_maps: int = 2,
    cost: str = "",
    kind: str = "map",
    needs_corpus: bool = False,
    scale: Scaler | None = None,
    family: str = "other",
    baseline: bool = False,
    passes: PassCounter | None = None,
    applies: AppliesFn = always,
) -> Callable[[MethodFn], MethodFn]:
    """Decorator: add a method function to the registry under ``name`` (``scale``: see :class:`registry.Spec`;
    ``passes``: its encoder passes for resolved parameters and an image size, see :class:`Passes`;
    ``applies``: which models it is defined for, asked when the config is validated)."""

    def wrap(fn: MethodFn) -> MethodFn:
        if name in METHOD_REGISTRY:
            raise ValueError(f"method {name!r} registered twice")
        METHOD_REGISTRY[name] = MethodSpec(
            name, fn, dict(defaults or {}), scale, pair_family, n_maps, cost, kind, needs_corpus, "baseline" if baseline else family, baseline,
            passes, applies,
        )
        return fn

    return wrap


def get_method(name: str) -> MethodSpec:
    """Look a method up by its registry name; the error lists the accepted names."""
    return lookup(METHOD_REGISTRY, name, "method")
