"""Explanation methods; importing this package imports every module in it, which fills the registry."""

import importlib
import pkgutil

from xai_ssl.methods.base import METHOD_REGISTRY, MethodContext, MethodSpec, Passes, get_method, register_method

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    importlib.import_module(f"{__name__}.{_module}")  # registration happens at import

__all__ = ["METHOD_REGISTRY", "MethodContext", "MethodSpec", "Passes", "get_method", "register_method"]
