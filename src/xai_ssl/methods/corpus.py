"""Reference images for methods that compare an explicand with other images (COCOA corpus/foil, VDSN and
embedded Grad-CAM databases), as tensors: the dataclass methods receive in ``MethodContext.corpus``.

Which images they are (centre views of the dataset's training split, chosen from the seed) is decided by
``xai_ssl.data.corpus``; per-encoder quantities computed from them (embeddings, Grad-CAM weights) are
cached on the object, so a job computes them once per encoder (the randomisation metric's randomised
encoders get their own).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Corpus:
    """Reference images (uint8 centre views) with ids and labels, and the labels of every indexed image."""

    images: torch.Tensor  # [R, 3, S, S] uint8
    ids: list[str]
    labels: list[str | None]
    source: str  # the split the images come from
    seed: int  # the config seed (foil noise and other draws derive from it)
    labels_by_id: dict[str, str | None] = field(default_factory=dict)  # every indexed image (explicands too)
    _cache: dict[Any, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_images(cls, images: torch.Tensor, ids: list[str] | None = None, labels: list[str | None] | None = None, seed: int = 0, source: str = "given") -> Corpus:
        """A corpus of images [R, 3, S, S] (floats in [0, 1] or uint8; floats are rounded to 8 bits as stored views are)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"corpus: expected images [R, 3, S, S], got shape {tuple(images.shape)}")
        if images.dtype != torch.uint8:
            images = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
        n = images.shape[0]
        ids = list(ids) if ids is not None else [f"corpus-{i}" for i in range(n)]
        labels = list(labels) if labels is not None else [None] * n
        if len(ids) != n or len(labels) != n:
            raise ValueError(f"corpus: {n} images but {len(ids)} ids and {len(labels)} labels")
        return cls(images.cpu(), ids, labels, source, int(seed), dict(zip(ids, labels, strict=True)))

    def __len__(self) -> int:
        """Number of reference images."""
        return len(self.ids)

    def floats(self, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The images as floats in [0, 1] on ``device``; [R, 3, S, S]."""
        return self.images.to(device=device, dtype=dtype) / 255

    def chunks(self, device: torch.device, dtype: torch.dtype, batch_size: int) -> Iterator[torch.Tensor]:
        """The images as floats in [0, 1], ``batch_size`` at a time (the uint8 store stays on the CPU); [b, 3, S, S]."""
        for i in range(0, len(self.ids), max(1, batch_size)):
            yield self.images[i : i + batch_size].to(device=device, dtype=dtype) / 255

    def embeddings(self, encoder: torch.nn.Module, device: torch.device, dtype: torch.dtype, batch_size: int) -> torch.Tensor:
        """Embeddings f(c) [R, D] of the images, computed once per encoder (cached), without gradients."""

        def compute() -> torch.Tensor:
            with torch.inference_mode():
                return torch.cat([encoder(x) for x in self.chunks(device, dtype, batch_size)])

        return self.cached(encoder, ("embeddings", str(device), dtype), compute)

    def keep(self, image_id: str | None, label: str | None = None, same_label: bool | None = None) -> torch.Tensor:
        """Boolean [R]: images other than ``image_id``; with ``same_label`` True/False, only those of (not) ``label``."""
        ok = torch.tensor([i != image_id for i in self.ids], dtype=torch.bool)
        if same_label is not None:
            if label is None or any(lab is None for lab in self.labels):
                raise ValueError("corpus: class-based corpus/foil selection needs labels in the dataset index")
            ok &= torch.tensor([(lab == label) == same_label for lab in self.labels], dtype=torch.bool)
        return ok

    def cached(self, encoder: torch.nn.Module, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per (encoder, key) for the lifetime of this corpus (the encoder is weakly referenced)."""
        full = (id(encoder), key)
        hit = self._cache.get(full)
        if hit is not None and hit[0]() is encoder:
            return hit[1]
        value = compute()
        self._cache[full] = (weakref.ref(encoder), value)
        return value
