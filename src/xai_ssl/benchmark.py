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
"""

from __future__ import annotations

import argparse
import csv
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from xai_ssl.engine import MethodContext, cosine
from xai_ssl.methods.base import METHOD_REGISTRY, get_method
from xai_ssl.methods.conditional_occlusion import occlusion_masks
from xai_ssl.metrics.base import get_metric
from xai_ssl.metrics.insertion_deletion import auc, pixel_ranks, step_images
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
    limit_fps: float | None = None  # the plain forward rate timed in the same rounds as this workload (ours only)

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


WARM_UP = ("ours", "limit")  # variants that run once untimed before the rounds of :func:`race`


def race(fns: dict[str, Callable[[], Any]], device: torch.device, rounds: int = 2, warm: tuple[str, ...] = WARM_UP) -> dict[str, tuple[Any, float]]:
    """Time the functions interleaved, ``rounds`` times each after one warm-up of those in ``warm``; name -> (last result, best seconds).

    Interleaving puts every variant under the same machine conditions (a shared VM drifts by 10 % and
    more within minutes), and the best of the rounds discards slowdowns from other tenants.
    """
    out: dict[str, tuple[Any, float]] = {}
    for name in warm:
        if name in fns:
            fns[name]()
    for _ in range(rounds):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            result = fn()
            sync(device)
            sec = time.perf_counter() - t0
            out[name] = (result, min(sec, out[name][1]) if name in out else sec)
    return out


def calls_made(name: str, rounds: int, warm: tuple[str, ...] = WARM_UP) -> int:
    """How many times :func:`race` calls the function ``name``."""
    return rounds + (name in warm)


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
    else:
        from xai_ssl.models.torchvision_resnet import build_torchvision_resnet_encoder

        enc = build_torchvision_resnet_encoder(name)
    calibrate_batch_norm(enc, device)
    return enc.set_speed(channels_last=channels_last, autocast=autocast)


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


def limit_rate(timings: dict[str, tuple[Any, float]], batch_size: int) -> float:
    """Plain forwards per second from the ``limit`` entry of a :func:`race`."""
    return LIMIT_BATCHES * batch_size / timings["limit"][1]


def bench_limit(enc: Encoder, x: torch.Tensor, batch_size: int, device: torch.device) -> Row:
    """The encoder's plain batched forward throughput at ``batch_size`` (the practical limit)."""
    n = LIMIT_BATCHES * batch_size
    return Row("plain forward", "limit", n, n, race({"limit": limit_fn(enc, x, batch_size)}, device)["limit"][1])


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


