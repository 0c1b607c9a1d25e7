"""The method signature and registry: one module per method, found by its config name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from xai_ssl.models.encoder import Encoder
from xai_ssl.models.traits import ModelTraits


@dataclass
class MethodContext:
    """What a method needs besides the model and images: device, batch size, per-image seeds."""

    device: torch.device
    batch_size: int = 32
    seeds: list[int] = field(default_factory=list)  # one per image of the batch
    progress: bool = False
    image_ids: list[str] = field(default_factory=list)  # ids of the batch's images (corpus methods exclude them)
    corpus: Any = None  # xai_ssl.corpus.Corpus (reference images) for methods registered with needs_corpus
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # per-image extra arrays a method stores beside its maps (e.g. attention heads [B, heads, h, w])


AppliesFn = Callable[[ModelTraits, dict[str, Any]], "str | None"]


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
class MethodSpec:
    """A registered method: its function, the pair family it explains and its parameter defaults."""

    name: str
    fn: MethodFn
    pair_family: str
    defaults: dict[str, Any]
    n_maps: int = 2
    cost: str = ""
    kind: str = "map"  # "map": attributed and scored; "image": produces images (feature visualisation), not scored
    needs_corpus: bool = False  # True: ctx.corpus must hold reference images (COCOA corpus, VDSN / embedded Grad-CAM database)
    applies: AppliesFn = always  # (model traits, resolved params) -> None, or why the method is not defined for that model

    def not_defined_for(self, traits: ModelTraits, params: dict[str, Any]) -> str | None:
        """Why this method (with these resolved params) is not defined for a model with ``traits``; None when it is."""
        return self.applies(traits, params)

    def resolve_params(self, params: dict[str, Any] | None, image_size: int) -> dict[str, Any]:
        """Defaults overridden by ``params``; unknown keys are refused."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise KeyError(f"method {self.name!r}: unknown parameter(s) {unknown}; accepted: {sorted(self.defaults)}")
        merged = {**self.defaults, **params}
        scaler = SCALERS.get(self.name)
        return scaler(merged, image_size) if scaler else merged


METHOD_REGISTRY: dict[str, MethodSpec] = {}
SCALERS: dict[str, Callable[[dict[str, Any], int], dict[str, Any]]] = {}


def register_method(
    name: str,
    pair_family: str,
    defaults: dict[str, Any] | None = None,
    n_maps: int = 2,
    cost: str = "",
    kind: str = "map",
    needs_corpus: bool = False,
    applies: AppliesFn = always,
) -> Callable[[MethodFn], MethodFn]:
    """Decorator: add a method function to the registry under ``name`` (``applies``: which models it is defined for)."""

    def wrap(fn: MethodFn) -> MethodFn:
        if name in METHOD_REGISTRY:
            raise ValueError(f"method {name!r} registered twice")
        METHOD_REGISTRY[name] = MethodSpec(name, fn, pair_family, dict(defaults or {}), n_maps, cost, kind, needs_corpus, applies)
        return fn

    return wrap


def get_method(name: str) -> MethodSpec:
    """Look a method up by its registry name; the error lists the accepted names."""
    if name not in METHOD_REGISTRY:
        raise KeyError(f"unknown method {name!r}; accepted: {sorted(METHOD_REGISTRY)}")
    return METHOD_REGISTRY[name]


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of [B, D] embeddings (eps 1e-8, as torch.nn.CosineSimilarity)."""
    return torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-8)


def embed_batched(encoder: Encoder, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Embeddings [N, D] of images [N, 3, H, W], ``batch_size`` at a time, without gradients."""
    with torch.inference_mode():
        return torch.cat([encoder(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def sub_context(ctx: MethodContext, seeds: list[int], image_ids: list[str]) -> MethodContext:
    """A MethodContext for re-running a method inside a metric: same device, batch size and corpus; new seeds."""
    return MethodContext(device=ctx.device, batch_size=ctx.batch_size, seeds=seeds, progress=False, image_ids=list(image_ids), corpus=ctx.corpus)
