"""What methods and metrics have in common: a registered function with parameter defaults, found by name.

A spec resolves the configured parameters: defaults overridden by the config, unknown keys refused (naming
the accepted ones), then the spec's own ``scale`` function turns size-dependent nulls into values for the
image size (e.g. an occlusion window of 64 px at 224 px) and checks values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

Scaler = Callable[[dict[str, Any], int], dict[str, Any]]


@dataclass(frozen=True)
class Spec:
    """A registered function, its parameter defaults and its scaler."""

    what: ClassVar[str] = "entry"  # "method" or "metric", for messages

    name: str
    fn: Callable[..., Any]
    defaults: dict[str, Any]
    scale: Scaler | None = None  # size-dependent defaults and value checks, given at registration

    @property
    def module(self) -> str:
        """The module that defines the function (its code is what a job of this entry depends on)."""
        return str(self.fn.__module__)

    def resolve_params(self, params: dict[str, Any] | None, image_size: int) -> dict[str, Any]:
        """Defaults overridden by ``params``; unknown keys are refused; then scaled to ``image_size``."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise KeyError(f"{self.what} {self.name!r}: unknown parameter(s) {unknown}; accepted: {sorted(self.defaults)}")
        merged = {**self.defaults, **params}
        return self.scale(merged, image_size) if self.scale else merged


def lookup(registry: dict[str, Any], name: str, what: str) -> Any:
    """An entry of ``registry`` by name; the error lists the accepted names."""
    if name not in registry:
        raise KeyError(f"unknown {what} {name!r}; accepted: {sorted(registry)}")
    return registry[name]
