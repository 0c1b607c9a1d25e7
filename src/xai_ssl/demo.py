"""The live demo: explain an uploaded image with a prepared model, in the browser, offline.

``xai-ssl demo --config config/config.yaml`` (or ``python -m xai_ssl demo``) serves a Gradio app on 127.0.0.1. A
user uploads an image or picks an example, chooses a prepared model of the config and one or more methods, and
sees both views (the seed shown and editable), their cosine, the maps overlaid, the insertion/deletion curves and
the metric values of that pair, and downloads the maps as HDF5 files in the layout of ``results/attributions``.

Everything is computed by :mod:`xai_ssl.api`, the workflow's code path, with the config's settings (image size,
crop scale and seed of the run's first dataset; each method's configured parameters). Before a method runs its
time is estimated as its declared encoder passes (``MethodSpec.passes``) × the time of one pass, measured once
per model, image size and device (:mod:`xai_ssl.cost`); the metrics' passes are counted on a tiny probe encoder
(they do not depend on the encoder). On a CPU, methods estimated above ``demo.cpu_budget_s`` run only after the
user confirms. One job runs at a time (a queue with concurrency 1). Bad uploads (not an image, truncated, more
than ``demo.max_pixels`` pixels) get a message in the page.
"""

from __future__ import annotations

import html
import io
import ipaddress
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xai_ssl.api import Views, configured_method, encoder_path, explain, load_encoder, read_config, score, similarity, views
from xai_ssl.cost import PassCounter, PassTimes, estimate, measure_pass_times
from xai_ssl.data.images import check_pixel_limit
from xai_ssl.data.records import DataError
from xai_ssl.device import resolve_device
from xai_ssl.methods import METHOD_REGISTRY, MethodSpec, get_method
from xai_ssl.models.encoder import Encoder
from xai_ssl.overlay import overlay

log = logging.getLogger(__name__)

