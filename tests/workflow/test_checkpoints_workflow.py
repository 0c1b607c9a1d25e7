"""Workflow level: the paper config's full DAG (downloads included) in a dry run, and a real run on
synthetic checkpoints placed by hand plus the shared ImageNet sample; the reference comparison."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from checkpoint_layouts import write_simclrv2, write_torchvision
from helpers import SHARED_DATA, shared_data
from workflow_runner import REPO, copy_code, planned_jobs, snakemake
from xai_ssl.config import validate_config
from xai_ssl.io.download import read_record, sha256_file
from xai_ssl.models.registry import load_encoder, load_pretrained
from xai_ssl.reference import (
    REFERENCE_COLUMNS,
    compare,
    difference_table,
    read_reference,
    write_comparison,
)

# the module fixtures (code copy, tiny paper run) are computed once: one pytest-xdist worker runs this file
pytestmark = pytest.mark.xdist_group("paper_run")

SAMPLE = SHARED_DATA / "imagenet-sample"
PAPER = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
SIXTEEN = [
    "conditional_occlusion", "context_agnostic_occlusion", "pairwise_occlusion", "gradcam", "interaction_cam_mean",
    "interaction_cam_max", "interaction_cam_sa", "pixel_invariance", "input_x_gradient", "input_x_gradient_g",
    "smooth_grad", "smooth_grad_g", "avg_transforms", "avg_transforms_g", "avg_transforms_n", "avg_transforms_gn",
]


# --------------------------------------------------------------------------------------------
# the paper config and the reference table
# --------------------------------------------------------------------------------------------


def test_paper_config_is_valid_and_complete() -> None:
    cfg = validate_config(copy.deepcopy(PAPER), check_paths=True)
    baselines = ["random_baseline", "random_baseline_interpolation", "centre_baseline", "edge_baseline"]  # not in the paper: the chance reference of every table
    assert list(cfg["methods"]) == [*SIXTEEN, "feature_visualisation", *baselines]  # all sixteen rows in the reference order
    assert cfg["run"]["methods"] == [*SIXTEEN, "feature_visualisation", *baselines]  # every row is run
    assert cfg["methods"]["pixel_invariance"]["model_params"]["simclrv2_2x"] == {"epochs": 1000}  # §3.10
    assert cfg["run"]["models"] == ["simclrv2_2x", "barlow_twins", "simclrv2_1x", "simsiam"]
    assert cfg["datasets"]["imagenet_val"]["image_size"] == 224 and cfg["datasets"]["imagenet_val"]["view_crop_scale"] == [0.08, 1.0]
    from xai_ssl.metrics import METRIC_REGISTRY

    assert set(cfg["run"]["metrics"]) == set(METRIC_REGISTRY) - {"localisation"}  # all but the mask-based ones
    assert {cfg["models"][m]["reference"] for m in ("simclrv2_2x", "barlow_twins")} == {"simclrv2_2x", "barlow_twins"}


def test_reference_csv_is_the_spec_table() -> None:
    ref = pd.read_csv(REPO / "config" / "reference_sammani.csv", na_values=["NA"], keep_default_na=False)
    assert len(ref) == 32 and list(ref.columns) == ["model", "method", *REFERENCE_COLUMNS]
    assert list(ref[ref.model == "barlow_twins"].method) == SIXTEEN
    assert read_reference(REPO / "config" / "reference_sammani.csv", "simclrv2_2x").at["gradcam", "MS"] == pytest.approx(2.419)


def test_compare_per_cell_with_na(tmp_path: Path) -> None:
    scores = tmp_path / "scores.csv"
    pd.DataFrame(
        {"method": ["gradcam", "pixel_invariance", "my_method"], "SI": [0.8, 0.5, 0.1], "SD": [0.7, float("nan"), 0.2], "MS": [2.0, 1.0, 3.0], "n_images": [3, 3, 3]}
    ).to_csv(scores, index=False, na_rep="NA")
    long = write_comparison(scores, REPO / "config" / "reference_sammani.csv", "simclrv2_2x", tmp_path / "d.csv", tmp_path / "d.md", "t")
    wide = pd.read_csv(tmp_path / "d.csv", index_col="method", na_values=["NA"], keep_default_na=False)
    assert list(wide.index) == [*SIXTEEN, "my_method"] and list(wide.columns) == list(REFERENCE_COLUMNS)
    assert wide.at["gradcam", "SI"] == pytest.approx(0.8 - 0.798) and wide.at["gradcam", "MS"] == pytest.approx(2.0 - 2.419)
    assert math.isnan(wide.at["gradcam", "CI"])  # we have no CI
    assert math.isnan(wide.at["pixel_invariance", "SI"])  # NA in the reference
    assert math.isnan(wide.at["smooth_grad", "SI"]) and math.isnan(wide.at["my_method", "SI"])  # missing on one side
    assert int(long["difference"].notna().sum()) == 3
    md = (tmp_path / "d.md").read_text()
    assert "| gradcam | +0.002 (0.800 / 0.798) | -0.036 (0.700 / 0.736) | NA |" in md and "3 of 153 cells compared" in md
    assert difference_table(compare(long.pivot(index="method", columns="metric", values="ours"), read_reference(REPO / "config" / "reference_sammani.csv", "barlow_twins"))).shape == (17, 9)


# --------------------------------------------------------------------------------------------
# workflow: dry run of the paper config, real run on hand-placed synthetic checkpoints
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_code(tmp_path_factory.mktemp("paper") / "code")




@pytest.mark.integration
def test_paper_dry_run_shows_downloads(code: Path, tmp_path: Path) -> None:
    """Without any checkpoint or ImageNet file, the dry run plans every download, conversion and comparison."""
    proc = snakemake(tmp_path, code, "-n", "--configfile", str(code / "config" / "paper.yaml"))
    jobs = planned_jobs(proc)
    assert jobs["download_checkpoint"] == 2 and jobs["download_simclrv2_tf"] == 2 and jobs["convert_simclrv2"] == 2
    assert jobs["prepare_model"] == 4 and jobs["prepare_imagenet_val"] == 1 and jobs["compare_reference"] == 2
    n_shards = PAPER["datasets"]["imagenet_val"]["n_shards"]
    assert jobs["compute_attributions"] == 4 * (16 + 4) * n_shards and "train_model" not in jobs  # + the four baselines
    assert jobs["feature_visualisation"] == 4
    text = proc.stdout + proc.stderr
    assert "resources/checkpoints/barlow_twins/checkpoint.pth" in text and "r50_2x_sk0/model.ckpt-250228.data-00000-of-00001" in text


def tiny_config(sample: Path) -> dict:
    """The paper config cut down: 2 sample images at 64 px, a hand-placed SimCLRv2 1x, two methods, one metric.

    (The ResNet-18 ``baseline`` is defined but not run: its branch is the dry-run check of a second model.)
    """
    cfg = copy.deepcopy(PAPER)
    cfg.update(device="cpu", batch_size=16, progress=False)
    cfg["datasets"]["imagenet_val"].update(path=str(sample), pattern="*.JPEG", n_images=2, image_size=64, n_shards=1)
    cfg["models"] = {
        "simclrv2_1x": {"source": "simclrv2", "width": 1, "checkpoint": "resources/checkpoints/simclrv2/r50_1x_sk0_ema.pth", "reference": "simclrv2_2x"},
        "baseline": {"source": "torchvision_resnet", "variant": "resnet18", "checkpoint": "resources/checkpoints/resnet18.pth"},
    }
    cfg["metrics"]["insertion_deletion"]["params"] = {"pixels_per_step": 1024, "blur_kernel": 5, "blur_sigma": 2.0}
    cfg["run"].update(models=["simclrv2_1x"], methods=["gradcam", "input_x_gradient"], metrics=["insertion_deletion"])
    cfg["report"]["n_grid_images"] = 2
    return cfg


@pytest.fixture(scope="module")
def tiny_paper_run(code: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    shared_data("imagenet-sample")
    work = tmp_path_factory.mktemp("paper_work")
    cfg = tiny_config(SAMPLE)
    (work / "resources" / "checkpoints" / "simclrv2").mkdir(parents=True)
    write_simclrv2(work / cfg["models"]["simclrv2_1x"]["checkpoint"], width=1, seed=5)
    write_torchvision(work / cfg["models"]["baseline"]["checkpoint"], "resnet18", seed=6)
    (work / "tiny_paper.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(work, code, "--resources", "gpu=2", "--configfile", str(work / "tiny_paper.yaml"))  # 2 torch jobs at once on CPU
    return work, cfg


@pytest.mark.integration
def test_tiny_paper_run(tiny_paper_run: tuple[Path, dict], code: Path) -> None:
    work, cfg = tiny_paper_run
    index = pd.read_csv(work / "results/data/imagenet_val/index.csv")
    assert list(index["image_id"]) == sorted(p.stem for p in SAMPLE.glob("*.JPEG"))[:2]
    for m in ("simclrv2_1x",):
        for rel in ("scores.csv", "scores.md", "per_image.csv"):
            assert (work / f"results/tables/imagenet_val/{m}/{rel}").stat().st_size > 0
        assert (work / f"results/figures/imagenet_val/{m}/attribution_grid.png").stat().st_size > 0
        table = pd.read_csv(work / f"results/tables/imagenet_val/{m}/scores.csv", index_col="method", na_values=["NA"], keep_default_na=False)
        assert list(table.index) == ["gradcam", "input_x_gradient"] and table[["SI", "SD", "CI", "CD"]].notna().all().all()
        ckpt = work / cfg["models"][m]["checkpoint"]
        info = json.loads((work / f"results/models/{m}/source.json").read_text())
        assert info["sha256"] == sha256_file(ckpt) == read_record(ckpt)  # trusted on first use, recorded beside the file
    info = json.loads((work / "results/models/simclrv2_1x/source.json").read_text())
    assert info["embedding_dim"] == 128 and info["trunk_channels"] == 2048 and not info["normalised"]
    # the prepared encoder equals the strict load of the hand-placed file
    x = torch.rand((2, 3, 64, 64), generator=torch.Generator().manual_seed(0))
    ref, _, _ = load_pretrained("simclrv2", work / cfg["models"]["simclrv2_1x"]["checkpoint"], width=1)
    with torch.no_grad():
        torch.testing.assert_close(load_encoder(work / "results/models/simclrv2_1x/encoder.pt")(x), ref(x))
    diff = pd.read_csv(work / "results/tables/imagenet_val/simclrv2_1x/reference_diff.csv", index_col="method", na_values=["NA"], keep_default_na=False)
    ours = pd.read_csv(work / "results/tables/imagenet_val/simclrv2_1x/scores.csv", index_col="method")
    assert list(diff.index) == SIXTEEN
    assert diff.at["gradcam", "SI"] == pytest.approx(ours.at["gradcam", "SI"] - 0.798, abs=1e-5)
    assert diff.loc["smooth_grad"].isna().all() and math.isnan(diff.at["gradcam", "MS"])
    assert planned_jobs(snakemake(work, code, "-n", "--configfile", str(work / "tiny_paper.yaml"))) == {}


@pytest.mark.integration
def test_failed_download_names_url_and_path(tiny_paper_run: tuple[Path, dict], code: Path) -> None:
    """An unreachable checkpoint fails only its own branch; the message says where to put the file by hand.

    Also: a second model placed by hand (``baseline``) joins the finished run without rerunning it.
    """
    work, cfg = tiny_paper_run
    cfg = copy.deepcopy(cfg)
    url = (work / "nowhere" / "checkpoint_0099.pth.tar").as_uri()
    cfg["models"]["simsiam"] = {"source": "simsiam", "url": url, "checkpoint": "resources/checkpoints/simsiam/checkpoint_0099.pth.tar"}
    cfg["run"]["models"] += ["baseline", "simsiam"]
    (work / "broken.yaml").write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(snakemake(work, code, "-n", "--configfile", str(work / "broken.yaml")))
    assert jobs["download_checkpoint"] == 1 and jobs["prepare_model"] == 2 and jobs["compute_attributions"] == 4  # the new models only
    assert not {"make_pairs", "prepare_imagenet_val", "compare_reference"} & set(jobs)  # the rest is unaffected
    target = "resources/checkpoints/simsiam/checkpoint_0099.pth.tar"  # before --configfile, which takes several values
    proc = snakemake(work, code, target, "--configfile", str(work / "broken.yaml"), check=False)
    assert proc.returncode != 0
    log = (work / "logs/download_checkpoint/resources/checkpoints/simsiam/checkpoint_0099.pth.tar.log").read_text()
    assert url in log and str((work / "resources/checkpoints/simsiam/checkpoint_0099.pth.tar").resolve()) in log and "by hand" in log
    assert not (work / "resources/checkpoints/simsiam/checkpoint_0099.pth.tar").exists()
