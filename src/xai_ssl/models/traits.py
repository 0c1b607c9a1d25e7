"""What a model is made of, as far as the methods care: CNN or Vision Transformer, its activations, its tokens.

Methods that are not defined for a model are refused when the config is validated (``config._cross_check``
asks each method's ``applies`` rule, :mod:`xai_ssl.methods.base`), so traits are known before any weight
is read: the sources of the paper (SimCLRv2, Barlow Twins, SimSiam, torchvision ResNets, the small ResNets
trained here) are ReLU CNNs; a ``timm`` model is built on PyTorch's meta device (no memory, no weights)
and inspected; a ``python`` factory is called on the meta device. ``encoder_traits`` inspects a built
encoder, which is also how the guided methods check at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

# activation modules under which guided backpropagation (a rule for ReLUs) is not defined
_NON_RELU = ("GELU", "SiLU", "Swish", "Mish", "Hardswish", "HardSwish", "ELU", "SELU", "CELU", "LeakyReLU", "PReLU",
             "RReLU", "ReLU6", "Softplus", "GLU", "Sigmoid", "Hardsigmoid", "HardSigmoid", "Tanh", "Hardtanh", "StarReLU", "QuickGELU")
RELU_CNN_SOURCES = ("simclr_trained", "simclrv2", "barlow_twins", "simsiam", "torchvision_resnet")


@dataclass(frozen=True)
class ModelTraits:
    """The facts methods are checked against."""

    family: str  # "cnn" or "vit"
    description: str  # e.g. "timm vit_small_patch16_224.dino"
    relu_modules: int = 0
    other_activations: tuple[str, ...] = ()  # class names of non-ReLU activation modules (sorted, unique)
    class_token: bool = False
    patch_size: int | None = None

    @property
    def guided_backprop_defined(self) -> bool:
        """Guided backpropagation changes the backward pass of ReLU modules: every activation must be one."""
        return self.relu_modules > 0 and not self.other_activations

    def why_not_guided(self) -> str:
        """The reason guided backpropagation is not defined (for error messages)."""
        if self.other_activations:
            return f"it has {', '.join(self.other_activations)} activations, where the ReLU rule does not apply (the gradient there would be a silent vanilla one)"
        return "it has no ReLU modules to guide (the result would be the vanilla gradient)"


def _activation_name(module: nn.Module) -> str | None:
    name = type(module).__name__
    if isinstance(module, nn.ReLU):
        return "ReLU"
    return name if any(name == n or name.endswith(n) for n in _NON_RELU) else None


def encoder_traits(encoder: nn.Module, description: str = "") -> ModelTraits:
    """Traits of a built encoder (any device, including meta)."""
    from xai_ssl.models.vit import VitEncoder

    names = [n for n in (_activation_name(m) for m in encoder.modules()) if n is not None]
    relu = sum(n == "ReLU" for n in names)
    other = tuple(sorted({n for n in names if n != "ReLU"}))
    if isinstance(encoder, VitEncoder):
        return ModelTraits("vit", description, relu, other, encoder.has_class_token, encoder.patch_size)
    return ModelTraits("cnn", description, relu, other)


def config_traits(model_cfg: dict[str, Any]) -> ModelTraits:
    """Traits of a configured model without reading its checkpoint (see the module docstring)."""
    source = model_cfg["source"]
    if source in RELU_CNN_SOURCES:
        what = model_cfg.get("arch") or model_cfg.get("variant") or source
        return ModelTraits("cnn", f"{source} {what}".strip(), relu_modules=1)
    if source == "timm":
        from xai_ssl.models.timm_source import build_timm_encoder, model_family

        arch = model_cfg["arch"]
        family = model_family(arch, model_cfg.get("model_kwargs"))
        import torch

        with torch.device("meta"):
            enc = build_timm_encoder(arch, "pooled", 0, None, None, None, model_cfg.get("input_size"), model_cfg.get("model_kwargs"))
        traits = encoder_traits(enc, f"timm {arch}")
        if model_cfg.get("embedding") == "head" and model_cfg.get("layout") == "dino_full":
            other = tuple(sorted({*traits.other_activations, "GELU"}))  # DINO's projection head
            traits = ModelTraits(traits.family, traits.description + " with DINO's head", traits.relu_modules, other, traits.class_token, traits.patch_size)
        assert traits.family == family
        return traits
    if source == "python":
        from xai_ssl.models.python_source import meta_build

        return encoder_traits(meta_build(model_cfg["factory"], model_cfg.get("kwargs")), f"python {model_cfg['factory']}")
    raise KeyError(f"unknown model source {source!r}")
