"""Procedural 2-D stand-in for the Two4Two Blender renderer that writes the exact Two4Two on-disk format.

The animal is a spine of four blocks with an arm pair (top + bottom block) at each end. In model
units the spine blocks sit at a = -1, 0, 1, 2 (b = 0), the left arm pair at a = -1.5, b = +-1 and the
movable right arm pair at a = 1.5 + arm_position, b = +-1, as in the Blender model. The layout
constants below were fitted to the masks of the real two4two-mini renders (block spacing, where
position_x / position_y put the object, how much the spine bends per unit of `bending`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from xai_ssl.data.records import DataError

# Distance between neighbouring spine blocks as a fraction of the image side (real renders: ~19.5 px at 128).
SPINE_SPACING = 0.152
# Image position of the centroid of the 8 block centres: x = W * (X0 + DX * position_x), y = H * (Y0 + DY * position_y).
CENTER_X0, CENTER_DX = 0.50, 0.145
CENTER_Y0, CENTER_DY = 0.48, -0.17
# Turn of the spine per joint = BEND_GAIN * bending (real renders: end segments differ by ~2.87 * bending).
BEND_GAIN = 1.435
# Render at SUPERSAMPLE x the resolution, average for the image, centre sample for the mask (odd factor).
SUPERSAMPLE = 3
# Direction towards the light in image coordinates (x right, y down, z towards the camera).
_LIGHT = np.array([-0.35, -0.45, 0.82]) / np.linalg.norm([-0.35, -0.45, 0.82])

# Field order of SceneParameters.state_dict() in the real files.
_SAMPLED_ATTRIBUTES = (
    "obj_name",
    "labeling_error",
    "spherical",
    "bending",
    "obj_rotation_roll",
    "obj_rotation_pitch",
    "obj_rotation_yaw",
    "fliplr",
    "position_x",
    "position_y",
    "arm_position",
    "bg_color",
    "obj_color",
)
_RENDER_KEYS = (
    "spherical",
    "bending",
    "obj_rotation_roll",
    "obj_rotation_pitch",
    "obj_rotation_yaw",
    "position_x",
    "position_y",
    "arm_position",
    "obj_color_rgba",
    "bg_color_rgba",
    "resolution",
)


def _coolwarm(value: float) -> list[float]:
    """RGBA (floats in [0, 1]) of matplotlib's coolwarm colormap at value."""
    from matplotlib import colormaps

    return [float(c) for c in colormaps["coolwarm"](value)]


def _truncated_normal(rng: np.random.Generator, mean: float, std: float, lower: float, upper: float) -> float:
    """One draw from a normal(mean, std) truncated to [lower, upper], by inverse CDF (one uniform draw)."""
    lo, hi = ndtr((lower - mean) / std), ndtr((upper - mean) / std)
    value = mean + std * ndtri(rng.uniform(lo, hi))
    return float(min(max(value, lower), upper))


def sample_parameters(rng: np.random.Generator, resolution: int = 128) -> dict[str, Any]:
    """Sample one scene-parameter row like the default unbiased Two4Two sampler (all real-format fields)."""
    if int(resolution) <= 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    quarter = math.pi / 4
    obj_name = "peaky" if rng.random() < 0.5 else "stretchy"
    arm_lo, arm_hi = (0.0, 0.52) if obj_name == "peaky" else (0.48, 1.0)
    arm_position = _truncated_normal(rng, 0.5, 0.2, arm_lo, arm_hi)
    spherical = float(rng.beta(0.3, 0.3))
    bending = _truncated_normal(rng, 0.0, math.pi / 20, -math.pi / 10, math.pi / 10)
    roll = _truncated_normal(rng, 0.0, 0.03 * quarter, -quarter, quarter)
    pitch = _truncated_normal(rng, 0.0, 0.3 * quarter, -quarter, quarter)
    yaw = float(rng.uniform(-math.pi, 0.0))
    position_x = float(rng.uniform(-0.8, 0.0))
    position_y = float(rng.uniform(-0.8, 0.0))
    obj_color = float(rng.uniform(0.0, 1.0))
    bg_color = float(rng.uniform(0.05, 0.95))
    image_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
    return {
        "obj_name": obj_name,
        "labeling_error": False,
        "spherical": spherical,
        "bending": bending,
        "obj_rotation_roll": roll,
        "obj_rotation_pitch": pitch,
        "obj_rotation_yaw": yaw,
        "fliplr": False,
        "position_x": position_x,
        "position_y": position_y,
        "arm_position": arm_position,
        "obj_color": obj_color,
        "obj_color_rgba": _coolwarm(obj_color),
        "bg_color": bg_color,
        "bg_color_rgba": _coolwarm(bg_color),
        "resolution": [int(resolution), int(resolution)],
        "id": image_id,
        "original_id": None,
        "_attributes_status": {name: "sampled" for name in _SAMPLED_ATTRIBUTES},
        "label": obj_name,
        "__module__": "two4two.scene_parameters",
        "__name__": "SceneParameters",
    }


