"""Check every output of a run: ``python -m xai_ssl.verify [--directory DIR] [--config FILE ...]``.

Snakemake reruns a job when its inputs, parameters or code change, but it never reads a finished file again:
one truncated, zeroed or edited later (with its modification time kept) is used as it is. This command reads
every output the config asks for and reports, one line each, the files that

* are missing (not built yet: run snakemake), or cannot be opened (truncated, zeroed, not ours);
* lack a dataset or column, or have the wrong shape or images (maps of a shard against its pairs, scores and
  curves against their maps);
* hold NaN or inf where none may be (views, dreamed images, encoder weights and embeddings), or more
  non-finite maps than their own diagnostics record;
* do not match the config: seed, image size, split, resolved method and metric parameters, and the config
  hashes the jobs recorded (recomputed here from the config and the files they were made from).

Each line ends with the command that rebuilds the file (``snakemake --forcerun <file>``). Exit status 0 when
every output is present and sound, 1 otherwise. Nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import yaml

from xai_ssl.io.damaged import rebuild_hint


class Problems:
    """The report: one line per damaged, stale or missing file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lines: list[str] = []
        self.missing: list[str] = []
        self.checked = 0

    def bad(self, rel: str, what: str) -> None:
        self.lines.append(f"PROBLEM {rel}: {what}; {rebuild_hint(rel)}")

    def absent(self, rel: str) -> None:
        self.missing.append(f"MISSING {rel} (not built yet: run snakemake)")

    def exists(self, rel: str) -> bool:
        """True when the file is there (counted as checked); recorded as missing otherwise."""
        if (self.root / rel).exists():
            self.checked += 1
            return True
        self.absent(rel)
        return False


