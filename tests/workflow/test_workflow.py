"""Integration: the whole workflow on a tiny config in a temporary directory, checked numerically."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from workflow_runner import TINY_CONFIG, planned_jobs, snakemake
from xai_ssl.io.maps_file import load_attributions
from xai_ssl.io.pairs_file import read_pairs
from xai_ssl.methods import MethodContext, get_method
from xai_ssl.metrics import MetricContext, get_metric
from xai_ssl.models.registry import load_encoder

# tiny_run is a session fixture: under pytest-xdist (README test command, --dist loadgroup) every test that
# uses it runs on one worker, so the tiny workflow is run once
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("tiny_run")]


@pytest.fixture
def run(tiny_run: tuple[Path, Path]) -> tuple[Path, Path]:
    """The session's local run of the tiny config: (work dir, code copy)."""
    return tiny_run


def test_outputs_exist(run: tuple[Path, Path]) -> None:
    work, _ = run
    for rel in (
        "results/tables/tiny/tiny_simclr/scores.md",
        "results/tables/tiny/tiny_simclr/scores.csv",
        "results/tables/tiny/tiny_simclr/per_image.csv",
        "results/figures/tiny/tiny_simclr/attribution_grid.png",
        "results/figures/tiny/tiny_simclr/insertion_deletion_curves.png",
        "results/figures/tiny/tiny_simclr/metric_bars.png",
        "results/figures/tiny/tiny_simclr/metric_panels.png",
        "results/models/tiny_simclr/training_loss.png",
        "results/models/tiny_simclr/quality.json",
        "results/models/tiny_simclr/quality.png",
    ):
        assert (work / rel).stat().st_size > 0, rel
    assert not list(work.rglob("*.tmp*")), "temporary files left behind"


