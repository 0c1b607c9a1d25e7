"""Workflow level: every method and metric on a tiny DINO ViT (a full training checkpoint written with DINO's key
names) plus the docs' worked example of a ``python`` factory, in one Snakemake run; and the dry run of
config/dino.yaml."""

from __future__ import annotations

import copy
import json
import re
import resource
import time
from pathlib import Path

import h5py
import pandas as pd
import pytest
import torch
import yaml

from helpers import REPO
from vit_layouts import TIMM_KW, TINY, dino_vit_shapes, write_dino_full
from workflow_runner import TINY_CONFIG, copy_code, planned_jobs, snakemake, write_config
from xai_ssl.config import validate_config
from xai_ssl.io.maps_file import load_attributions, load_extra
from xai_ssl.io.pairs_file import read_pairs
from xai_ssl.methods import MethodContext, get_method
from xai_ssl.models.registry import load_encoder

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("vit_run")]

SIDE, G = TINY["side"], TINY["side"] // TINY["patch"]
DOCS = (REPO / "docs" / "models.md").read_text()

# every method defined for a ViT, at tiny settings
VIT_METHODS = {
    "conditional_occlusion": {"window": 8, "stride": 4},
    "context_agnostic_occlusion": {"window": 8, "stride": 4},
    "pairwise_occlusion": {"n_erases": 4},
    "gradcam": {},
    "interaction_cam_mean": {},
    "interaction_cam_max": {},
    "interaction_cam_sa": {},
    "pixel_invariance": {"n_augmentations": 12, "surrogate_size": 8, "epochs": 2},
    "input_x_gradient": {},
    "smooth_grad": {"n_samples": 2},
    "avg_transforms": {},
    "avg_transforms_n": {},
    "vit_attention": {},
    "attention_rollout": {},
    "relax": {"n_masks": 16},
    "lffi_ig": {"n_steps": 4},
    "lffi_gradshap": {"n_samples": 2},
    "cocoa_rise": {"corpus_size": 6, "foil_size": 6, "n_masks": 16},
    "cocoa_ig": {"corpus_size": 6, "foil_size": 6, "n_steps": 4},
    "cocoa_gradshap": {"corpus_size": 6, "foil_size": 6, "n_samples": 2},
    "embedded_gradcam": {"corpus_size": 6, "k": 3},
    "vdsn": {"corpus_size": 6},
    "random_baseline": {},
}
MINE_ONLY = {"input_x_gradient_g": {}}  # guided: defined for the ReLU model only
MINE = ["conditional_occlusion", "gradcam", "input_x_gradient_g", "random_baseline"]
GRID = {"gradcam", "interaction_cam_mean", "interaction_cam_max", "interaction_cam_sa", "embedded_gradcam", "vdsn", "vit_attention", "attention_rollout"}
OCCLUSION = {"conditional_occlusion", "context_agnostic_occlusion"}


def docs_block(marker: str) -> str:
    """The fenced block after ``<!-- example: marker -->`` in docs/models.md."""
    m = re.search(rf"<!-- example: {re.escape(marker)} -->\s*```\w+\n(.*?)```", DOCS, re.DOTALL)
    assert m, marker
    return m.group(1)