def _json(value: Any) -> Any:
    """``value`` as it reads back from a JSON attribute (tuples as lists, numbers as JSON numbers)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _attr(attrs: dict[str, Any], key: str) -> Any:
    value = attrs.get(key)
    return value.item() if hasattr(value, "item") else value


def _check(report: Problems, rel: str, fn: Callable[[Path], Iterator[str]]) -> bool:
    """Run the checks ``fn`` (yielding problems) on an existing file; a read error is one problem. True if sound."""
    from xai_ssl.data.records import DataError
    from xai_ssl.models.checkpoints import CheckpointError

    if not report.exists(rel):
        return False
    try:
        found = list(fn(report.root / rel))
    except (OSError, KeyError, ValueError, DataError, CheckpointError, json.JSONDecodeError) as exc:
        text = str(exc)
        cut = text.find("rebuild it with")
        text = (text[:cut].removesuffix("it is damaged: ") if cut > 0 else text).rstrip(" ;:")
        found = [text.removeprefix(f"{report.root / rel}: ").removeprefix(f"{rel}: ") or type(exc).__name__]
    for what in found:
        report.bad(rel, what)
    return not found


def verify_run(root: Path, config: dict[str, Any]) -> Problems:
    """Check every output of ``config``'s run under ``root`` (the working directory of snakemake)."""
    import torch

    from xai_ssl.config import validate_config
    from xai_ssl.data.index import read_index
    from xai_ssl.io.download import sha256_file
    from xai_ssl.io.hdf5 import get_json_attr, open_h5, plain_attrs, read_strings
    from xai_ssl.io.pairs_file import shard_range
    from xai_ssl.io.scores_file import read_scores
    from xai_ssl.io.tables_file import read_csv_output, read_training_history
    from xai_ssl.metrics import get_metric
    from xai_ssl.models.registry import read_encoder
    from xai_ssl.plan import Plan
    from xai_ssl.provenance import config_hash

    config = validate_config(config, check_paths=False)
    plan = Plan(config)
    report = Problems(root)
    seed = int(config["seed"])
    pairs_info: dict[str, tuple[list[str], dict[str, Any]]] = {}
    model_hash: dict[str, str] = {}

    def check_seed(attrs: dict[str, Any]) -> Iterator[str]:
        found = _attr(attrs, "seed")
        if found is not None and int(found) != seed:
            yield f"seed {found} in the file, config seed {seed} (stale: made with another config)"

    datasets = list(dict.fromkeys([*plan.datasets, *(config["models"][m]["train_dataset"] for m in plan.models if m in plan.trained_models)]))
    for d in datasets:
        ds = config["datasets"][d]

        def index_checks(path: Path) -> Iterator[str]:
            if not read_index(path):
                yield "dataset index lists no image"

        index_rel = f"results/data/{d}/index.csv"
        _check(report, index_rel, index_checks)
        if d not in plan.datasets:
            continue
        pairs_rel = f"results/pairs/{d}.h5"

        def pairs_checks(path: Path, ds: dict[str, Any] = ds, d: str = d) -> Iterator[str]:
            size = int(ds["image_size"])
            with open_h5(path, "pairs file") as f:
                ids = read_strings(f, "image_id")
                attrs = plain_attrs(f)
                n = len(ids)
                for view in ("x1", "x2", "xt"):
                    shape, dtype = f[view].shape, f[view].dtype
                    if shape != (n, 3, size, size) or dtype != np.uint8:
                        yield f"{view} is {dtype}{list(shape)}, expected uint8[{n}, 3, {size}, {size}]"
                    else:
                        f[view][()]  # every chunk readable
                if "mask1" in f and f["mask1"].shape != (n, size, size):
                    yield f"mask1 has shape {list(f['mask1'].shape)}, expected [{n}, {size}, {size}]"
                if "has_mask1" in f and f["has_mask1"].shape != (n,):
                    yield f"has_mask1 has shape {list(f['has_mask1'].shape)}, expected [{n}]"
            yield from check_seed(attrs)
            if int(attrs.get("image_size", size)) != size:
                yield f"image size {attrs.get('image_size')} in the file, config {size}"
            split = attrs.get("split")
            split = None if split in (None, "null") else split
            if split != ds.get("split"):
                yield f"split {split!r} in the file, config {ds.get('split')!r}"
            if ds.get("n_images") is not None and n != int(ds["n_images"]):
                yield f"{n} images, config n_images {ds['n_images']}"
            if len(set(ids)) != n:
                yield "an image id occurs twice"
            pairs_info[d] = (ids, attrs)

        _check(report, pairs_rel, pairs_checks)

    smoke_size = int(config["datasets"][plan.datasets[0]]["image_size"])  # an input size every run model takes
    for m in plan.models:
        entry = config["models"][m]
        encoder_rel = f"results/models/{m}/encoder.pt"

        def encoder_checks(path: Path, m: str = m, entry: dict[str, Any] = entry) -> Iterator[str]:
            net, extra = read_encoder(path)
            if any(not bool(torch.isfinite(p).all()) for p in net.state_dict().values() if p.is_floating_point()):
                yield "weights hold NaN or inf"
            with torch.no_grad():
                z = net(torch.rand(2, 3, smoke_size, smoke_size, generator=torch.Generator().manual_seed(0)))
            if not bool(torch.isfinite(z).all()) or bool((z.norm(dim=1) < 1e-8).any()):
                yield "the embedding of a test image is NaN, inf or zero"
            expected = config_hash(plan.training_params(SimpleNamespace(model=m)) if m in plan.trained_models else plan.pretrained_params(SimpleNamespace(model=m)))
            if extra.get("config_hash") is not None and extra["config_hash"] != expected:
                yield f"config hash {extra['config_hash']} in the file, {expected} from the config (stale: made with another model entry)"
            if m in plan.trained_models and extra.get("seed") is not None and int(extra["seed"]) != seed:
                yield f"seed {extra['seed']} in the file, config seed {seed} (stale)"
            model_hash[m] = str(extra.get("config_hash") or sha256_file(path)[:16])

        _check(report, encoder_rel, encoder_checks)
        if m in plan.trained_models:
            _check(report, f"results/models/{m}/training.csv", lambda p: iter([] if len(read_training_history(p)) else ["no epoch"]))
        else:
            _check(report, f"results/models/{m}/source.json", lambda p: iter([] if isinstance(json.loads(p.read_text(encoding="utf-8")), dict) else ["not a JSON object"]))

    for d in plan.datasets:
        size = int(config["datasets"][d]["image_size"])
        n_shards = len(plan.shards(d))
        metrics = {name: get_metric(name).resolve_params(config["metrics"][name]["params"], size) for name in plan.metrics}
        for m in plan.models:
            for method in plan.methods_for(m):
                wild = SimpleNamespace(dataset=d, model=m, method=method)
                spec = plan.specs[method]
                resolved = _json(spec.resolve_params(plan.method_params(wild), size))
                for shard in plan.shards(d):
                    maps_rel = f"results/attributions/{d}/{m}/{method}/shard-{shard}.h5"
                    maps_ids: list[str] = []
                    maps_hash: list[str] = []

                    def maps_checks(
                        path: Path, method: str = method, shard: int = shard, d: str = d, m: str = m, resolved: Any = resolved,
                        n_shards: int = n_shards, maps_ids: list[str] = maps_ids, maps_hash: list[str] = maps_hash,
                    ) -> Iterator[str]:
                        with open_h5(path, "attribution file") as f:
                            ids = read_strings(f, "image_id")
                            index = f["index"][()]
                            map1 = f["map1"][()]
                            map2 = f["map2"][()] if "map2" in f else None
                            extra_rows = {k: f["extra"][k].shape[0] for k in f["extra"]} if "extra" in f else {}
                            attrs = {k: _attr(f.attrs, k) for k in f.attrs}
                            params = get_json_attr(f, "params") if "params" in f.attrs else None
                            diagnostics = get_json_attr(f, "diagnostics") if "diagnostics" in f.attrs else {}
                        n = len(ids)
                        if map1.ndim != 3 or map1.shape[0] != n or len(index) != n:
                            yield f"map1 {list(map1.shape)} and index [{len(index)}] do not match its {n} image ids"
                            return
                        if map2 is not None and map2.shape != map1.shape:
                            yield f"map2 {list(map2.shape)} differs from map1 {list(map1.shape)}"
                        for name, rows in extra_rows.items():
                            if rows != n:
                                yield f"extra/{name} has {rows} rows for its {n} image ids"
                        bad = int((~np.isfinite(map1.reshape(n, -1))).any(1).sum()) + (int((~np.isfinite(map2.reshape(n, -1))).any(1).sum()) if map2 is not None else 0)
                        recorded = int(diagnostics.get("nonfinite_maps", 0))
                        if bad > recorded:
                            yield f"NaN or inf in {bad} map(s), but the file records {recorded} (written into after the job?)"
                        yield from check_seed(attrs)
                        if attrs.get("method") != method:
                            yield f"method {attrs.get('method')!r} in the file, expected {method!r}"
                        if params is not None and _json(params) != resolved:
                            yield f"method parameters {params} in the file, {resolved} from the config (stale)"
                        if d in pairs_info:
                            pair_ids, pair_attrs = pairs_info[d]
                            expected = list(shard_range(len(pair_ids), shard, n_shards))
                            if [int(i) for i in index] != expected or ids != [pair_ids[i] for i in expected]:
                                yield f"its images are not shard {shard} of {n_shards} of results/pairs/{d}.h5 (made from another pairs file?)"
                            elif m in model_hash and attrs.get("config_hash") is not None:
                                recomputed = config_hash({"method": method, "registry_method": attrs.get("registry_method"), "params": params, "seed": attrs.get("seed"), "pairs": pair_attrs, "model": model_hash[m]})
                                if recomputed != attrs["config_hash"]:
                                    yield f"config hash {attrs['config_hash']} in the file, {recomputed} from its pairs, encoder and parameters (made from other inputs)"
                        maps_ids.extend(ids)
                        maps_hash.append(str(attrs.get("config_hash", "")))

                    maps_ok = _check(report, maps_rel, maps_checks)
                    scores_rel = f"results/metrics/{d}/{m}/{method}/shard-{shard}.csv"
                    curves_rel = f"results/metrics/{d}/{m}/{method}/shard-{shard}.curves.h5"

                    def scores_checks(path: Path, maps_ok: bool = maps_ok, maps_ids: list[str] = maps_ids) -> Iterator[str]:
                        table = read_scores(path)
                        if maps_ok and list(table["image_id"]) != maps_ids:
                            yield f"its {len(table)} image ids differ from those of its attribution file"

                    def curves_checks(
                        path: Path, maps_ok: bool = maps_ok, maps_ids: list[str] = maps_ids, maps_hash: list[str] = maps_hash, metrics: dict[str, Any] = metrics,
                    ) -> Iterator[str]:
                        with open_h5(path, "curves file") as f:
                            ids = read_strings(f, "image_id")
                            shapes = {k: f[k].shape for k in f if k != "image_id"}
                            attrs = {k: _attr(f.attrs, k) for k in f.attrs}
                        if any(s[0] != len(ids) for s in shapes.values()):
                            yield f"curves {shapes} do not match its {len(ids)} image ids"
                        if maps_ok and ids != maps_ids:
                            yield "its image ids differ from those of its attribution file"
                        yield from check_seed(attrs)
                        if maps_ok and maps_hash and attrs.get("config_hash") is not None:
                            recomputed = config_hash({"metrics": metrics, "attributions": maps_hash[0]})
                            if recomputed != attrs["config_hash"]:
                                yield f"config hash {attrs['config_hash']} in the file, {recomputed} from the config's metric parameters and its maps (stale)"

                    _check(report, scores_rel, scores_checks)
                    _check(report, curves_rel, curves_checks)
            for method in plan.image_methods_for(m):
                fv_rel = f"results/feature_visualisation/{d}/{m}/{method}.h5"

                def fv_checks(path: Path) -> Iterator[str]:
                    with open_h5(path, "feature visualisation file") as f:
                        image, detail = f["image"][()], f["detail"][()]
                        attrs = {k: _attr(f.attrs, k) for k in f.attrs}
                    if image.ndim != 4 or image.shape != detail.shape:
                        yield f"image {list(image.shape)} and detail {list(detail.shape)} differ"
                    if not (np.isfinite(image).all() and np.isfinite(detail).all()):
                        yield "dreamed images hold NaN or inf"
                    yield from check_seed(attrs)

                _check(report, fv_rel, fv_checks)
            tables = f"results/tables/{d}/{m}"
            if plan.methods_for(m):

                def summary_checks(path: Path, m: str = m) -> Iterator[str]:
                    rows = set(read_csv_output(path, "scores table", ["method"], na_values=["NA"], keep_default_na=False)["method"])
                    missing = [x for x in plan.methods_for(m) if x not in rows]
                    if missing:
                        yield f"no row for method(s) {missing}"

                _check(report, f"{tables}/scores.csv", summary_checks)
                _check(report, f"{tables}/per_image.csv", lambda p: iter([] if len(read_csv_output(p, "per-image table", ["method", "image_id"])) else ["no rows"]))
                _check(report, f"{tables}/scores.provenance.json", lambda p: iter([] if isinstance(json.loads(p.read_text(encoding="utf-8")), dict) else ["not a JSON object"]))

    for target in plan.final_targets():
        if target.endswith(".png"):
            _check(report, target, _png_checks)
        elif target.endswith(".md"):
            _check(report, target, lambda p: iter([] if p.read_text(encoding="utf-8").strip() else ["empty"]))
        elif target.endswith("/scores.csv"):
            continue  # checked above
        elif target.endswith(".csv"):  # reference differences
            _check(report, target, lambda p: iter([] if len(read_csv_output(p, "table", ["method"])) else ["no rows"]))
        elif not Path(target).suffix:  # explorer folders
            _check(report, target, lambda p: iter([] if (p / "index.html").is_file() else ["no index.html"]))
    return report