OFFLINE_ENV = {  # set before gradio is imported: no analytics, no version check, no hub telemetry, no SSR node server
    "GRADIO_ANALYTICS_ENABLED": "False",
    "GRADIO_SSR_MODE": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
SCORED_METRICS = ("insertion_deletion", "average_drop_increase")  # the pair's curves and values (localisation too when a mask is known)
TABLE_COLUMNS = ("SI", "SD", "CI", "CD", "SAD", "SIC", "CAD", "CID", "PG_obj", "PG_arm")
DISPLAY_SIDE = 256  # views and overlays are shown at least this large (nearest-neighbour upscaling)
LOOPBACK = "127.0.0.1"


@dataclass
class ModelEntry:
    """A model of the config: where its prepared encoder is and the Snakemake target that prepares it."""

    name: str
    path: Path
    target: str

    @property
    def prepared(self) -> bool:
        """Whether ``encoder.pt`` exists."""
        return self.path.is_file()


@dataclass
class MethodResult:
    """One method's outcome for the pair: maps (or dreamed image), values, curves, times, the HDF5 file, or an error."""

    name: str
    spec: MethodSpec
    params: dict[str, Any]
    map1: torch.Tensor | None = None
    map2: torch.Tensor | None = None
    values: dict[str, float] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0
    estimate_s: float | None = None
    h5: Path | None = None
    error: str | None = None


@dataclass
class DemoResult:
    """What one click computes: the views, the cosines and every method's result."""

    views: Views
    model: str
    cosine: dict[str, float]  # pair family -> cos(f(a), f(b))
    methods: list[MethodResult]
    device: str


class DemoCore:
    """The demo's state and computations (no Gradio): models, methods, estimates, one run."""

    def __init__(
        self,
        config: str | Path | dict[str, Any],
        results: str | Path = "results",
        device: str | None = None,
        budget_s: float | None = None,
        work_dir: str | Path | None = None,
    ) -> None:
        self.config_path = None if isinstance(config, dict) else Path(config)
        self.config = read_config(config)
        self.results = Path(results)
        self.dataset = self.config["run"]["datasets"][0]
        ds = self.config["datasets"][self.dataset]
        self.size = int(ds["image_size"])
        self.crop_scale = tuple(float(c) for c in ds["view_crop_scale"])
        self.seed = int(self.config["seed"])
        demo = self.config["demo"]
        self.budget_s = float(demo["cpu_budget_s"] if budget_s is None else budget_s)
        self.max_pixels = int(demo["max_pixels"])
        self.n_examples = int(demo["n_examples"])
        self.device = resolve_device(device or self.config["device"])
        batch = self.config["batch_size"]
        self.batch_size = 32 if batch == "auto" else int(batch)
        self.work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="xai-ssl-demo-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self._encoders: dict[str, Encoder] = {}
        self._times: dict[tuple[str, int], PassTimes] = {}
        self._metric_passes: dict[tuple[int, bool, bool], tuple[float, float]] = {}
        self._corpora: dict[tuple[int, int], Any] = {}
        self._pool: int | None = None

    # ---------------------------------------------------------------- what can be chosen
    def models(self) -> list[ModelEntry]:
        """The config's models (the run's first), with their encoder files and the targets that prepare them."""
        where = f" --configfile {self.config_path}" if self.config_path is not None and self.config_path != Path("config/config.yaml") else ""
        names = list(dict.fromkeys([*self.config["run"]["models"], *self.config["models"]]))
        return [ModelEntry(m, encoder_path(m, self.results), f"snakemake --cores all{where} {encoder_path(m, self.results)}") for m in names]

    def method_names(self) -> list[str]:
        """The config's methods (run first), then every other registered method by its registry name."""
        configured = list(dict.fromkeys([*self.config["run"]["methods"], *self.config["methods"]]))
        used = {configured_registry(self.config, m) for m in configured}
        return configured + sorted(m for m in METHOD_REGISTRY if m not in used and m not in configured)

    def method_label(self, name: str) -> str:
        """A method's name in the page, with what it still needs (corpus methods without the dataset index)."""
        spec = get_method(self.settings(name, None)["method"])
        if spec.needs_corpus and not self.index_path().is_file():
            return f"{name} (needs {self.index_path()})"
        return name

    def settings(self, name: str, model: str | None) -> dict[str, Any]:
        """Keyword arguments of ``explain`` for a method: the config's (with its per-model overrides), else the defaults."""
        return configured_method(self.config, name, model) if name in self.config["methods"] else {"method": name, "key": name}

    def index_path(self) -> Path:
        """The index of the run's first dataset (its images; corpus methods take their reference images from it)."""
        return self.results / "data" / self.dataset / "index.csv"

    def example_images(self) -> list[Path]:
        """Up to ``demo.n_examples`` images: of the run's first dataset when indexed, else generated Two4Two-style scenes."""
        if self.n_examples == 0:
            return []
        if self.index_path().is_file():
            from xai_ssl.data.index import read_index, select_records

            records = select_records(read_index(self.index_path()), self.config["datasets"][self.dataset].get("split"), None)
            found = [r.path for r in records if Path(r.path).is_file()][: self.n_examples]
            if found:
                return [Path(p) for p in found]
        from xai_ssl.data.synthetic_two4two import generate_two4two

        root = self.work / "examples"
        if not (root / "test").is_dir():
            generate_two4two(root, {"test": self.n_examples}, seed=self.seed, progress=False)
        return [p for p in sorted((root / "test").glob("*.png")) if not p.name.endswith("_mask.png")][: self.n_examples]

    # ---------------------------------------------------------------- models and costs
    def encoder(self, model: str) -> Encoder:
        """The prepared encoder of ``model`` (loaded once), or a DataError naming the target that prepares it."""
        if model not in self._encoders:
            entry = {m.name: m for m in self.models()}.get(model)
            if entry is None:
                raise DataError(f"unknown model {model!r}; accepted: {[m.name for m in self.models()]}")
            if not entry.prepared:
                raise DataError(f"model {model!r} is not prepared yet ({entry.path} is missing); prepare it with `{entry.target}`")
            self._encoders[model] = load_encoder(entry.path, config=self.config, device=self.device)
        return self._encoders[model]

    def pass_times(self, model: str, size: int) -> PassTimes:
        """Seconds per forward and backward pass of ``model`` at ``size`` px on the demo's device (measured once)."""
        key = (model, int(size))
        if key not in self._times:
            # at the batch size methods embed their perturbations with (a CPU is ~30 % faster per image at 32 than at 8)
            self._times[key] = measure_pass_times(self.encoder(model), int(size), self.device, batch_size=min(self.batch_size, 32), repeats=1)
            log.info("%s at %d px on %s: %.4f s per forward, %.4f s per backward", model, size, self.device, self._times[key].forward_s, self._times[key].backward_s)
        return self._times[key]

    def metrics_for(self, has_mask: bool) -> dict[str, dict[str, Any]]:
        """The metrics scored for the pair, with the config's parameters (localisation only when the image has a mask)."""
        names = [*SCORED_METRICS, *(["localisation"] if has_mask else [])]
        return {m: dict(self.config["metrics"].get(m, {}).get("params", {})) for m in names}

    def metric_passes(self, size: int, two_maps: bool, has_mask: bool = False) -> tuple[float, float]:
        """(forwards, backwards) of scoring one pair, counted once on a tiny probe encoder (metric passes do not depend on it)."""
        key = (int(size), bool(two_maps), bool(has_mask))
        if key not in self._metric_passes:
            from xai_ssl.models.registry import build_architecture

            probe = build_architecture("small_resnet", width=1, embedding_dim=4, hidden_dim=4).eval()
            x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
            m = torch.rand(size // 4 or 1, size // 4 or 1, generator=torch.Generator().manual_seed(1))
            with PassCounter(probe, size) as counted:
                score(probe, x[0], x[1], maps=(m, m if two_maps else None), metrics=self.metrics_for(False), batch_size=self.batch_size)
            self._metric_passes[key] = (counted.forwards, counted.backwards)
        return self._metric_passes[key]

    def estimates(self, model: str, methods: Sequence[str], size: int) -> list[tuple[str, float | None]]:
        """Estimated seconds per method (maps and scoring; None: the method declares no passes) on this device."""
        times = self.pass_times(model, size)
        out: list[tuple[str, float | None]] = []
        for name in methods:
            kwargs = self.settings(name, model)
            spec = get_method(kwargs["method"])
            params = spec.resolve_params({k: v for k, v in kwargs.items() if k not in ("method", "key")}, int(size))
            if spec.needs_corpus and self.index_path().is_file():  # the corpus holds at most the images the index offers
                params = {**params, "corpus_size": min(int(params["corpus_size"]), self.corpus_pool())}
            est = estimate(spec, params, int(size), times)
            seconds = est.seconds
            if seconds is not None and spec.kind == "map":
                f, b = self.metric_passes(int(size), spec.n_maps == 2)
                seconds += f * times.forward_s + b * times.backward_s
            out.append((name, seconds))
        return out

    def over_budget(self, estimates: Sequence[tuple[str, float | None]]) -> list[str]:
        """Methods that need confirmation: on a CPU, estimated above the budget (or with no estimate)."""
        if self.device.type != "cpu":
            return []
        return [name for name, s in estimates if s is None or s > self.budget_s]

    def corpus_pool(self) -> int:
        """How many reference images the dataset index offers corpus methods (as ``data.corpus.choose_records`` picks them)."""
        from xai_ssl.data.corpus import choose_records
        from xai_ssl.data.index import read_index

        if self._pool is None:
            records = read_index(self.index_path())
            self._pool = len(choose_records(records, self.config["datasets"][self.dataset].get("split"), len(records), self.seed)[0])
        return self._pool

    def corpus(self, spec: MethodSpec, params: dict[str, Any], size: int) -> Any:
        """Reference images of a corpus method: centre views of the run's first dataset, chosen as the workflow does."""
        from xai_ssl.data.corpus import load_corpus

        if not self.index_path().is_file():
            raise DataError(f"method {spec.name!r} needs reference images from the dataset index {self.index_path()}; "
                            f"make it with `snakemake --cores all {self.index_path()}`")
        key = (int(size), int(params["corpus_size"]))
        if key not in self._corpora:
            self._corpora[key] = load_corpus(self.index_path(), int(size), self.config["datasets"][self.dataset].get("split"), key[1], self.seed)
        return self._corpora[key]

    # ---------------------------------------------------------------- one run
    def load_image(self, path: str | Path, size: int, seed: int) -> Views:
        """The views of an uploaded file (header checked against ``max_pixels`` before decoding); DataError when bad."""
        if size < 8 or size > 1024:
            raise DataError(f"image size {size} px: choose 8 to 1024 px")
        check_pixel_limit(path, self.max_pixels, setting="demo.max_pixels")
        return views(path, int(size), seed=int(seed), crop_scale=self.crop_scale)

    def run(
        self, path: str | Path, model: str, methods: Sequence[str], seed: int, size: int, report: Callable[[float, str], None] | None = None
    ) -> DemoResult:
        """Explain and score the pair of the image at ``path`` with every chosen method; maps written to HDF5 files."""
        from xai_ssl.io.maps_file import DreamedImages, save_attributions, save_dreamed
        from xai_ssl.provenance import config_hash, environment

        v = self.load_image(path, size, seed)
        enc = self.encoder(model)
        times = self.pass_times(model, size)
        planned = dict(self.estimates(model, methods, size))
        total = sum(s for s in planned.values() if s is not None) or 1.0
        cos = {family: float(similarity(enc, v, family=family)) for family in ("crop_aug", "interpolation")}
        out_dir = Path(tempfile.mkdtemp(prefix=f"{safe_name(v.image_id)}-", dir=self.work))
        done = 0.0
        results: list[MethodResult] = []
        for name in methods:
            kwargs = self.settings(name, model)
            spec = get_method(kwargs.pop("method"))
            key = kwargs.pop("key")
            res = MethodResult(name, spec, spec.resolve_params(kwargs, int(size)), estimate_s=planned.get(name))
            results.append(res)
            last = [0.0]

            def on_pass(counter: PassCounter, name: str = name, start: float = done, last: list[float] = last) -> None:
                now = time.perf_counter()
                if report is not None and now - last[0] > 0.2:
                    last[0] = now
                    report(min(0.99, (start + counter.seconds(times)) / total), f"{name}")

            t0 = time.perf_counter()
            try:
                corpus = self.corpus(spec, res.params, size) if spec.needs_corpus else None
                with PassCounter(enc, int(size), on_pass):
                    m1, m2 = explain(enc, v, method=spec.name, key=key, seed=seed, batch_size=self.batch_size, corpus=corpus, **kwargs)
                    attrs = {"method": name, "registry_method": spec.name, "pair_family": spec.pair_family, "params": res.params, "seed": int(seed),
                             "model": model, "image_size": int(size), "source": "xai-ssl demo", "params_hash": config_hash(res.params), **environment(self.device)}
                    h5 = out_dir / f"{safe_name(name)}.h5"
                    if spec.kind == "image":
                        save_dreamed(h5, DreamedImages([v.image_id], np.array([0]), m1[None], m2[None], {**attrs, "kind": "image"}))
                    else:
                        res.values, res.curves = score(enc, v, maps=(m1, m2), metrics=self.metrics_for(v.mask1 is not None), method=spec.name, key=key,
                                                       seed=seed, batch_size=self.batch_size, corpus=corpus, method_params=kwargs)
                        save_attributions(h5, [v.image_id], np.array([0]), m1[None], None if m2 is None else m2[None], {**attrs, "shard": 0, "n_shards": 1})
                res.map1, res.map2, res.h5 = m1, m2, h5
            except Exception as exc:  # any failure of one method is reported in the page, the others still run
                log.exception("method %s failed", name)
                res.error = f"{type(exc).__name__}: {exc}"
            res.seconds = time.perf_counter() - t0
            done += planned.get(name) or 0.0
        if report is not None:
            report(1.0, "done")
        return DemoResult(v, model, cos, results, str(self.device))


def configured_registry(config: dict[str, Any], name: str) -> str:
    """The registry name of a configured method."""
    from xai_ssl.config import method_registry_name

    return method_registry_name(config, name)


def safe_name(text: str) -> str:
    """A file-name-safe version of an id or method name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80] or "image"


# ---------------------------------------------------------------- rendering (plain functions of a DemoResult)


def upscale(rgb: np.ndarray, side: int = DISPLAY_SIDE) -> np.ndarray:
    """Nearest-neighbour upscaling of a small uint8 image [S, S, 3] by an integer factor to at least ``side`` px."""
    k = max(1, math.ceil(side / max(1, rgb.shape[0])))
    return np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)


def view_images(result: DemoResult) -> list[tuple[np.ndarray, str]]:
    """The views for the gallery: x1, x2, xt."""
    v = result.views
    return [(upscale(overlay(x, None)), caption) for x, caption in ((v.x1, "x1 · centre view"), (v.x2, "x2 · SimCLR view"), (v.xt, "xt · photometric view"))]


def map_images(result: DemoResult) -> list[tuple[np.ndarray, str]]:
    """Each method's maps over the inputs it explains (feature visualisation: the dreamed image)."""
    out = []
    for r in result.methods:
        if r.map1 is None:
            continue
        if r.spec.kind == "image":
            out.append((upscale(overlay(r.map1, None)), f"{r.name} · dreamed image"))
            continue
        a, b = result.views.pair(r.spec.pair_family)
        out.append((upscale(overlay(a, r.map1)), f"{r.name} · view 1"))
        if r.map2 is not None:
            out.append((upscale(overlay(b, r.map2)), f"{r.name} · view 2"))
    return out


def metrics_html(result: DemoResult) -> str:
    """The metric values of the pair per method; each cell carries the full-precision value in ``data-value``."""
    from xai_ssl.metrics import metric_directions

    directions = metric_directions([*SCORED_METRICS, "localisation"])
    scored = [r for r in result.methods if r.values]
    if not scored:
        return ""
    columns = [c for c in TABLE_COLUMNS if any(c in r.values for r in scored)]
    head = "".join(f"<th>{c} {directions.get(c, '')}</th>" for c in columns)
    rows = []
    for r in scored:
        cells = []
        for c in columns:
            value = r.values.get(c, float("nan"))
            shown = "NA" if not np.isfinite(value) else f"{value:.4f}"
            cells.append(f'<td data-method="{html.escape(r.name)}" data-column="{c}" data-value="{value!r}">{shown}</td>')
        rows.append(f"<tr><th>{html.escape(r.name)}</th>{''.join(cells)}</tr>")
    return f'<table class="xai-metrics"><thead><tr><th>method</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def curves_image(result: DemoResult) -> np.ndarray | None:
    """SI / SD / CI / CD curves of the pair (CI, CD: solid = view 1 given view 2, dashed = view 2 given view 1); RGB array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scored = [r for r in result.methods if r.curves]
    if not scored:
        return None
    fig = Figure(figsize=(12, 3.1), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 4, sharey=True)
    panels = (("SI", "simultaneous insertion ↑"), ("SD", "simultaneous deletion ↓"), ("CI", "conditional insertion ↑"), ("CD", "conditional deletion ↓"))
    colours = [f"C{i}" for i in range(10)]
    for ax, (name, title) in zip(axes, panels, strict=True):
        for i, r in enumerate(scored):
            keys = ((f"{name}_1", "-"), (f"{name}_2", "--")) if name in ("CI", "CD") else ((name, "-"),)
            for k, style in keys:
                if k in r.curves:
                    c = r.curves[k]
                    ax.plot(np.linspace(0, 1, len(c)), c, style, color=colours[i % 10], label=r.name if style == "-" else None)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("fraction of pixels", fontsize=8)
    axes[0].set_ylabel("cosine similarity", fontsize=8)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def summary_markdown(result: DemoResult) -> str:
    """Image id, seed, cosines, per-method time (and estimate) or error."""
    v = result.views
    lines = [
        f"**image** `{v.image_id}` · **seed** {v.seed} · **model** `{result.model}` · {v.x1.shape[-1]} px on {result.device}",
        f"**cos(f(x1), f(x2))** = {result.cosine['crop_aug']:.4f} (crop_aug pair) · cos(f(x1), f(0.1·x1 + 0.9·xt)) = {result.cosine['interpolation']:.4f} (interpolation pair)",
        "",
    ]
    for r in result.methods:
        est = f" (estimated {format_seconds(r.estimate_s)})" if r.estimate_s is not None else ""
        if r.error:
            lines.append(f"- **{r.name}** failed after {format_seconds(r.seconds)}: {html.escape(r.error)}")
        else:
            lines.append(f"- **{r.name}**: {format_seconds(r.seconds)}{est}")
    return "\n".join(lines)


def format_seconds(s: float | None) -> str:
    """'0.42 s', '12 s', '3.5 min', 'unknown'."""
    if s is None:
        return "unknown"
    if s < 10:
        return f"{s:.2f} s"
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.1f} min"


def estimate_markdown(core: DemoCore, estimates: Sequence[tuple[str, float | None]]) -> str:
    """The estimates before running, marking the methods above the CPU budget."""
    slow = set(core.over_budget(estimates))
    lines = [f"**estimated time** on {core.device} (encoder passes × measured time per pass; maps and scoring):"]
    for name, s in estimates:
        flag = f" ⚠ above the {format_seconds(core.budget_s)} budget: asks before running" if name in slow else ""
        lines.append(f"- {name}: {format_seconds(s)}{flag}")
    return "\n".join(lines)


# ---------------------------------------------------------------- the Gradio app


def build_app(core: DemoCore) -> Any:
    """The Gradio Blocks of the demo (import gradio only here)."""
    for k, v in OFFLINE_ENV.items():
        os.environ[k] = v
    import gradio as gr

    models = core.models()
    prepared = [m.name for m in models if m.prepared]
    missing = [m for m in models if not m.prepared]
    method_names = core.method_names()
    default_methods = [m for m in ("gradcam",) if m in method_names]
    examples = core.example_images()
    def fail(message: str) -> tuple:
        return (f"⚠ {message}", "", [], [], "", None, None, gr.update(visible=False))

    def update_estimate(model: str | None, methods: list[str] | None, size: float | None) -> str:
        try:
            if not model:
                return "no prepared model: prepare one with the target shown above"
            if not methods:
                return "choose one or more methods"
            return estimate_markdown(core, core.estimates(model, methods, int(size or core.size)))
        except Exception as exc:  # noqa: BLE001 - shown in the page, never a traceback
            return f"⚠ {exc}"

    def explain_click(file: str | None, model: str | None, methods: list[str] | None, seed: float | None, size: float | None, confirmed: bool,
                      progress: Any) -> tuple:
        try:
            if not file:
                return fail("upload an image or pick an example first")
            if not model:
                return fail("no prepared model: " + "; ".join(f"`{m.target}`" for m in missing))
            if not methods:
                return fail("choose one or more methods")
            size_px = int(size or core.size)
            seed_v = int(seed if seed is not None else core.seed)
            core.load_image(file, size_px, seed_v)  # bad uploads are refused before anything slow
            slow = core.over_budget(core.estimates(model, methods, size_px))
            if slow and not confirmed:
                message = (f"⚠ {', '.join(slow)}: estimated above the {format_seconds(core.budget_s)} budget on this CPU (see the estimate). "
                           "Press **Run anyway** to start, or choose faster methods.")
                return (message, "", [], [], "", None, None, gr.update(visible=True))
            result = core.run(file, model, methods, seed_v, size_px, report=lambda f, d: progress(f, desc=d))
        except DataError as exc:
            return fail(str(exc))
        except Exception as exc:  # never a traceback in the page
            log.exception("demo run failed")
            return fail(f"{type(exc).__name__}: {exc}")
        errors = [f"{r.name}: {r.error}" for r in result.methods if r.error]
        status = ("⚠ " + "; ".join(errors)) if errors else "✓ done"
        files = [str(r.h5) for r in result.methods if r.h5 is not None]
        return (status, summary_markdown(result), view_images(result), map_images(result), metrics_html(result), curves_image(result), files or None,
                gr.update(visible=False))

    def run_clicked(file, model, methods, seed, size, progress=gr.Progress()):  # noqa: B008 - Gradio injects the progress tracker
        return explain_click(file, model, methods, seed, size, False, progress)

    def confirm_clicked(file, model, methods, seed, size, progress=gr.Progress()):  # noqa: B008
        return explain_click(file, model, methods, seed, size, True, progress)

    with gr.Blocks(title="xai-ssl demo", analytics_enabled=False) as app:
        gr.Markdown("# xai-ssl live demo\nExplain why a self-supervised encoder finds two views of an image similar. "
                    f"Config: `{core.config_path or 'given'}`, dataset settings of `{core.dataset}` (crop scale {list(core.crop_scale)}).")
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="image (PNG, JPEG, ...)", file_count="single", type="filepath", elem_id="upload")
                if examples:
                    gr.Examples(examples=[[str(p)] for p in examples], inputs=[upload], label="examples")
                model = gr.Dropdown(choices=prepared, value=prepared[0] if prepared else None, label="model (prepared)", elem_id="model")
                if missing:
                    gr.Markdown("not prepared yet: " + "; ".join(f"`{m.name}`: `{m.target}`" for m in missing), elem_id="missing-models")
                methods = gr.CheckboxGroup(choices=[(core.method_label(m), m) for m in method_names], value=default_methods, label="methods", elem_id="methods")
                with gr.Row():
                    seed = gr.Number(value=core.seed, precision=0, label="seed (views and random draws)", elem_id="seed")
                    size = gr.Number(value=core.size, precision=0, minimum=8, maximum=1024, label="image size (px)", elem_id="size")
                estimate_box = gr.Markdown(elem_id="estimate")
                run_button = gr.Button("Explain", variant="primary", elem_id="run")
                confirm_button = gr.Button("Run anyway", variant="stop", visible=False, elem_id="confirm")
            with gr.Column(scale=2):
                status = gr.Markdown(elem_id="status")
                summary = gr.Markdown(elem_id="summary")
                views_gallery = gr.Gallery(label="views", columns=3, height="auto", format="png", elem_id="views")
                maps_gallery = gr.Gallery(label="maps", columns=4, height="auto", format="png", elem_id="maps")
                metrics = gr.HTML(elem_id="metrics")
                curves = gr.Image(label="insertion / deletion curves of this pair", format="png", elem_id="curves")
                download = gr.File(label="maps (HDF5, the layout of results/attributions)", file_count="multiple", elem_id="download")
        inputs = [upload, model, methods, seed, size]
        outputs = [status, summary, views_gallery, maps_gallery, metrics, curves, download, confirm_button]
        for component in (model, methods, size):
            component.change(update_estimate, [model, methods, size], [estimate_box])
        app.load(update_estimate, [model, methods, size], [estimate_box])
        run_button.click(run_clicked, inputs, outputs)
        confirm_button.click(confirm_clicked, inputs, outputs)
    app.queue(default_concurrency_limit=1)  # one job at a time
    return app


def theme() -> Any:
    """Gradio's default look with system fonts only (no font files or stylesheets fetched)."""
    import gradio as gr

    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or 'localhost')."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def launch(core: DemoCore, host: str = LOOPBACK, port: int | None = 7860, block: bool = True, examples_dirs: Sequence[Path] = ()) -> tuple[Any, str]:
    """Serve the demo on ``host``:``port`` (loopback by default); returns (the app, its local URL)."""
    if not is_loopback(host):
        log.warning("serving on %s: the demo is reachable from other machines on the network", host)
    app = build_app(core)
    allowed = [str(core.work), *(str(p) for p in examples_dirs)]
    _, url, _ = app.launch(
        server_name=host, server_port=port, prevent_thread_lock=not block, share=False, inbrowser=False, quiet=not block, show_error=False,
        theme=theme(), ssr_mode=False, mcp_server=False, pwa=False, enable_monitoring=False, footer_links=["settings"], max_file_size="50mb",
        allowed_paths=allowed,
    )
    return app, url


def main(config: str, host: str = LOOPBACK, port: int = 7860, device: str | None = None, budget_s: float | None = None, results: str = "results") -> None:
    """``xai-ssl demo``: build the demo from a config and serve it until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    core = DemoCore(config, results=results, device=device, budget_s=budget_s)
    prepared = [m.name for m in core.models() if m.prepared]
    log.info("models prepared: %s; not yet: %s", prepared or "none", [m.target for m in core.models() if not m.prepared] or "none")
    examples = core.example_images()
    launch(core, host, port, block=True, examples_dirs=sorted({p.parent for p in examples}))