def _rotation(angle: float) -> np.ndarray:
    """2x2 counter-clockwise rotation matrix."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def block_layout(arm_position: float, bending: float) -> tuple[np.ndarray, np.ndarray]:
    """Block centres [8, 2] in model units (a along the spine, b towards the top arms) and headings [8]."""
    phi = BEND_GAIN * bending
    c4 = np.array([0.0, 0.0])
    c5 = np.array([1.0, 0.0])
    c3 = c4 - _rotation(phi) @ np.array([1.0, 0.0])
    c6 = c5 + _rotation(-phi) @ np.array([1.0, 0.0])
    left = _rotation(phi)
    right = _rotation(-phi)
    centres = np.stack(
        [
            c3 + left @ np.array([-0.5, 1.0]),  # 1 arm_left_top
            c3 + left @ np.array([-0.5, -1.0]),  # 2 arm_left_bottom
            c3,  # 3 spine_left
            c4,  # 4 spine_left_center
            c5,  # 5 spine_right_center
            c6,  # 6 spine_right
            c6 + right @ np.array([arm_position - 0.5, 1.0]),  # 7 arm_right_top
            c6 + right @ np.array([arm_position - 0.5, -1.0]),  # 8 arm_right_bottom
        ]
    )  # [8, 2]
    headings = np.array([phi, phi, phi, phi / 2, -phi / 2, -phi, -phi, -phi])  # [8]
    return centres, headings


def _check_render_params(params: Mapping[str, Any]) -> tuple[int, int]:
    """Validate the fields render() needs; return (height, width)."""
    missing = [k for k in _RENDER_KEYS if k not in params]
    if missing:
        raise ValueError(f"scene parameters lack field(s): {', '.join(missing)}")
    resolution = params["resolution"]
    if not (isinstance(resolution, (list, tuple)) and len(resolution) == 2):
        raise ValueError(f"resolution must be [width, height], got {resolution!r}")
    width, height = int(resolution[0]), int(resolution[1])
    if width <= 0 or height <= 0:
        raise ValueError(f"resolution must be positive, got {resolution!r}")
    for key in ("obj_color_rgba", "bg_color_rgba"):
        if len(params[key]) < 3:
            raise ValueError(f"{key} must hold at least 3 values, got {params[key]!r}")
    return height, width


def render(params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Render a scene: RGBA uint8 [H, W, 4] (alpha 255) and mask uint8 [H, W] with labels 0..8."""
    height, width = _check_render_params(params)
    k = SUPERSAMPLE
    spherical = float(np.clip(params["spherical"], 0.0, 1.0))
    yaw = float(params["obj_rotation_yaw"])
    scale = SPINE_SPACING * min(height, width)  # output pixels per model unit
    u = np.array([math.cos(yaw), math.sin(yaw)])  # spine direction in image (x right, y down)
    t = np.array([math.sin(yaw), -math.cos(yaw)])  # towards the top arms
    fore_a = 1.0 - 0.8 * (1.0 - math.cos(float(params["obj_rotation_pitch"])))
    fore_b = math.cos(float(params["obj_rotation_roll"]))
    model_to_image = scale * np.stack([u, t], axis=1) @ np.diag([fore_a, fore_b])  # [2, 2]

    centres, headings = block_layout(float(params["arm_position"]), float(params["bending"]))
    centres = centres - centres.mean(axis=0)
    anchor = np.array(
        [
            width * (CENTER_X0 + CENTER_DX * float(params["position_x"])),
            height * (CENTER_Y0 + CENTER_DY * float(params["position_y"])),
        ]
    )
    image_centres = anchor + centres @ model_to_image.T  # [8, 2] in output pixels (x, y)

    half = 0.4 + 0.05 * spherical  # half block size in model units (Blender cube_size = 0.8 + 0.1 * spherical)
    power = 2.0 + 8.0 * (1.0 - spherical) ** 2  # superellipse exponent: ~10 = rounded cube, 2 = disc
    bevel = 0.2 + 0.8 * spherical  # fraction of the radius over which the surface curves away

    labels = np.zeros((height * k, width * k), dtype=np.uint8)  # [Hk, Wk]
    shade = np.zeros((height * k, width * k), dtype=np.float32)  # [Hk, Wk]
    highlight = np.zeros((height * k, width * k), dtype=np.float32)  # [Hk, Wk]
    for index in range(8):
        local_to_image = model_to_image @ _rotation(headings[index]) * half  # [2, 2]
        image_to_local = np.linalg.inv(local_to_image)
        cx, cy = image_centres[index]
        rx, ry = np.abs(local_to_image).sum(axis=1)
        x0, x1 = max(int(math.floor((cx - rx) * k)), 0), min(int(math.ceil((cx + rx) * k)) + 1, width * k)
        y0, y1 = max(int(math.floor((cy - ry) * k)), 0), min(int(math.ceil((cy + ry) * k)) + 1, height * k)
        if x0 >= x1 or y0 >= y1:
            continue
        dx = ((np.arange(x0, x1, dtype=np.float32) + 0.5) / k - cx)[None, :]  # [1, w]
        dy = ((np.arange(y0, y1, dtype=np.float32) + 0.5) / k - cy)[:, None]  # [h, 1]
        inv = image_to_local.astype(np.float32)
        lx = inv[0, 0] * dx + inv[0, 1] * dy  # [h, w]
        ly = inv[1, 0] * dx + inv[1, 1] * dy  # [h, w]
        ax, ay = np.abs(lx), np.abs(ly)
        gx = ax ** np.float32(power - 1.0)  # |x|^(p-1), the outline normal's x part (before the sign)
        gy = ay ** np.float32(power - 1.0)
        level = gx * ax + gy * ay  # |x|^p + |y|^p, <= 1 inside the superellipse
        inside = level <= 1.0
        if not inside.any():
            continue
        radius = level[inside] ** np.float32(1.0 / power)  # [n], 1 on the outline
        gx, gy = np.copysign(gx, lx)[inside], np.copysign(gy, ly)[inside]
        # Outward normal of the outline, mapped from local to image coordinates.
        nx = inv[0, 0] * gx + inv[1, 0] * gy
        ny = inv[0, 1] * gx + inv[1, 1] * gy
        norm = np.sqrt(nx * nx + ny * ny) + np.float32(1e-12)
        tilt = np.clip((radius - (1.0 - bevel)) / bevel, 0.0, 1.0)  # sin of the surface tilt
        flat = np.sqrt(1.0 - tilt * tilt)
        diffuse = np.clip(tilt * (nx * _LIGHT[0] + ny * _LIGHT[1]) / norm + flat * _LIGHT[2], 0.0, 1.0)
        window = (slice(y0, y1), slice(x0, x1))
        labels[window][inside] = index + 1
        shade[window][inside] = 0.45 + 0.6 * diffuse
        highlight[window][inside] = 0.35 * diffuse**40

    obj_rgb = np.asarray(params["obj_color_rgba"][:3], dtype=np.float32)  # [3]
    bg_rgb = np.asarray(params["bg_color_rgba"][:3], dtype=np.float32)  # [3]

    def pool(field: np.ndarray) -> np.ndarray:
        """Mean over each k x k block of a supersampled field: [Hk, Wk] -> [H, W, 1]."""
        return (field.reshape(height, k, width * k).sum(axis=1).reshape(height, width, k).sum(axis=2) / (k * k))[
            ..., None
        ]

    coverage = pool((labels > 0).astype(np.float32))  # [H, W, 1]
    lit = obj_rgb * pool(shade) + pool(highlight)  # [H, W, 3], object colour times mean shading
    lit_clipped = np.minimum(lit, coverage)  # a covered fraction c contributes at most c * white
    colour = np.clip(bg_rgb * (1.0 - coverage) + lit_clipped, 0.0, 1.0)  # [H, W, 3]
    rgba = np.empty((height, width, 4), dtype=np.uint8)
    rgba[..., :3] = np.round(colour * 255.0).astype(np.uint8)
    rgba[..., 3] = 255
    mask = np.ascontiguousarray(labels[k // 2 :: k, k // 2 :: k])  # [H, W], centre sample per pixel
    if params.get("fliplr", False):
        rgba = np.ascontiguousarray(rgba[:, ::-1])
        mask = np.ascontiguousarray(mask[:, ::-1])
    return rgba, mask


def split_seed_sequence(seed: int, split: str) -> np.random.SeedSequence:
    """Independent SeedSequence for one split, derived from (seed, split name)."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    digest = hashlib.sha256(split.encode("utf-8")).digest()
    return np.random.SeedSequence([int(seed), int.from_bytes(digest[:8], "little")])


def _write_split(split_dir: Path, n_images: int, rng: np.random.Generator, resolution: int, bar: Any) -> None:
    """Sample, render and write n_images scenes plus parameters.jsonl into split_dir."""
    from PIL import Image

    split_dir.mkdir(parents=True)
    lines: list[str] = []
    for _ in range(n_images):
        params = sample_parameters(rng, resolution)
        rgba, mask = render(params)
        Image.fromarray(rgba).save(split_dir / f"{params['id']}.png", format="PNG")  # RGBA
        Image.fromarray(mask).save(split_dir / f"{params['id']}_mask.png", format="PNG")  # L
        lines.append(json.dumps(params))
        if bar is not None:
            bar.update(1)
    with (split_dir / "parameters.jsonl").open("w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


def generate_two4two(
    out_root: Path | str,
    split_sizes: Mapping[str, int],
    seed: int,
    resolution: int = 128,
    progress: bool = True,
) -> None:
    """Generate a synthetic Two4Two dataset: out_root/<split>/{<id>.png, <id>_mask.png, parameters.jsonl}."""
    out_root = Path(out_root)
    for split, size in split_sizes.items():
        if not split or "/" in split or "\\" in split or split.startswith("."):
            raise ValueError(f"invalid split name {split!r}")
        if int(size) < 0:
            raise ValueError(f"split {split!r}: size must be >= 0, got {size}")
    if int(resolution) <= 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    out_root.mkdir(parents=True, exist_ok=True)
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=sum(int(n) for n in split_sizes.values()), desc="two4two", unit="img")
        except ImportError:
            bar = None
    try:
        for split, size in split_sizes.items():
            if bar is not None:
                bar.set_description(f"two4two {split}")
            rng = np.random.default_rng(split_seed_sequence(seed, split))
            target = out_root / split
            for leftover in out_root.glob(f".{split}.tmp-*"):  # from an interrupted earlier run
                shutil.rmtree(leftover, ignore_errors=True)
            temporary = out_root / f".{split}.tmp-{os.getpid()}"
            try:
                _write_split(temporary, int(size), rng, int(resolution), bar)
                if target.exists():
                    if not target.is_dir():
                        raise DataError(f"{target}: exists and is not a folder")
                    shutil.rmtree(target)
                os.replace(temporary, target)
            finally:
                if temporary.exists():
                    shutil.rmtree(temporary, ignore_errors=True)
    finally:
        if bar is not None:
            bar.close()