def _png_checks(path: Path) -> Iterator[str]:
    from PIL import Image

    with Image.open(path) as image:
        image.verify()
    return iter(())


def run_config(root: Path, configfiles: list[Path]) -> dict[str, Any]:
    """The config a run used: ``root/config/config.yaml`` (the Snakefile's configfile) with each ``--configfile``
    merged over it in order, as Snakemake merges them (``snakemake.utils.update_config``: mappings key by key,
    everything else replaced)."""
    from snakemake.utils import update_config

    default = root / "config" / "config.yaml"
    config: dict[str, Any] = {}
    for path in ([default] if default.is_file() else []) + list(configfiles):
        with open(path, encoding="utf-8") as fh:
            update_config(config, yaml.safe_load(fh) or {})
    if not config:
        raise FileNotFoundError(f"{default}: no config (run in the workflow's directory or pass --config FILE)")
    return config


def main(argv: list[str] | None = None) -> int:
    """Command line: print one line per problem and a summary; exit status 1 when anything is missing or damaged."""
    parser = argparse.ArgumentParser(prog="python -m xai_ssl.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--directory", "-d", default=".", help="the working directory of the run (default: .)")
    parser.add_argument("--config", "-c", action="append", default=[], type=Path, metavar="FILE",
                        help="the run's --configfile (repeatable), merged over <directory>/config/config.yaml as Snakemake does")
    args = parser.parse_args(argv)
    root = Path(args.directory)
    report = verify_run(root, run_config(root, args.config))
    for line in report.missing + report.lines:
        print(line)
    n = len(report.lines)
    print(f"verify: {report.checked} files checked under {root.resolve()}: {n} problem{'s' if n != 1 else ''}, {len(report.missing)} missing")
    return 1 if report.lines or report.missing else 0


if __name__ == "__main__":
    sys.exit(main())