def reference_occlusion(enc: Encoder, x1: torch.Tensor, x2: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Seed-style conditional occlusion of x1 [3, H, W]: one window per forward, x2 re-embedded each time -> [K, K]."""
    masks = occlusion_masks(x1.shape[-1], window, stride, x1.device)
    k = int(math.isqrt(masks.shape[0]))
    fill = enc.baseline_pixel[0]
    out = []
    with torch.no_grad():
        base = cosine(enc(x1[None]), enc(x2[None]))
        for m in masks:
            occluded = torch.where(m, fill, x1)[None]
            out.append(base - cosine(enc(occluded), enc(x2[None])))
    return torch.cat(out).view(k, k)


def captum_occlusion(enc: Encoder, x1: torch.Tensor, x2: torch.Tensor, window: int, stride: int, batch_size: int) -> torch.Tensor:
    """Captum ``Occlusion`` of cos(f(x), f(x2)) for x = x1 [3, H, W], baseline 0 in model-input space -> [H, W]."""
    from captum.attr import Occlusion

    with torch.no_grad():
        z2 = enc(x2[None])

    def forward(inp: torch.Tensor) -> torch.Tensor:
        return cosine(enc(inp), z2.expand(inp.shape[0], -1))

    occ = Occlusion(forward)
    baseline = enc.baseline_pixel.expand_as(x1[None])
    with torch.no_grad():
        attr = occ.attribute(
            x1[None], sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
            baselines=baseline, perturbations_per_eval=batch_size,
        )
    return attr[0, 0]  # channels are equal (the window spans all 3)


def window_average(drops: torch.Tensor, size: int, window: int, stride: int) -> torch.Tensor:
    """Per-pixel mean of the drops [K, K] of the windows covering each pixel (Captum's convention) -> [H, W]."""
    masks = occlusion_masks(size, window, stride, drops.device).float()[:, 0]  # [K*K, H, W]
    total = (drops.flatten()[:, None, None] * masks).sum(0)
    count = masks.sum(0)
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


def bench_occlusion(enc: Encoder, x: torch.Tensor, batch_size: int, positions: int, device: torch.device, captum: bool, rounds: int = 2) -> list[Row]:
    """Conditional occlusion of both views of ``x`` pairs: ours vs. the seed-style loop vs. Captum (fp32, contiguous)."""
    plain = plain_copy(enc)
    spec = get_method("conditional_occlusion")
    size = x.shape[-1]
    params = spec.resolve_params(occlusion_params(size, positions), size)
    w, s = params["window"], params["stride"]
    x1, x2 = x[0::2], x[1::2]
    n = x1.shape[0]
    counter = CountingEncoder(enc)
    ctx = MethodContext(device=device, batch_size=batch_size, seeds=[0] * n)
    fns: dict[str, Callable[[], Any]] = {
        "ours": lambda: spec.fn(counter, x1, x2, params, ctx),
        "limit": limit_fn(enc, x, batch_size),
        "reference": lambda: [reference_occlusion(plain, x1[b], x2[b], w, s) for b in range(n)]
        + [reference_occlusion(plain, x2[b], x1[b], w, s) for b in range(n)],
    }
    if captum:
        fns["captum"] = lambda: [captum_occlusion(plain, x1[b], x2[b], w, s, batch_size) for b in range(n)] + [
            captum_occlusion(plain, x2[b], x1[b], w, s, batch_size) for b in range(n)
        ]
    t = race(fns, device, rounds)
    fw = counter.count // calls_made("ours", rounds)
    (m1, _), sec = t["ours"]
    rows = [Row("conditional_occlusion", "ours", fw, n, sec, extra=params, limit_fps=limit_rate(t, batch_size))]
    ref, sec_ref = t["reference"]
    diff = max((ref[b] - m1[b]).abs().max().item() for b in range(n))
    rows.append(Row("conditional_occlusion", "reference", fw, n, sec_ref, check=f"max |ours - reference| = {diff:.1e}"))
    if captum:
        cap, sec_cap = t["captum"]
        diff = max((cap[b] - window_average(m1[b], size, w, s)).abs().max().item() for b in range(n))
        rows.append(Row("conditional_occlusion", "captum", fw, n, sec_cap, check=f"max |window-averaged ours - captum| = {diff:.1e}"))
    return rows


# ---------------------------------------------------------------------------------------------
# Insertion / deletion: ours (registry metric), seed-style loop


def reference_conditional_curve(enc: Encoder, start: torch.Tensor, target: torch.Tensor, ranks: torch.Tensor, cond: torch.Tensor, pps: int) -> torch.Tensor:
    """Seed-style conditional curve: one step per forward, the condition re-embedded at every step -> [T+1]."""
    t = math.ceil(ranks.numel() / pps)
    out = []
    with torch.no_grad():
        for i in range(t + 1):
            img = step_images(start, target, ranks, torch.tensor([i], device=start.device), pps)
            out.append(cosine(enc(img), enc(cond[None])))
    return torch.cat(out)


def reference_simultaneous_curve(enc: Encoder, s1: torch.Tensor, t1: torch.Tensor, r1: torch.Tensor, s2: torch.Tensor, t2: torch.Tensor, r2: torch.Tensor, pps: int) -> torch.Tensor:
    """Seed-style simultaneous curve: both perturbed images embedded, one step at a time -> [T+1]."""
    t = math.ceil(r1.numel() / pps)
    out = []
    with torch.no_grad():
        for i in range(t + 1):
            step = torch.tensor([i], device=s1.device)
            out.append(cosine(enc(step_images(s1, t1, r1, step, pps)), enc(step_images(s2, t2, r2, step, pps))))
    return torch.cat(out)


def reference_insertion_deletion(enc: Encoder, x1: torch.Tensor, x2: torch.Tensor, m1: torch.Tensor, m2: torch.Tensor, params: dict[str, Any]) -> dict[str, list[float]]:
    """SI, SD, CI, CD of every pair with seed-style loops (same ranking, blur and baseline as ours)."""
    import torchvision.transforms.v2.functional as TF

    from xai_ssl.metrics.insertion_deletion import upsample_map

    size, pps = x1.shape[-1], int(params["pixels_per_step"])
    k, sig = int(params["blur_kernel"]), float(params["blur_sigma"])
    fill = enc.baseline_pixel[0].expand_as(x1[0])
    out: dict[str, list[float]] = {n: [] for n in ("SI", "SD", "CI", "CD")}
    for b in range(x1.shape[0]):
        v = [x1[b], x2[b]]
        r = [pixel_ranks(upsample_map(m[b : b + 1], size)[0]) for m in (m1, m2)]
        blur = [TF.gaussian_blur(t, [k, k], [sig, sig]) for t in v]
        cd = [auc(reference_conditional_curve(enc, v[j], fill, r[j], v[1 - j], pps).cpu().numpy()) for j in (0, 1)]
        ci = [auc(reference_conditional_curve(enc, blur[j], v[j], r[j], v[1 - j], pps).cpu().numpy()) for j in (0, 1)]
        out["CD"].append(float(sum(cd) / 2))
        out["CI"].append(float(sum(ci) / 2))
        out["SD"].append(float(auc(reference_simultaneous_curve(enc, v[0], fill, r[0], v[1], fill, r[1], pps).cpu().numpy())))
        out["SI"].append(float(auc(reference_simultaneous_curve(enc, blur[0], v[0], r[0], blur[1], v[1], r[1], pps).cpu().numpy())))
    return out


def bench_insertion_deletion(enc: Encoder, x: torch.Tensor, batch_size: int, steps: int, device: torch.device, rounds: int = 2) -> list[Row]:
    """SI/SD/CI/CD of random maps: ours (batched over steps, condition embedded once) vs. the seed-style loop."""
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
    t = race({
        "ours": lambda: spec.fn(counter, x1, x2, m1, m2, params, ctx),
        "limit": limit_fn(enc, x, batch_size),
        "reference": lambda: reference_insertion_deletion(plain, x1, x2, m1, m2, params),
    }, device, rounds)
    fw = counter.count // calls_made("ours", rounds)
    (scores, _), sec = t["ours"]
    rows = [Row("insertion_deletion", "ours", fw, n, sec, extra={"pixels_per_step": params["pixels_per_step"], "steps": steps},
                limit_fps=limit_rate(t, batch_size))]
    ref, sec_ref = t["reference"]
    diff = max(abs(float(scores[k][b]) - ref[k][b]) for k in ref for b in range(n))
    rows.append(Row("insertion_deletion", "reference", fw, n, sec_ref, check=f"max |ours - reference| AUC = {diff:.1e}"))
    return rows


# ---------------------------------------------------------------------------------------------
# Other registered perturbation methods and metrics: ours only (throughput vs. the limit)

PERTURBATION_METHODS = {
    "context_agnostic_occlusion": lambda size, pos: occlusion_params(size, pos),
    "pairwise_occlusion": lambda size, pos: {},
    "relax": lambda size, pos: {"n_masks": 4 * pos * pos},  # the survey's 3000, truncated like the others
}


def bench_method_throughput(
    enc: Encoder, name: str, x: torch.Tensor, batch_size: int, params: dict[str, Any], device: torch.device, rounds: int = 2
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
        t = race({"ours": lambda: spec.fn(counter, x1, x2, resolved, ctx), "limit": limit_fn(enc, x, batch_size)}, device, rounds)
    except Exception as exc:  # methods needing a corpus etc.: reported, not fatal
        return Row(name, "ours", 0, x1.shape[0], float("nan"), check=f"skipped: {type(exc).__name__}: {exc}"[:120])
    return Row(name, "ours", counter.count // calls_made("ours", rounds), x1.shape[0], t["ours"][1], limit_fps=limit_rate(t, batch_size))


def bench_average_drop(enc: Encoder, x: torch.Tensor, batch_size: int, device: torch.device, rounds: int = 2) -> list[Row]:
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
    t = race({"ours": lambda: spec.fn(counter, x1, x2, m1, m2, params, ctx), "limit": limit_fn(enc, x, batch_size)}, device, rounds)
    return [Row("average_drop_increase", "ours", counter.count // calls_made("ours", rounds), n, t["ours"][1], limit_fps=limit_rate(t, batch_size))]


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
        entry = {
            "workload": r.name,
            "variant": r.variant,
            "forwards": r.forwards,
            "images": r.images,
            "seconds": round(r.seconds, 3),
            "forwards_per_s": round(r.forwards_per_s, 2) if r.forwards else "",
            "images_per_s": round(r.images_per_s, 4),
            "limit_forwards_per_s": round(r.limit_fps or limit.forwards_per_s, 2) if r.variant == "ours" else "",
            "vs_limit": round(r.forwards_per_s / (r.limit_fps or limit.forwards_per_s), 3) if r.forwards and r.variant == "ours" else "",
            "speedup_of_ours": round(r.seconds / ours.seconds, 2) if ours and r.variant in ("reference", "captum") else "",
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
    x = test_images(2 * args.pairs, args.size, device)
    rows: list[Row] = []

    def add(new: list[Row]) -> None:
        for r in new:
            print(f"{r.name:28s} {r.variant:9s} {r.forwards:6d} fw {r.seconds:8.2f} s {r.check}", flush=True)
        rows.extend(new)

    add([bench_limit(enc, x, args.batch_size, device)])
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
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    limits = sorted([rows[0].forwards_per_s] + [r.limit_fps for r in rows if r.limit_fps])
    hours, parts = study_estimate(limits[len(limits) // 2], args.study_images) if args.model == "resnet50" and args.size == 224 else (None, {})
    est = []
    if hours is not None:
        est = [f"Whole-study estimate (paper config: 4 models x 16 methods + metrics, {args.study_images} images, at the median "
               f"measured plain forward rate): {hours:.1f} device-hours on this device.", ""]
        est += [f"- {k}: {v:.2f} h" for k, v in parts.items()]
        print(est[0])
    write_tables(table, header, Path(args.out) / f"benchmark-{device.type}.md", Path(args.out) / f"benchmark-{device.type}.csv", est)
    print(f"wrote {args.out}/benchmark-{device.type}.md")
    return table


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m xai_ssl.benchmark", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="resnet50", help="resnet50 | resnet18 | small_resnet ...")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--pairs", type=int, default=1, help="image pairs per workload")
    p.add_argument("--occlusion-positions", type=int, default=6, help="windows per axis (paper: 21)")
    p.add_argument("--curve-steps", type=int, default=16, help="insertion/deletion steps (paper: 224)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--autocast", default="none", choices=["none", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-captum", action="store_true")
    p.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds per variant (best one counts)")
    p.add_argument("--methods", nargs="*", default=list(PERTURBATION_METHODS), choices=list(PERTURBATION_METHODS),
                   help="further registered perturbation methods to time against the limit")
    p.add_argument("--study-images", type=int, default=1000)
    p.add_argument("--out", default="results/benchmark")
    run(p.parse_args(argv))


if __name__ == "__main__":
    main()