def test_attribution_files_are_exact(run: tuple[Path, Path]) -> None:
    """Stored maps have the expected shapes and equal a recomputation from the stored pairs and model."""
    work, _ = run
    encoder = load_encoder(work / "results/models/tiny_simclr/encoder.pt")
    shapes = {"conditional_occlusion": (7, 7), "gradcam": (4, 4), "input_x_gradient": (32, 32)}
    ids = []
    for method, shape in shapes.items():
        parts = [load_attributions(work / f"results/attributions/tiny/tiny_simclr/{method}/shard-{s}.h5") for s in (0, 1)]
        assert [len(p.image_ids) for p in parts] == [2, 3]
        for part in parts:
            assert tuple(part.map1.shape[1:]) == shape and part.map2 is not None
            assert torch.isfinite(part.map1).all() and torch.isfinite(part.map2).all()
            assert part.attrs["method"] == method and int(part.attrs["seed"]) == 3
            assert "torch" in part.attrs and "wall_time_s" in part.attrs
            spec = get_method(method)
            pairs = read_pairs(work / "results/pairs/tiny.h5", part.indices)
            a, b = pairs.pair(spec.pair_family)
            m1, m2 = spec.fn(encoder, a, b, spec.resolve_params(TINY_CONFIG["methods"][method].get("params"), 32), MethodContext(torch.device("cpu"), 16))
            torch.testing.assert_close(m1, part.map1, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(m2, part.map2, rtol=1e-5, atol=1e-6)
        ids.append([i for p in parts for i in p.image_ids])
    assert ids[0] == ids[1] == ids[2] and len(set(ids[0])) == 5
    assert float(load_attributions(work / "results/attributions/tiny/tiny_simclr/gradcam/shard-0.h5").map1.min()) >= 0


def test_metrics_and_tables(run: tuple[Path, Path]) -> None:
    """Per-image scores equal a recomputation; the summary is their mean; Markdown in the seed's layout."""
    work, _ = run
    encoder = load_encoder(work / "results/models/tiny_simclr/encoder.pt")
    spec = get_metric("insertion_deletion")
    params = spec.resolve_params(TINY_CONFIG["metrics"]["insertion_deletion"]["params"], 32)
    per_image = pd.read_csv(work / "results/tables/tiny/tiny_simclr/per_image.csv", na_values=["NA"], keep_default_na=False)
    assert len(per_image) == 20 and set(per_image["method"]) == set(TINY_CONFIG["methods"])
    attr = load_attributions(work / "results/attributions/tiny/tiny_simclr/gradcam/shard-1.h5")
    pairs = read_pairs(work / "results/pairs/tiny.h5", attr.indices)
    a, b = pairs.pair("crop_aug")
    scores, curves = spec.fn(encoder, a, b, attr.map1, attr.map2, params, MethodContext(torch.device("cpu"), 16))
    stored = per_image[per_image.method == "gradcam"].set_index("image_id").loc[attr.image_ids]
    for col in ("SI", "SD", "CI", "CD", "CI_1", "CI_2", "CD_1", "CD_2"):
        np.testing.assert_allclose(stored[col].to_numpy(), scores[col], atol=2e-6, err_msg=col)
    assert curves["SD"].shape == (3, 32 * 32 // 48 + 2)
    np.testing.assert_allclose(per_image[["CI_1", "CI_2"]].mean(axis=1), per_image["CI"], atol=2e-6)
    assert per_image[["SI", "SD", "CI", "CD"]].abs().le(1.0).all().all()
    with h5py.File(work / "results/metrics/tiny/tiny_simclr/gradcam/shard-1.curves.h5") as f:
        np.testing.assert_allclose(f["CD_1"][()], curves["CD_1"], atol=2e-6)
    table = pd.read_csv(work / "results/tables/tiny/tiny_simclr/scores.csv", index_col="method")
    assert list(table.index) == ["conditional_occlusion", "gradcam", "input_x_gradient", "random_baseline"]  # baselines last
    means = per_image.groupby("method")[["SI", "SD", "CI", "CD"]].mean()
    np.testing.assert_allclose(table[["SI", "SD", "CI", "CD"]].to_numpy(), means.loc[table.index].to_numpy(), atol=2e-6)
    md = (work / "results/tables/tiny/tiny_simclr/scores.md").read_text()
    assert "| method | SI↑ | SD↓ | CI↑ | CD↓ | SAD↓ | SIC↑ | CAD↓ | CID↑ | MS↓ | MS_median↓ | RAND↓ |" in md
    assert f"| gradcam | {table.loc['gradcam', 'SI']:.3f} |" in md


def test_all_paper_metrics_and_the_sanity_check(run: tuple[Path, Path]) -> None:
    """SAD/SIC/CAD/CID, MS and RAND: present, finite where they apply, NA where the paper has NA, equal to a recomputation."""
    work, _ = run
    per_image = pd.read_csv(work / "results/tables/tiny/tiny_simclr/per_image.csv", na_values=["NA"], keep_default_na=False)
    for col in ("SAD", "SIC", "CAD", "CID", "CAD_1", "CAD_2", "CID_1", "CID_2", "ADI_B", "MS", "MS_1", "MS_2", "RAND", "RAND_L1", "RAND_L2"):
        assert col in per_image.columns, col
    positive = per_image["ADI_B"] > 0
    assert per_image.loc[positive, ["SAD", "CAD"]].notna().all().all()
    assert per_image.loc[~positive, ["SAD", "CAD"]].isna().all().all()  # B <= 0: NA drop
    assert (per_image[["SAD", "CAD"]].dropna() >= 0).all().all()
    assert per_image[["SIC", "CID_1", "CID_2"]].isin([0.0, 1.0]).all().all()
    by = {m: g for m, g in per_image.groupby("method")}
    assert by["conditional_occlusion"]["MS"].isna().all()  # the paper's NA
    assert np.isfinite(by["input_x_gradient"]["MS"]).all() and (by["input_x_gradient"]["MS"] > 0).all()
    assert by["gradcam"]["MS"].notna().any()
    pairs_all = read_pairs(work / "results/pairs/tiny.h5")
    first3 = per_image["image_id"].isin(pairs_all.image_ids[:3])  # max_images: 3
    assert per_image.loc[first3, "RAND"].between(-1, 1).all() and per_image.loc[~first3, "RAND"].isna().all()
    np.testing.assert_array_equal(per_image["RAND"].to_numpy(), per_image["RAND_L2"].to_numpy())
    # a recomputation of gradcam shard 1 with the method, params and seed of the attribution file
    encoder = load_encoder(work / "results/models/tiny_simclr/encoder.pt")
    attr = load_attributions(work / "results/attributions/tiny/tiny_simclr/gradcam/shard-1.h5")
    a, b = read_pairs(work / "results/pairs/tiny.h5", attr.indices).pair("crop_aug")
    ctx = MetricContext(
        device=torch.device("cpu"), batch_size=16, method=get_method("gradcam"), method_params=attr.attrs["params"],
        method_key="gradcam", seed=3, image_ids=list(attr.image_ids), indices=[int(i) for i in attr.indices],
    )
    stored = by["gradcam"].set_index("image_id").loc[attr.image_ids]
    for name in ("average_drop_increase", "max_sensitivity", "model_randomisation"):
        spec = get_metric(name)
        scores, _ = spec.fn(encoder, a, b, attr.map1, attr.map2, spec.resolve_params(TINY_CONFIG["metrics"][name]["params"], 32), ctx)
        for col, values in scores.items():
            np.testing.assert_allclose(stored[col].to_numpy(), values, atol=1e-5, rtol=1e-5, err_msg=col)
    table = pd.read_csv(work / "results/tables/tiny/tiny_simclr/scores.csv", index_col="method", na_values=["NA"], keep_default_na=False)
    assert table.loc["gradcam", "MS_median"] == pytest.approx(by["gradcam"]["MS"].median(), abs=2e-6)
    assert table.loc["input_x_gradient", "RAND"] == pytest.approx(by["input_x_gradient"]["RAND"].mean(), abs=2e-6)
    assert table.loc["conditional_occlusion", "na_MS"] == 5 and np.isnan(table.loc["conditional_occlusion", "MS"])
    with h5py.File(work / "results/metrics/tiny/tiny_simclr/gradcam/shard-1.curves.h5") as f:
        recorded = json.loads(f.attrs["metrics"])
        assert recorded["max_sensitivity"]["radius"] == 0.2 and recorded["max_sensitivity"]["n_samples"] == 4
        assert recorded["model_randomisation"]["cascade_levels"] == 2
        assert set(json.loads(f.attrs["metric_wall_time_s"])) == set(TINY_CONFIG["metrics"])


def test_training_history(run: tuple[Path, Path]) -> None:
    work, _ = run
    history = pd.read_csv(work / "results/models/tiny_simclr/training.csv")
    assert list(history["epoch"]) == [1, 2]
    assert np.isfinite(history["loss"]).all() and (history["loss"] > 0).all()


def test_model_card(run: tuple[Path, Path]) -> None:
    """quality.json: the view cosine of the explained pairs, recomputed here from the pairs file and the encoder."""
    work, _ = run
    card = json.loads((work / "results/models/tiny_simclr/quality.json").read_text())
    pairs = read_pairs(work / "results/pairs/tiny.h5")
    enc = load_encoder(work / "results/models/tiny_simclr/encoder.pt")
    with torch.no_grad():
        cos = torch.nn.functional.cosine_similarity(enc(pairs.x1).double(), enc(pairs.x2).double(), dim=1).numpy()
    got = card["view_cosine"]["tiny"]
    assert got["n"] == 5 and got["median"] == pytest.approx(float(np.median(cos)), abs=1e-5)
    assert got["q25"] == pytest.approx(float(np.percentile(cos, 25)), abs=1e-5)
    assert card["probe"]["n_train"] == 48 and card["probe"]["n_test"] == 6
    for p in card["probe"]["labels"].values():
        assert {"encoder", "raw_pixels", "random_encoder", "majority", "margin"} <= set(p)
        assert all(0.0 <= p[k] <= 1.0 for k in ("encoder", "raw_pixels", "random_encoder", "majority"))
    assert "label" in card["probe"]["labels"]


def test_second_run_does_nothing(run: tuple[Path, Path]) -> None:
    work, code = run
    assert planned_jobs(snakemake(work, code, "-n")) == {}


def test_param_change_reruns_only_that_method(run: tuple[Path, Path]) -> None:
    work, code = run
    cfg = yaml.safe_load((work / "config" / "config.yaml").read_text())
    cfg["methods"]["conditional_occlusion"]["params"]["stride"] = 8
    (work / "config" / "changed.yaml").write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(snakemake(work, code, "-n", "--configfile", str(work / "config" / "changed.yaml")))
    assert jobs.get("compute_attributions") == 2 and jobs.get("compute_metrics") == 2  # one method, two shards
    assert not {"train_model", "make_pairs", "generate_synthetic_dataset"} & set(jobs)
    summary = snakemake(work, code, "--summary", "--configfile", str(work / "config" / "changed.yaml")).stdout
    changed = [ln.split("\t")[0] for ln in summary.splitlines() if "params changed" in ln or "update pending" in ln]
    assert any("conditional_occlusion/shard-0.h5" in c for c in changed)
    assert not any("gradcam/shard-0.h5" in c for c in changed)


def test_report(run: tuple[Path, Path]) -> None:
    """The report (a zip: it holds the explorer folder) has the figures, the tables and the explorer."""
    import zipfile

    work, code = run
    snakemake(work, code, "--report", "report.zip")
    names = zipfile.ZipFile(work / "report.zip").namelist()
    for wanted in ("attribution_grid.png", "scores.csv", "report.html"):
        assert any(n.endswith(wanted) for n in names), (wanted, names[:30])
    explorer = {n.rsplit("/", 1)[0] for n in names if n.endswith("/index.html")} & {n.rsplit("/", 1)[0] for n in names if n.endswith("/data.js")}
    assert explorer, names  # the explorer folder (index.html beside its data.js)


def test_bad_config_stops_before_any_job(run: tuple[Path, Path]) -> None:
    work, code = run
    cfg = yaml.safe_load((work / "config" / "config.yaml").read_text())
    cfg["methods"]["gradcam"]["method"] = "grad_cam_typo"
    (work / "config" / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, code, "-n", "--configfile", str(work / "config" / "bad.yaml"), check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "methods.gradcam.method" in text and "grad_cam_typo" in text and "input_x_gradient" in text