def vit_workflow_config() -> dict:
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["datasets"]["tiny"].update(n_shards=1, n_images=4)
    mine = yaml.safe_load(docs_block("config"))["models"]["mine"]
    cfg["models"] = {
        "tiny_vit": {"source": "timm", "arch": "vit_small_patch16_224.dino", "checkpoint": "resources/checkpoints/dino_tiny_full_checkpoint.pth",
                     "model_kwargs": dict(TIMM_KW), "input_size": SIDE},
        "mine": mine,
    }
    cfg["methods"] = {name: {"params": params} for name, params in {**VIT_METHODS, **MINE_ONLY}.items()}
    for name in VIT_METHODS:
        cfg["methods"][name]["models"] = ["tiny_vit", "mine"] if name in MINE else ["tiny_vit"]
    cfg["methods"]["input_x_gradient_g"]["models"] = ["mine"]
    cfg["methods"]["feature_visualisation"] = {"params": {"octaves": 2, "iterations": 2}}
    cfg["metrics"]["max_sensitivity"] = {"params": {"n_samples": 2}}
    cfg["metrics"]["localisation"] = {"params": {}}
    cfg["run"].update(models=["tiny_vit", "mine"], methods=[*VIT_METHODS, *MINE_ONLY, "feature_visualisation"],
                      metrics=["insertion_deletion", "average_drop_increase", "max_sensitivity", "model_randomisation", "localisation"])
    return cfg


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, float]:
    root = tmp_path_factory.mktemp("vitflow")
    code = copy_code(root / "code")
    work = root / "work"
    (work / "config").mkdir(parents=True)
    (work / "resources" / "checkpoints").mkdir(parents=True)
    cfg = vit_workflow_config()
    write_dino_full(work / cfg["models"]["tiny_vit"]["checkpoint"], dino_vit_shapes(), TINY["dim"], seed=31, teacher_ddp=False)
    (work / "my_encoder.py").write_text(docs_block("my_encoder.py"))  # the user's file, outside the package
    import importlib.util

    spec = importlib.util.spec_from_file_location("my_encoder_for_weights", work / "my_encoder.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(5)
    torch.save(mod.MyNet(16, 32).state_dict(), work / cfg["models"]["mine"]["checkpoint"])  # "trained elsewhere"
    write_config(work, cfg)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    snakemake(work, code, timeout=3600)  # ~60 jobs: longer than the default 900 s on a loaded 2-core machine
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"tiny-ViT workflow (+ python example): {wall:.0f} s wall, {cpu:.0f} s CPU (user+sys of all jobs)")
    return work, cfg, wall


def test_outputs_and_per_model_methods(vit_run: tuple) -> None:
    work, _, _ = vit_run
    for model in ("tiny_vit", "mine"):
        for rel in ("tables/tiny/{m}/scores.md", "figures/tiny/{m}/attribution_grid.png", "figures/tiny/{m}/metric_bars.png",
                    "figures/tiny/{m}/feature_visualisation_feature_visualisation.png", "models/{m}/source.json"):
            assert (work / "results" / rel.format(m=model)).stat().st_size > 0, rel
    vit_methods = list(pd.read_csv(work / "results/tables/tiny/tiny_vit/scores.csv")["method"])
    mine_methods = list(pd.read_csv(work / "results/tables/tiny/mine/scores.csv")["method"])
    assert vit_methods == list(VIT_METHODS) and mine_methods == MINE  # guided only on the ReLU model, attention only on the ViT
    info = json.loads((work / "results/models/tiny_vit/source.json").read_text())
    assert info["layout"] == "dino_full" and info["network"] == "teacher" and info["embedding_dim"] == TINY["dim"]
    assert info["model_source"] == "timm" and "class token" in info["embedding"] and info["trunk_channels"] == TINY["dim"]
    mine = json.loads((work / "results/models/mine/source.json").read_text())
    assert mine["arch"] == "python" and mine["arch_params"] == {"factory": "my_encoder.py:build", "kwargs": {"width": 16, "dim": 32}}


def test_every_map_has_its_shape_and_scores_are_finite(vit_run: tuple) -> None:
    work, _, _ = vit_run
    per_image = pd.read_csv(work / "results/tables/tiny/tiny_vit/per_image.csv", na_values=["NA"], keep_default_na=False)
    for method in VIT_METHODS:
        att = load_attributions(work / f"results/attributions/tiny/tiny_vit/{method}/shard-0.h5")
        shape = tuple(att.map1.shape[1:])
        if method in GRID:
            assert shape == (G, G), (method, shape)  # the patch grid
        elif method in OCCLUSION:
            assert shape == (7, 7), (method, shape)
        else:
            assert shape in ((SIDE, SIDE), (8, 8)), (method, shape)  # image resolution (pixel invariance: its surrogate)
        assert torch.isfinite(att.map1).all() and len(att.image_ids) == 4
        rows = per_image[per_image["method"] == method]
        # single-map methods have no simultaneous scores (SI, SD, SAD, SIC need both maps)
        cols = ["CI", "CD", "CAD", "CID"] if get_method(method).n_maps == 1 else ["SI", "SD", "CI", "CD", "SAD", "SIC", "CAD", "CID"]
        assert len(rows) == 4 and rows[cols].notna().all().all(), method
        assert (rows[["PG_obj", "TKI_obj", "RRA_obj"]].notna()).all().all(), method  # localisation on the synthetic masks
    rand = per_image[per_image["method"] == "gradcam"]["RAND"]
    assert rand.notna().sum() == 3  # max_images 3
    assert per_image[per_image["method"] == "vit_attention"]["MS"].notna().all()


