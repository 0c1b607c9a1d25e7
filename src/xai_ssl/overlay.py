"""Maps drawn over their view for display (figures, notebook, demo): upsampled, min-max scaled, coloured, blended."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def normalised_map(m: torch.Tensor, size: int) -> np.ndarray:
    """A map [h, w] resized bilinearly to [size, size] and min-max scaled to [0, 1] (display only; constant -> 0)."""
    up = F.interpolate(torch.as_tensor(m)[None, None].float(), size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    up = torch.nan_to_num(up, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = up.min(), up.max()
    return ((up - lo) / (hi - lo) if hi > lo else torch.zeros_like(up)).numpy()


def overlay(image: torch.Tensor, m: torch.Tensor | None, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """The view [3, S, S] in [0, 1] with the map blended on top in ``cmap`` colours; uint8 RGB [S, S, 3]."""
    from matplotlib import colormaps  # the colour table only: no plotting backend is chosen

    rgb = image.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()  # [S, S, 3]
    if m is not None:
        heat = colormaps[cmap](normalised_map(m.detach().cpu(), image.shape[-1]))[..., :3]  # [S, S, 3]
        rgb = (1 - alpha) * rgb + alpha * heat
    return np.round(rgb * 255).astype(np.uint8)
