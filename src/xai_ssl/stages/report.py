"""Stage ``report`` (rules/report.smk): the figures of the report. The only stage that imports plotting."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from xai_ssl import plots
from xai_ssl.io.maps_file import load_attribution_shards, load_dreamed
from xai_ssl.io.pairs_file import read_pairs
from xai_ssl.io.scores_file import read_curves
from xai_ssl.io.tables_file import read_per_image_table, read_training_history

log = logging.getLogger(__name__)


def by_method(methods: Sequence[str], files: Sequence[str]) -> dict[str, list[Path]]:
    """The files of each method (``methods[i]`` names ``files[i]``), methods in order of first appearance."""
    if len(methods) != len(files):
        raise ValueError("one method name per file")
    grouped: dict[str, list[Path]] = {}
    for method, path in zip(methods, files):
        grouped.setdefault(method, []).append(Path(path))
    return grouped


def plot_attribution_grid(pairs: str, maps: Sequence[str], figure: str, methods: Sequence[str], n_images: int) -> None:
    """Attribution grid of the first ``n_images`` images for every method (``maps``: each method's shards)."""
    data = read_pairs(pairs)
    n = min(n_images, len(data.image_ids))
    method_maps, method_views = {}, {}
    for method, files in by_method(methods, maps).items():
        attributions = load_attribution_shards(files)
        method_maps[method] = (attributions.map1[:n], attributions.map2[:n] if attributions.map2 is not None else None)
        a, b = data.pair(str(attributions.attrs["pair_family"]))
        method_views[method] = (a[:n], b[:n])
    plots.attribution_grid([(data.x1[i], data.x2[i]) for i in range(n)], method_views, method_maps, data.image_ids[:n], Path(figure))


def plot_curves(curves: Sequence[str], figure: str, methods: Sequence[str], title: str, families: dict[str, str] | None = None) -> None:
    """Mean insertion/deletion curves per method (``curves``: each method's shards), grouped by ``families`` (config name -> family)."""
    plots.curves_figure({m: read_curves(files) for m, files in by_method(methods, curves).items()}, Path(figure), title, families)


def plot_metric_bars(
    long: str, figure: str, panels: str, directions: dict[str, str], title: str, families: dict[str, str] | None = None
) -> None:
    """Bar chart of every metric per method with 95 % bootstrap intervals over images and the random baseline's mean, and one panel per metric."""
    per_image = read_per_image_table(long)
    plots.metric_bars(per_image, directions, Path(figure), title, families)
    plots.metric_panels(per_image, directions, Path(panels), title, families=families)


def plot_training_loss(history: str, figure: str, model: str) -> None:
    """Training loss per epoch of a model trained in the workflow."""
    table = read_training_history(history)
    plots.loss_curve(table, Path(figure), title=f"{model}: SimCLR training ({len(table)} epochs)")


def plot_model_card(quality: str, figure: str, model: str) -> None:
    """The model card of a model trained in the workflow: probe accuracies and view cosine (quality.json)."""
    card = json.loads(Path(quality).read_text(encoding="utf-8"))
    plots.model_card(card, Path(figure), title=f"{model}: model card ({card['probe']['n_train']} train / {card['probe']['n_test']} test images)")


def plot_feature_visualisation(images: str, pairs: str, figure: str, n_images: int, title: str) -> None:
    """Rows of dreamed image | condition x2 | detail for the first ``n_images`` images of a feature visualisation."""
    dreamed = load_dreamed(images)
    data = read_pairs(pairs)
    n = min(int(n_images), dreamed.image.shape[0])
    _, conditions = data.pair(str(dreamed.attrs["pair_family"]))
    plots.dream_grid(dreamed.image[:n], conditions[:n].float(), dreamed.detail[:n], dreamed.image_ids[:n], Path(figure), title)


def build_explorer(
    pairs: str, encoder: str, maps: Sequence[str], scores: Sequence[str], curves: Sequence[str], explorer: str, methods: Sequence[str],
    directions: dict[str, str], title: str, families: dict[str, str] | None = None, batch_size: int | str = 32,
) -> None:
    """The offline results explorer of one dataset x model: ``explorer/index.html`` and its data files (docs/explorer.md)."""
    from xai_ssl.explorer import BASELINE_METHODS, base_cosines, explorer_data_from_files, write_explorer
    from xai_ssl.models.registry import load_encoder

    data = read_pairs(pairs)
    shards = by_method(methods, maps)
    pair_families = sorted({str(load_attribution_shards(files[:1]).attrs["pair_family"]) for files in shards.values()})
    cosines = base_cosines(load_encoder(encoder), data, pair_families, batch_size=int(batch_size) if batch_size != "auto" else 32)
    baselines = [m for m, f in (families or {}).items() if f == "baseline"]
    page = explorer_data_from_files(
        Path(pairs), shards, by_method(methods, scores), by_method(methods, curves), base_cosine=cosines, title=title, directions=directions,
        baselines=baselines or BASELINE_METHODS,
    )
    index = write_explorer(Path(explorer), page)
    log.info("explorer of %d images x %d methods: %s (%.1f MB)", len(page.image_ids), len(page.methods), index,
             sum(f.stat().st_size for f in Path(explorer).rglob("*") if f.is_file()) / 2**20)