def test_stored_maps_equal_a_recomputation(vit_run: tuple) -> None:
    work, cfg, _ = vit_run
    enc = load_encoder(work / "results/models/tiny_vit/encoder.pt")
    for method in ("gradcam", "vit_attention", "attention_rollout", "input_x_gradient"):
        path = work / f"results/attributions/tiny/tiny_vit/{method}/shard-0.h5"
        att = load_attributions(path)
        spec = get_method(method)
        a, b = read_pairs(work / "results/pairs/tiny.h5", att.indices).pair(spec.pair_family)
        ctx = MethodContext(torch.device("cpu"), 16)
        m1, _ = spec.fn(enc, a, b, spec.resolve_params(cfg["methods"][method]["params"], SIDE), ctx)
        torch.testing.assert_close(m1, att.map1, rtol=1e-5, atol=1e-6)
        if method == "vit_attention":
            heads = load_extra(path, "heads")
            assert heads is not None and tuple(heads.shape) == (4, TINY["heads"], G, G)
            torch.testing.assert_close(heads, ctx.extras["heads"], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(heads.mean(1), att.map1, rtol=1e-5, atol=1e-6)
    assert load_extra(work / "results/attributions/tiny/tiny_vit/gradcam/shard-0.h5", "heads") is None


def test_verify_checks_the_methods_of_each_model_and_the_extra_arrays(vit_run: tuple, tmp_path: Path) -> None:
    """``python -m xai_ssl.verify`` expects each model's own methods, and refuses an extra array of the wrong length."""
    import os
    import shutil
    import subprocess
    import sys

    from workflow_runner import snakemake_env

    work, _, _ = vit_run
    code = tmp_path / "code"
    copy_code(code)

    def verify(where: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "xai_ssl.verify"], cwd=where, capture_output=True, text=True, env=snakemake_env(code), timeout=600, check=False)

    proc = verify(work)
    assert proc.returncode == 0 and "0 problems, 0 missing" in proc.stdout, proc.stdout + proc.stderr
    copy = tmp_path / "work"
    shutil.copytree(work, copy, symlinks=True)
    path = copy / "results/attributions/tiny/tiny_vit/vit_attention/shard-0.h5"
    stat = path.stat()
    with h5py.File(path, "a") as f:
        heads = f["extra/heads"][()]
        del f["extra/heads"]
        f.create_dataset("extra/heads", data=heads[:3])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    proc = verify(copy)
    assert proc.returncode == 1 and "extra/heads has 3 rows for its 4 image ids" in proc.stdout, proc.stdout


