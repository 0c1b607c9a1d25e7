"""Explanation methods; importing this package fills the registry."""

from xai_ssl.methods import conditional_occlusion, gradcam, input_x_gradient  # noqa: F401  (registration)
from xai_ssl.methods.base import METHOD_REGISTRY, MethodContext, MethodSpec, get_method, register_method

__all__ = ["METHOD_REGISTRY", "MethodContext", "MethodSpec", "get_method", "register_method"]
