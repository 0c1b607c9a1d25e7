"""Throughput benchmark: perturbation methods and metrics against the encoder's plain forward pass.

``python -m xai_ssl.benchmark [--device cpu|cuda] [--model resnet50] [--size 224] [--batch-size 8]``

For every perturbation method and metric it measures forward passes per second and images per
second, and reports them as ratios against, in the same run:

* ``limit``: the encoder's plain batched forward throughput (same device, dtype, layout, batch size);
* ``reference``: a loop in the style of the seed code (one perturbation per forward, the fixed image
  of the pair re-embedded at every forward), computing the same values;
* ``captum``: Captum's ``Occlusion`` with ``perturbations_per_eval`` = the batch size (occlusion only),
  as a user would run it (fp32, contiguous).

Workloads are truncated so that a CPU run takes minutes: occlusion uses the paper's 64 px window
(scaled) with a coarser stride, insertion/deletion uses fewer, larger steps. Throughput in forwards
per second does not depend on the number of steps; per-image times are scaled to the paper's
settings for the whole-study estimate. Results go to a Markdown and a CSV table.

Timing on a shared machine (:func:`paired_race`): a machine whose speed drifts several-fold within
minutes makes any ratio of two separately timed runs meaningless. Every variant therefore runs in short
slices (ours: one call; the reference and Captum: one view or one image of the workload) that alternate
with short plain-forward slices: limit, A, limit, B, limit, ..., the order of A, B, ... reversed every
round. Each slice's rate is divided by the mean rate of the two limit slices around it (linear drift
cancels), and the tables report the median of these paired ratios over the rounds with their range
(``--rounds``, default 5); a speed-up of ours over the reference is the median of the per-round ratios of
their paired ratios. ``--model`` takes any timm name too (``vit_small_patch16_224``: the ViT-S/16 row);
``--batch-size auto`` uses the workflow's fastest-batch picker.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from xai_ssl.engine import MethodContext
from xai_ssl.methods.base import METHOD_REGISTRY, get_method
from xai_ssl.metrics.base import get_metric
from xai_ssl.models.encoder import Encoder


@dataclass
class Row:
    """One benchmark line: a workload, how many forwards it made and how long it took."""

    name: str
    variant: str  # ours | reference | captum | limit
    forwards: int
    images: int
    seconds: float
    check: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    limit_fps: float | None = None  # median plain forward rate of the limit slices paired with this workload (ours only)
    ratio: tuple[float, float, float] | None = None  # (median, min, max) paired ratio: vs the limit (ours), speed-up of ours (others)

    @property
    def forwards_per_s(self) -> float:
        """Forward passes (images through the encoder) per second."""
        return self.forwards / self.seconds

    @property
    def images_per_s(self) -> float:
        """Explained (or scored) images per second."""
        return self.images / self.seconds


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work so that wall times are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Slice:
    """One timed unit of a variant: ``fn()`` does ``units`` of work (forwards of the workload it belongs to)."""

    fn: Callable[[], Any]
    units: float


@dataclass
class Timeline:
    """The slices of a :func:`paired_race` in the order they ran: (variant, seconds, units), and each variant's last result."""

    entries: list[tuple[str, float, float]]
    results: dict[str, Any]

    def rates(self, name: str) -> list[float]:
        """Units per second of each slice of ``name``."""
        return [u / sec for n, sec, u in self.entries if n == name]

    def relative(self, name: str, reference: str = "limit") -> list[float]:
        """Per slice of ``name``: its rate ÷ the mean rate of the ``reference`` slices just before and just after it."""
        out = []
        for j, (n, sec, u) in enumerate(self.entries):
            if n != name:
                continue
            around = [self.entries[i] for i in (self._nearest(j, reference, -1), self._nearest(j, reference, 1)) if i is not None]
            if around:
                out.append((u / sec) / (sum(uu / ss for _, ss, uu in around) / len(around)))
        return out

    def _nearest(self, j: int, name: str, step: int) -> int | None:
        i = j + step
        while 0 <= i < len(self.entries):
            if self.entries[i][0] == name:
                return i
            i += step
        return None

    def vs_limit(self, name: str) -> tuple[float, float, float]:
        """(median, min, max) of the paired ratios rate(name) / rate(limit)."""
        return spread(self.relative(name))

    def speedup(self, faster: str, slower: str) -> tuple[float, float, float]:
        """(median, min, max) over rounds of rel(faster) / rel(slower): how much faster ``faster`` does the same work."""
        a, b = self.relative(faster), self.relative(slower)
        return spread([x / y for x, y in zip(a, b)])

    def seconds(self, name: str, units: float) -> float:
        """Seconds for ``units`` of work at the median rate of ``name``."""
        return units / statistics.median(self.rates(name))