def test_feature_visualisation_counts_blocks(vit_run: tuple) -> None:
    work, _, _ = vit_run
    with h5py.File(work / "results/feature_visualisation/tiny/tiny_vit/feature_visualisation.h5", "r") as f:
        assert json.loads(f.attrs["runtime_params"])["up_until"] == max(1, TINY["depth"] // 4)
        assert f["image"].shape == (4, 3, SIDE, SIDE)


# --------------------------------------------------------------------------------------------
# config/dino.yaml
# --------------------------------------------------------------------------------------------

DINO = yaml.safe_load((REPO / "config" / "dino.yaml").read_text())


def test_dino_config_is_valid_with_every_applicable_method() -> None:
    from xai_ssl.config import run_methods_for
    from xai_ssl.methods import METHOD_REGISTRY
    from xai_ssl.metrics import METRIC_REGISTRY

    cfg = validate_config(copy.deepcopy(DINO), check_paths=True)
    vit, rn = run_methods_for(cfg, "dino_vits16"), run_methods_for(cfg, "dino_resnet50")
    guided = {"input_x_gradient_g", "smooth_grad_g", "avg_transforms_g", "avg_transforms_gn"}
    attention = {"vit_attention", "attention_rollout"}
    assert set(vit) == set(METHOD_REGISTRY) - guided and set(rn) == set(METHOD_REGISTRY) - attention
    assert set(cfg["run"]["metrics"]) == set(METRIC_REGISTRY) - {"localisation"}  # ImageNet has no masks
    assert cfg["models"]["dino_vits16"]["arch"] == "vit_small_patch16_224.dino" and cfg["models"]["dino_resnet50"]["arch"] == "resnet50"
    broken = copy.deepcopy(DINO)
    broken["methods"]["smooth_grad_g"].pop("models")
    with pytest.raises(Exception, match="'smooth_grad_g' is not defined for model 'dino_vits16'.*GELU"):
        validate_config(broken, check_paths=False)


def test_dino_dry_run(tmp_path: Path) -> None:
    code = copy_code(tmp_path / "code")
    proc = snakemake(tmp_path / "work", code, "-n", "--configfile", str(code / "config" / "dino.yaml"))
    jobs = planned_jobs(proc)
    n_shards = DINO["datasets"]["imagenet_val"]["n_shards"]
    assert jobs["download_checkpoint"] == 2 and jobs["prepare_model"] == 2 and jobs["prepare_imagenet_val"] == 1
    # 22 + 4 baselines on the ViT (no guided methods), 24 + 4 on the ResNet (no attention maps)
    assert jobs["compute_attributions"] == (26 + 28) * n_shards and jobs["compute_metrics"] == (26 + 28) * n_shards
    assert jobs["feature_visualisation"] == 2 and "train_model" not in jobs
    text = proc.stdout + proc.stderr
    assert "resources/checkpoints/dino/dino_deitsmall16_pretrain.pth" in text and "dino_resnet50_pretrain.pth" in text
    assert "attributions/imagenet_val/dino_vits16/vit_attention" in text and "attributions/imagenet_val/dino_resnet50/vit_attention" not in text
    assert "attributions/imagenet_val/dino_resnet50/smooth_grad_g" in text and "attributions/imagenet_val/dino_vits16/smooth_grad_g" not in text


def test_timm_model_downloaded_from_url_with_a_pinned_digest(tmp_path: Path) -> None:
    """A timm entry with ``url`` + ``sha256``: the download rule fetches it (file:// here), the pin is checked."""
    from xai_ssl.io.download import sha256_file

    published = tmp_path / "published" / "dino_tiny_pretrain.pth"
    published.parent.mkdir()
    from vit_layouts import random_state

    torch.save(random_state(dino_vit_shapes(), seed=41), published)
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["models"] = {"tiny_vit": {"source": "timm", "arch": "vit_small_patch16_224.dino", "model_kwargs": dict(TIMM_KW), "input_size": SIDE,
                                  "url": published.as_uri(), "sha256": sha256_file(published),
                                  "checkpoint": "resources/checkpoints/dino/dino_tiny_pretrain.pth"}}
    cfg["run"]["models"] = ["tiny_vit"]
    work = tmp_path / "work"
    (work / "config").mkdir(parents=True)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    code = copy_code(tmp_path / "code")
    jobs = planned_jobs(snakemake(work, code, "-n", "results/models/tiny_vit/source.json"))
    assert jobs == {"download_checkpoint": 1, "prepare_model": 1}
    snakemake(work, code, "results/models/tiny_vit/source.json")
    info = json.loads((work / "results/models/tiny_vit/source.json").read_text())
    assert info["sha256"] == sha256_file(published) and info["sha256_pinned"] and info["layout"] == "timm"
    cfg["models"]["tiny_vit"]["sha256"] = "0" * 64  # another pin: the prepared model is refused
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, code, "--forcerun", "prepare_model", "results/models/tiny_vit/source.json", check=False)
    assert proc.returncode != 0