def spread(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def paired_race(slices: dict[str, Slice], device: torch.device, rounds: int = 5, clock: Callable[[], float] = time.perf_counter) -> Timeline:
    """Time short slices alternating with the ``limit`` slice: limit, A, limit, B, limit, ... (others reversed every round).

    Nothing is warmed up here (the callers run each variant once untimed, which also gives the results they
    check). Every non-limit slice has a limit slice right before and right after it, so its paired ratio
    (:meth:`Timeline.relative`) compares rates measured within seconds of each other.
    """
    if "limit" not in slices:
        raise ValueError("paired_race: needs a 'limit' slice")
    others = [n for n in slices if n != "limit"]
    entries: list[tuple[str, float, float]] = []
    results: dict[str, Any] = {}

    def timed(name: str) -> None:
        sync(device)
        t0 = clock()
        results[name] = slices[name].fn()
        sync(device)
        entries.append((name, clock() - t0, float(slices[name].units)))

    timed("limit")
    for r in range(rounds):
        for name in (others if r % 2 == 0 else others[::-1]):
            timed(name)
            timed("limit")
    return Timeline(entries, results)


class CountingEncoder(torch.nn.Module):
    """Wraps an encoder and counts the images it embeds (to report forwards per second)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.inner = encoder
        self.count = 0

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding [B, D]; adds B to the count."""
        self.count += x.shape[0]
        return self.inner(x)


def build_model(name: str, device: torch.device, channels_last: bool, autocast: str) -> Encoder:
    """A randomly initialised (seeded) encoder of the given architecture; no download needed."""
    torch.manual_seed(0)
    if name == "small_resnet":
        from xai_ssl.models.small_resnet import build_small_resnet

        enc = build_small_resnet()
    elif name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
        from xai_ssl.models.torchvision_resnet import build_torchvision_resnet_encoder

        enc = build_torchvision_resnet_encoder(name)
    else:  # any timm name, e.g. vit_small_patch16_224 (the DINO ViT-S/16 architecture): class-token embedding
        from xai_ssl.models.timm_source import build_timm_encoder, default_embedding, model_family

        vit = model_family(name) == "vit"
        enc = build_timm_encoder(name, default_embedding(model_family(name), vit), mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
        if vit:
            spread_weights(enc)
    calibrate_batch_norm(enc, device)
    return enc.set_speed(channels_last=channels_last, autocast=autocast)


def spread_weights(enc: Encoder, seed: int = 0) -> None:
    """Re-draw every weight matrix and token ~ N(0, 1.5² / fan_in), seeded: timm's ViT initialisation (std 0.02, class
    token 1e-6) maps all images to nearly the same class token, which makes every occlusion drop 0 and the checks void."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in enc.parameters():
            if p.ndim >= 2:
                fan_in = p.shape[-1] if p.ndim == 3 else p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / math.sqrt(fan_in)))


def calibrate_batch_norm(enc: Encoder, device: torch.device) -> None:
    """Set batch-norm statistics of a randomly initialised encoder from seeded images, then eval mode.

    Without it a deep random ResNet maps all images to nearly the same embedding (cos ~ 1), which
    makes every occlusion drop zero and the equality checks below meaningless.
    """
    for m in enc.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    enc.to(device).train()
    with torch.no_grad():
        for k in range(3):
            enc(test_images(8, 64, device, seed=100 + k))
    enc.eval()


def plain_copy(enc: Encoder) -> Encoder:
    """The same weights as a user would run them: fp32, contiguous layout."""
    import copy

    out = copy.deepcopy(enc)
    out.trunk.to(memory_format=torch.contiguous_format)
    out.channels_last, out.autocast_dtype = False, None
    return out


def test_images(n: int, size: int, device: torch.device, seed: int = 1234) -> torch.Tensor:
    """Seeded smooth random images [n, 3, size, size] in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, max(2, size // 8), max(2, size // 8), generator=g)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).to(device)


LIMIT_BATCHES = 8  # batches per timing of the plain forward


def limit_fn(enc: Encoder, x: torch.Tensor, batch_size: int) -> Callable[[], None]:
    """``LIMIT_BATCHES`` plain batched forwards of ``batch_size`` images in inference mode (the practical limit)."""
    batch = x[:1].expand(batch_size, -1, -1, -1).contiguous()

    def run() -> None:
        with torch.inference_mode():
            for _ in range(LIMIT_BATCHES):
                enc(batch)

    return run


def limit_slice(enc: Encoder, x: torch.Tensor, batch_size: int) -> Slice:
    """The plain forward slice: ``LIMIT_BATCHES`` batches of ``batch_size`` images."""
    return Slice(limit_fn(enc, x, batch_size), LIMIT_BATCHES * batch_size)


def bench_limit(enc: Encoder, x: torch.Tensor, batch_size: int, device: torch.device, rounds: int = 2) -> Row:
    """The encoder's plain batched forward throughput at ``batch_size`` (the practical limit), median of ``rounds`` timings."""
    fn = limit_fn(enc, x, batch_size)
    fn()  # warm-up
    n = LIMIT_BATCHES * batch_size
    secs = []
    for _ in range(max(1, rounds)):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        secs.append(time.perf_counter() - t0)
    return Row("plain forward", "limit", n, n, statistics.median(secs))


def ours_row(name: str, t: Timeline, forwards: int, images: int, **extra: Any) -> Row:
    """The ``ours`` row of a workload from its paired timeline."""
    return Row(name, "ours", forwards, images, t.seconds("ours", forwards), limit_fps=statistics.median(t.rates("limit")),
               ratio=t.vs_limit("ours"), **extra)


def cycling(fns: list[Callable[[], Any]]) -> Callable[[], Any]:
    """A function that calls the next of ``fns`` at every call (a slice = one part of a workload)."""
    it = itertools.cycle(fns)
    return lambda: next(it)()


# ---------------------------------------------------------------------------------------------
# Occlusion: ours (registry), seed-style loop, Captum


def occlusion_params(size: int, positions: int) -> dict[str, int]:
    """The paper's 64 px window (scaled) with a stride giving ``positions`` windows per axis that tile the image exactly.

    The window grows by at most ``positions - 2`` px so that (size - window) is a multiple of the
    stride: Captum then places the same windows (it adds a clipped window to cover a remainder).
    """
    window = max(1, round(64 * size / 224))
    stride = max(1, (size - window) // max(1, positions - 1))
    return {"window": size - stride * (positions - 1), "stride": stride}


def plain_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of embeddings [B, D] with torch's own function (the reference loops share no helper with ours)."""
    return F.cosine_similarity(a, b, dim=1, eps=1e-8)


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """First row (or column) of every window that fits: 0, stride, 2*stride, ... <= size - window."""
    return list(range(0, size - window + 1, stride))


def reference_occlusion(enc: Encoder, x1: torch.Tensor, x2: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Seed-style conditional occlusion of x1 [3, H, W]: one window per forward, x2 re-embedded each time -> [K, K].

    Written apart from ``methods.conditional_occlusion``: every window is cut out of a copy of x1 by slicing
    (row i of the map = the window's first row i*stride), so it also checks the masks of ours.
    """
    starts = window_starts(x1.shape[-1], window, stride)
    fill = enc.baseline_pixel[0, :, 0, 0]  # [3]
    out = torch.zeros(len(starts), len(starts), device=x1.device)
    with torch.no_grad():
        base = plain_cosine(enc(x1[None]), enc(x2[None]))[0]
        for i, top in enumerate(starts):
            for j, left in enumerate(starts):
                occluded = x1.clone()
                occluded[:, top : top + window, left : left + window] = fill[:, None, None]
                out[i, j] = base - plain_cosine(enc(occluded[None]), enc(x2[None]))[0]
    return out


def captum_occlusion(enc: Encoder, x1: torch.Tensor, x2: torch.Tensor, window: int, stride: int, batch_size: int) -> torch.Tensor:
    """Captum ``Occlusion`` of cos(f(x), f(x2)) for x = x1 [3, H, W], baseline 0 in model-input space -> [H, W]."""
    from captum.attr import Occlusion

    with torch.no_grad():
        z2 = enc(x2[None])

    def forward(inp: torch.Tensor) -> torch.Tensor:
        return plain_cosine(enc(inp), z2.expand(inp.shape[0], -1))

    occ = Occlusion(forward)
    baseline = enc.baseline_pixel.expand_as(x1[None])
    with torch.no_grad():
        attr = occ.attribute(
            x1[None], sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
            baselines=baseline, perturbations_per_eval=batch_size,
        )
    return attr[0, 0]  # channels are equal (the window spans all 3)


def window_average(drops: torch.Tensor, size: int, window: int, stride: int) -> torch.Tensor:
    """Per-pixel mean of the drops [K, K] of the windows covering each pixel (Captum's convention) -> [H, W].

    Drop (i, j) belongs to the window at rows i*stride.., columns j*stride.. (a loop over the windows, no masks of ours).
    """
    total = torch.zeros(size, size, dtype=torch.float64)
    count = torch.zeros(size, size, dtype=torch.float64)
    for i, top in enumerate(window_starts(size, window, stride)):
        for j, left in enumerate(window_starts(size, window, stride)):
            total[top : top + window, left : left + window] += float(drops[i, j])
            count[top : top + window, left : left + window] += 1
    return torch.where(count > 0, total / count.clamp(min=1), 0.0).to(drops.dtype).to(drops.device)


def bench_occlusion(enc: Encoder, x: torch.Tensor, batch_size: int, positions: int, device: torch.device, captum: bool, rounds: int = 5) -> list[Row]:
    """Conditional occlusion of both views of ``x`` pairs: ours vs. the seed-style loop vs. Captum (fp32, contiguous).

    Slices: ours = the whole workload (one call); reference / Captum = one view of it (2n calls cover it).
    Each variant runs once untimed first: warm-up, forward count and the equality checks.
    """
    plain = plain_copy(enc)
    spec = get_method("conditional_occlusion")
    size = x.shape[-1]
    params = spec.resolve_params(occlusion_params(size, positions), size)
    w, s = params["window"], params["stride"]
    x1, x2 = x[0::2], x[1::2]
    n = x1.shape[0]
    counter = CountingEncoder(enc)
    ctx = MethodContext(device=device, batch_size=batch_size, seeds=[0] * n)
    views = [(x1[b], x2[b]) for b in range(n)] + [(x2[b], x1[b]) for b in range(n)]
    m1, m2 = spec.fn(counter, x1, x2, params, ctx)
    fw = counter.count
    ours_maps = [m1[b] for b in range(n)] + [m2[b] for b in range(n)]
    limit_fn(enc, x, batch_size)()
    ref = [reference_occlusion(plain, a, c, w, s) for a, c in views]
    slices = {
        "limit": limit_slice(enc, x, batch_size),
        "ours": Slice(lambda: spec.fn(enc, x1, x2, params, ctx), fw),
        "reference": Slice(cycling([lambda a=a, c=c: reference_occlusion(plain, a, c, w, s) for a, c in views]), fw / len(views)),
    }
    if captum:
        cap = [captum_occlusion(plain, a, c, w, s, batch_size) for a, c in views]
        slices["captum"] = Slice(cycling([lambda a=a, c=c: captum_occlusion(plain, a, c, w, s, batch_size) for a, c in views]), fw / len(views))
    t = paired_race(slices, device, rounds)
    rows = [ours_row("conditional_occlusion", t, fw, n, extra=params)]
    diff = max((r - o).abs().max().item() for r, o in zip(ref, ours_maps))
    rows.append(Row("conditional_occlusion", "reference", fw, n, t.seconds("reference", fw), check=f"max |ours - reference| = {diff:.1e}",
                    ratio=t.speedup("ours", "reference")))
    if captum:
        diff = max((c - window_average(o, size, w, s)).abs().max().item() for c, o in zip(cap, ours_maps))
        rows.append(Row("conditional_occlusion", "captum", fw, n, t.seconds("captum", fw), check=f"max |window-averaged ours - captum| = {diff:.1e}",
                        ratio=t.speedup("ours", "captum")))
    return rows


# ---------------------------------------------------------------------------------------------
# Insertion / deletion: ours (registry metric), seed-style loop


def reference_order(m: torch.Tensor, size: int) -> list[int]:
    """Flat pixel indices of the map m [h, w], bilinearly resized to [size, size], most important first (ties: lower index first).

    Python's sort is stable, so sorting by the negated value keeps equal pixels in index order.
    """
    up = F.interpolate(m[None, None].float(), size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    values = up.flatten().tolist()
    return sorted(range(len(values)), key=lambda i: -values[i])


def reference_curve_images(start: torch.Tensor, target: torch.Tensor, order: list[int], pps: int) -> Iterator[torch.Tensor]:
    """Images [3, H, W] before any step and after each step: step i copies the next ``pps`` pixels of ``order`` from target."""
    img = start.clone()
    yield img.clone()
    for lo in range(0, len(order), pps):
        idx = torch.tensor(order[lo : lo + pps], device=start.device)
        img.flatten(1)[:, idx] = target.flatten(1)[:, idx]
        yield img.clone()


def trapezoid(curve: list[float]) -> float:
    """Area under s_0..s_T over [0, 1] by the trapezoid rule (T equal intervals)."""
    t = len(curve) - 1
    return sum((curve[i] + curve[i + 1]) / 2 for i in range(t)) / t


def reference_conditional_curve(enc: Encoder, start: torch.Tensor, target: torch.Tensor, order: list[int], cond: torch.Tensor, pps: int) -> list[float]:
    """Seed-style conditional curve: one step per forward, the condition re-embedded at every step -> T+1 values."""
    with torch.no_grad():
        return [float(plain_cosine(enc(img[None]), enc(cond[None]))[0]) for img in reference_curve_images(start, target, order, pps)]


def reference_simultaneous_curve(
    enc: Encoder, s1: torch.Tensor, t1: torch.Tensor, o1: list[int], s2: torch.Tensor, t2: torch.Tensor, o2: list[int], pps: int
) -> list[float]:
    """Seed-style simultaneous curve: both perturbed images embedded, one step at a time -> T+1 values."""
    steps = zip(reference_curve_images(s1, t1, o1, pps), reference_curve_images(s2, t2, o2, pps))
    with torch.no_grad():
        return [float(plain_cosine(enc(a[None]), enc(b[None]))[0]) for a, b in steps]


def reference_insertion_deletion(enc: Encoder, x1: torch.Tensor, x2: torch.Tensor, m1: torch.Tensor, m2: torch.Tensor, params: dict[str, Any]) -> dict[str, list[float]]:
    """SI, SD, CI, CD of every pair with seed-style loops (Sammani et al. §4.1), written apart from ``metrics.insertion_deletion``.

    Its own ranking (a stable Python sort of the bilinearly resized map), step images (pixels copied one step at a
    time) and trapezoid AUC; only the blur (torchvision) and the baseline pixel (the model's) are shared.
    """
    import torchvision.transforms.v2.functional as TF

    size, pps = x1.shape[-1], int(params["pixels_per_step"])
    k, sig = int(params["blur_kernel"]), float(params["blur_sigma"])
    fill = enc.baseline_pixel[0].expand_as(x1[0])
    out: dict[str, list[float]] = {n: [] for n in ("SI", "SD", "CI", "CD")}
    for b in range(x1.shape[0]):
        v = [x1[b], x2[b]]
        o = [reference_order(m[b], size) for m in (m1, m2)]
        blur = [TF.gaussian_blur(t, [k, k], [sig, sig]) for t in v]
        cd = [trapezoid(reference_conditional_curve(enc, v[j], fill, o[j], v[1 - j], pps)) for j in (0, 1)]
        ci = [trapezoid(reference_conditional_curve(enc, blur[j], v[j], o[j], v[1 - j], pps)) for j in (0, 1)]
        out["CD"].append(sum(cd) / 2)
        out["CI"].append(sum(ci) / 2)
        out["SD"].append(trapezoid(reference_simultaneous_curve(enc, v[0], fill, o[0], v[1], fill, o[1], pps)))
        out["SI"].append(trapezoid(reference_simultaneous_curve(enc, blur[0], v[0], o[0], blur[1], v[1], o[1], pps)))
    return out


def bench_insertion_deletion(enc: Encoder, x: torch.Tensor, batch_size: int, steps: int, device: torch.device, rounds: int = 5) -> list[Row]:
    """SI/SD/CI/CD of random maps: ours (batched over steps, condition embedded once) vs. the seed-style loop (slices: one image)."""
    spec = get_metric("insertion_deletion")
    size = x.shape[-1]
    params = spec.resolve_params({"pixels_per_step": math.ceil(size * size / steps)}, size)
    x1, x2 = x[0::2], x[1::2]
    n = x1.shape[0]
    g = torch.Generator().manual_seed(7)
    m1, m2 = torch.rand(n, 7, 7, generator=g).to(device), torch.rand(n, 7, 7, generator=g).to(device)
    counter = CountingEncoder(enc)
    ctx = MethodContext(device=device, batch_size=batch_size, seeds=[0] * n)
    plain = plain_copy(enc)
    scores, _ = spec.fn(counter, x1, x2, m1, m2, params, ctx)
    fw = counter.count
    limit_fn(enc, x, batch_size)()
    ref = reference_insertion_deletion(plain, x1, x2, m1, m2, params)
    per_image = [lambda b=b: reference_insertion_deletion(plain, x1[b : b + 1], x2[b : b + 1], m1[b : b + 1], m2[b : b + 1], params) for b in range(n)]
    t = paired_race({
        "limit": limit_slice(enc, x, batch_size),
        "ours": Slice(lambda: spec.fn(enc, x1, x2, m1, m2, params, ctx), fw),
        "reference": Slice(cycling(per_image), fw / n),
    }, device, rounds)
    rows = [ours_row("insertion_deletion", t, fw, n, extra={"pixels_per_step": params["pixels_per_step"], "steps": steps})]
    diff = max(abs(float(scores[k][b]) - ref[k][b]) for k in ref for b in range(n))
    rows.append(Row("insertion_deletion", "reference", fw, n, t.seconds("reference", fw), check=f"max |ours - reference| AUC = {diff:.1e}",
                    ratio=t.speedup("ours", "reference")))
    return rows


# ---------------------------------------------------------------------------------------------
# Other registered perturbation methods and metrics: ours only (throughput vs. the limit)

PERTURBATION_METHODS = {
    "context_agnostic_occlusion": lambda size, pos: occlusion_params(size, pos),
    "pairwise_occlusion": lambda size, pos: {},
    "relax": lambda size, pos: {"n_masks": 4 * pos * pos},  # the survey's 3000, truncated like the others
}


def bench_method_throughput(
    enc: Encoder, name: str, x: torch.Tensor, batch_size: int, params: dict[str, Any], device: torch.device, rounds: int = 5
) -> Row | None:
    """Forwards per second of a registered perturbation method (skipped when not registered or not runnable)."""
    if name not in METHOD_REGISTRY:
        return None
    spec = get_method(name)
    size = x.shape[-1]
    try:
        resolved = spec.resolve_params(params, size)
    except (KeyError, ValueError):
        resolved = spec.resolve_params({}, size)
    x1, x2 = x[0::2], x[1::2]
    counter = CountingEncoder(enc)
    ctx = MethodContext(device=device, batch_size=batch_size, seeds=list(range(x1.shape[0])))
    try:
        spec.fn(counter, x1, x2, resolved, ctx)
    except Exception as exc:  # noqa: BLE001  methods needing a corpus etc.: reported, not fatal
        return Row(name, "ours", 0, x1.shape[0], float("nan"), check=f"skipped: {type(exc).__name__}: {exc}"[:120])
    fw = counter.count
    limit_fn(enc, x, batch_size)()
    t = paired_race({"limit": limit_slice(enc, x, batch_size), "ours": Slice(lambda: spec.fn(enc, x1, x2, resolved, ctx), fw)}, device, rounds)
    return ours_row(name, t, fw, x1.shape[0])


def bench_average_drop(enc: Encoder, x: torch.Tensor, batch_size: int, device: torch.device, rounds: int = 5) -> list[Row]:
    """SAD/SIC/CAD/CID: forwards per second of the metric (a handful of forwards per image)."""
    spec = get_metric("average_drop_increase")
    size = x.shape[-1]
    params = spec.resolve_params({}, size)
    x1, x2 = x[0::2], x[1::2]
    n = x1.shape[0]
    g = torch.Generator().manual_seed(8)
    m1, m2 = torch.rand(n, 7, 7, generator=g).to(device), torch.rand(n, 7, 7, generator=g).to(device)
    counter = CountingEncoder(enc)
    ctx = MethodContext(device=device, batch_size=batch_size, seeds=[0] * n)
    spec.fn(counter, x1, x2, m1, m2, params, ctx)
    fw = counter.count
    limit_fn(enc, x, batch_size)()
    t = paired_race({"limit": limit_slice(enc, x, batch_size), "ours": Slice(lambda: spec.fn(enc, x1, x2, m1, m2, params, ctx), fw)}, device, rounds)
    return [ours_row("average_drop_increase", t, fw, n)]


# ---------------------------------------------------------------------------------------------
# Whole-study estimate

# Forward-equivalents per image at the paper's settings (224 px; a backward counted as 2 forwards).
PAPER_COST_PER_IMAGE = {
    "conditional_occlusion": 2 + 2 * 441,
    "context_agnostic_occlusion": 2 + 4 * 441,
    "pairwise_occlusion": 2 + 200,
    "gradcam": 2 + 2 * 2,
    "interaction_cam (x3)": 3 * (2 + 2 * 2),
    "pixel_invariance": 1000 + 1,
    "input_x_gradient (x2)": 2 * (2 + 2 * 2),
    "smooth_grad (x2)": 2 * 50 * (2 + 2 * 2),
    "avg_transforms (x4)": 4 * (10 + 2 * 10),
    "insertion_deletion (16 methods)": 16 * (2 + 8 * 225),
    "average_drop_increase (16 methods)": 16 * 8,
    "max_sensitivity (11 methods)": 11 * 10 * 6 + 2 * 10 * 50 * 6,
}
# Forward cost of the paper's encoders relative to ResNet-50 (FLOPs; the 2x model has 4x the width^2).
MODEL_COST = {"simclrv2_1x": 1.0, "simclrv2_2x": 3.9, "barlow_twins": 1.05, "simsiam": 1.0}


def study_estimate(forwards_per_s: float, n_images: int) -> tuple[float, dict[str, float]]:
    """Device-hours for the paper config (4 models) on ``n_images`` at the measured forward rate of ResNet-50."""
    per_image = sum(PAPER_COST_PER_IMAGE.values())
    total = sum(per_image * MODEL_COST[m] * n_images for m in MODEL_COST)
    parts = {k: v * sum(MODEL_COST.values()) * n_images / forwards_per_s / 3600 for k, v in PAPER_COST_PER_IMAGE.items()}
    return total / forwards_per_s / 3600, parts


# ---------------------------------------------------------------------------------------------
# Report


def machine_facts(device: torch.device) -> dict[str, str]:
    """Machine, device and versions for the table header."""
    facts = {
        "machine": f"{platform.node()} ({platform.machine()}, {torch.get_num_threads()} torch threads)",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU {platform.processor() or platform.machine()}",
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    return facts


def ratios(rows: list[Row]) -> list[dict[str, Any]]:
    """Table rows: throughput and ratios vs. the limit, the reference loop and Captum (same workload)."""
    limit = next(r for r in rows if r.variant == "limit")
    by_name: dict[str, dict[str, Row]] = {}
    for r in rows:
        by_name.setdefault(r.name, {})[r.variant] = r
    table = []
    for r in rows:
        ours = by_name[r.name].get("ours")
        paired = r.ratio is not None and r.forwards > 0
        entry = {
            "workload": r.name,
            "variant": r.variant,
            "forwards": r.forwards,
            "images": r.images,
            "seconds": round(r.seconds, 3),
            "forwards_per_s": round(r.forwards_per_s, 2) if r.forwards else "",
            "images_per_s": round(r.images_per_s, 4),
            "limit_forwards_per_s": round(r.limit_fps or limit.forwards_per_s, 2) if r.variant == "ours" else "",
            "vs_limit": round(r.ratio[0], 3) if paired and r.variant == "ours" else (
                round(r.forwards_per_s / (r.limit_fps or limit.forwards_per_s), 3) if r.forwards and r.variant == "ours" else ""),
            "vs_limit_range": f"{r.ratio[1]:.3f}-{r.ratio[2]:.3f}" if paired and r.variant == "ours" else "",
            "speedup_of_ours": round(r.ratio[0], 3) if paired and r.variant in ("reference", "captum") else (
                round(r.seconds / ours.seconds, 2) if ours and r.variant in ("reference", "captum") else ""),
            "speedup_range": f"{r.ratio[1]:.3f}-{r.ratio[2]:.3f}" if paired and r.variant in ("reference", "captum") else "",
            "check": r.check,
        }
        table.append(entry)
    return table


def write_tables(table: list[dict[str, Any]], header: dict[str, Any], out_md: Path, out_csv: Path, estimate_lines: list[str]) -> None:
    """Markdown (with the machine header and estimate) and CSV of the benchmark table."""
    out_md.parent.mkdir(parents=True, exist_ok=True)
    cols = list(table[0])
    with out_csv.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*header, *cols])
        w.writeheader()
        for row in table:
            w.writerow({**header, **row})
    lines = [f"- {k}: {v}" for k, v in header.items()]
    lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(row[c]) for c in cols) + " |" for row in table]
    lines += ["", *estimate_lines]
    out_md.write_text("\n".join(lines) + "\n")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run every workload and write the tables; returns the table rows."""
    from xai_ssl.device import resolve_device, set_threads

    device = resolve_device(args.device)
    set_threads(args.threads)
    enc = build_model(args.model, device, args.channels_last, args.autocast)
    if args.batch_size == "auto":
        from xai_ssl.device import choose_batch_size

        args.batch_size = choose_batch_size(enc, args.size, device)
        print(f"batch size auto: {args.batch_size}", flush=True)
    args.batch_size = int(args.batch_size)
    x = test_images(2 * args.pairs, args.size, device)
    rows: list[Row] = []

    def add(new: list[Row]) -> None:
        for r in new:
            print(f"{r.name:28s} {r.variant:9s} {r.forwards:6d} fw {r.seconds:8.2f} s {r.check}", flush=True)
        rows.extend(new)

    add([bench_limit(enc, x, args.batch_size, device, rounds=args.rounds)])
    add(bench_occlusion(enc, x, args.batch_size, args.occlusion_positions, device, captum=not args.no_captum, rounds=args.rounds))
    add(bench_insertion_deletion(enc, x, args.batch_size, args.curve_steps, device, rounds=args.rounds))
    add(bench_average_drop(enc, x, args.batch_size, device, rounds=args.rounds))
    for name in args.methods:
        make = PERTURBATION_METHODS[name]
        row = bench_method_throughput(enc, name, x, args.batch_size, make(args.size, args.occlusion_positions), device, rounds=args.rounds)
        if row is not None:
            add([row])
    table = ratios(rows)
    header = {
        **machine_facts(device),
        "model": f"{args.model} (random init)",
        "image_size": args.size,
        "batch_size": args.batch_size,
        "dtype": "float32" if args.autocast == "none" else f"autocast {args.autocast}",
        "layout": ("channels_last" if args.channels_last else "contiguous") + " (ours and the limit); the reference loop and Captum run as their users do: fp32, contiguous",
        "timing": f"{args.rounds} rounds of short slices, each between two plain-forward slices; ratios = median of the paired ratios (min-max in the _range columns)",
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    limits = sorted([rows[0].forwards_per_s] + [r.limit_fps for r in rows if r.limit_fps])
    hours, parts = study_estimate(limits[len(limits) // 2], args.study_images) if args.model == "resnet50" and args.size == 224 else (None, {})
    est = []
    if hours is not None:
        est = [(f"Whole-study estimate (paper config: 4 models x 16 methods + metrics, {args.study_images} images, at the median "
                f"measured plain forward rate): {hours:.1f} device-hours on this device."), ""]
        est += [f"- {k}: {v:.2f} h" for k, v in parts.items()]
        print(est[0])
    write_tables(table, header, Path(args.out) / f"benchmark-{device.type}.md", Path(args.out) / f"benchmark-{device.type}.csv", est)
    print(f"wrote {args.out}/benchmark-{device.type}.md")
    return table


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m xai_ssl.benchmark", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="resnet50", help="resnet50 | resnet18 | small_resnet | any timm name, e.g. vit_small_patch16_224")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch-size", type=lambda v: v if v == "auto" else int(v), default=8, help="an integer, or auto (the fastest plain-forward batch)")
    p.add_argument("--pairs", type=int, default=1, help="image pairs per workload")
    p.add_argument("--occlusion-positions", type=int, default=6, help="windows per axis (paper: 21)")
    p.add_argument("--curve-steps", type=int, default=16, help="insertion/deletion steps (paper: 224)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--autocast", default="none", choices=["none", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-captum", action="store_true")
    p.add_argument("--rounds", type=int, default=5, help="paired timing rounds per workload (the median of the paired ratios counts)")
    p.add_argument("--methods", nargs="*", default=list(PERTURBATION_METHODS), choices=list(PERTURBATION_METHODS),
                   help="further registered perturbation methods to time against the limit")
    p.add_argument("--study-images", type=int, default=1000)
    p.add_argument("--out", default="results/benchmark")
    run(p.parse_args(argv))


if __name__ == "__main__":
    main()
