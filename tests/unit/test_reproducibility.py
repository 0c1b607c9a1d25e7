"""Reproducibility and provenance: bit-identical maps and metrics on CPU, stored views, provenance in every output, HDF5 readers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from helpers import aggregate, write_pairs
from xai_ssl.data.records import ImageRecord
from xai_ssl.engine import explain_pairs
from xai_ssl.io.maps_file import load_attributions
from xai_ssl.io.pairs_file import count_pairs, read_pairs
from xai_ssl.io.scores_file import read_curves_attrs
from xai_ssl.methods import get_method
from xai_ssl.models import build_architecture
from xai_ssl.models.registry import save_encoder
from xai_ssl.pairs import make_views
from xai_ssl.stages.attribution import compute_attributions
from xai_ssl.stages.evaluation import compute_metrics

CPU = torch.device("cpu")
S = 24
METHODS = {"gradcam": {}, "input_x_gradient": {}, "conditional_occlusion": {"window": 8, "stride": 4}}
METRICS = {"insertion_deletion": {"pixels_per_step": 24}, "max_sensitivity": {"n_samples": 2}}
PROVENANCE_KEYS = ("config_hash", "code_version", "seed")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[ImageRecord]]:
    """A pairs file of 3 random images and a tiny encoder checkpoint."""
    root = tmp_path_factory.mktemp("repro")
    rng = np.random.default_rng(0)
    records = []
    for i in range(3):
        path = root / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(path)
        records.append(ImageRecord(f"im{i}", path))
    write_pairs(records, root / "pairs.h5", S, seed=5, progress=False, crop_scale=(0.3, 1.0))
    torch.manual_seed(0)
    params = {"width": 4, "embedding_dim": 8, "hidden_dim": 16}
    save_encoder(build_architecture("small_resnet", **params), root / "encoder.pt", "small_resnet", params, extra={"config_hash": "model-cfg"})
    return root / "pairs.h5", root / "encoder.pt", records


@pytest.mark.parametrize("method", sorted(METHODS))
def test_maps_are_bit_identical_in_process(inputs: tuple[Path, Path, list], method: str) -> None:
    """The same method on the same pairs twice gives bitwise equal maps (seeded per image)."""
    pairs_h5, model, _ = inputs
    from xai_ssl.models.registry import load_encoder

    enc = load_encoder(model)
    pairs = read_pairs(pairs_h5)
    spec = get_method(method)
    params = spec.resolve_params(METHODS[method], S)
    a1, b1 = explain_pairs(enc, pairs, spec, params, 3, CPU, 4, progress=False)
    a2, b2 = explain_pairs(enc, pairs, spec, params, 3, CPU, 4, progress=False)
    assert torch.equal(a1, a2) and (b1 is None or torch.equal(b1, b2))


def h5_contents(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file as arrays."""
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}


def test_two_runs_write_identical_files_with_provenance(inputs: tuple[Path, Path, list], tmp_path: Path) -> None:
    """attribute + evaluate twice: equal datasets bit for bit; attribution, curves and tables carry config hash, code version, seed."""
    pairs_h5, model, _ = inputs
    runs = []
    for run in ("a", "b"):
        d = tmp_path / run
        compute_attributions(pairs_h5, model, d / "gradcam.h5", "gradcam", {}, 1, 3, "cpu", 4, "x", "m", "gradcam", 0, progress=False)
        compute_metrics(pairs_h5, model, d / "gradcam.h5", d / "shard-0.csv", d / "shard-0.curves.h5", METRICS, "cpu", 4, "x", "m", progress=False)
        runs.append(d)
    for name in ("gradcam.h5", "shard-0.curves.h5"):
        first, second = h5_contents(runs[0] / name), h5_contents(runs[1] / name)
        assert first.keys() == second.keys() and len(first) > 1
        for k in first:
            assert np.array_equal(first[k], second[k], equal_nan=first[k].dtype.kind == "f"), (name, k)
    assert (runs[0] / "shard-0.csv").read_bytes() == (runs[1] / "shard-0.csv").read_bytes()
    for name in ("gradcam.h5", "shard-0.curves.h5"):
        with h5py.File(runs[0] / name, "r") as f, h5py.File(runs[1] / name, "r") as g:
            for key in PROVENANCE_KEYS:
                assert key in f.attrs, (name, key)
                assert f.attrs[key] == g.attrs[key], (name, key)
            assert len(str(f.attrs["config_hash"])) == 16 and int(f.attrs["seed"]) == 3
    # a different seed gives another config hash
    compute_attributions(pairs_h5, model, tmp_path / "c.h5", "gradcam", {}, 1, 4, "cpu", 4, "x", "m", "gradcam", 0, progress=False)
    assert load_attributions(tmp_path / "c.h5").attrs["config_hash"] != load_attributions(runs[0] / "gradcam.h5").attrs["config_hash"]
    out = tmp_path / "tables"
    aggregate([runs[0] / "shard-0.csv"], ["gradcam"], list(METRICS), out / "scores.csv", out / "scores.md", out / "per_image.csv", "t")
    prov = json.loads((out / "scores.provenance.json").read_text())
    curves_attrs = read_curves_attrs(runs[0] / "shard-0.curves.h5")
    assert prov["code_version"] == [curves_attrs["code_version"]] and prov["seed"] == [3] and len(prov["config_hash"]) == 16
    assert f"config hash {prov['config_hash']}" in (out / "scores.md").read_text()


def test_views_of_every_pair_are_stored(inputs: tuple[Path, Path, list]) -> None:
    """x1, x2 and xt of every image are in the pairs file and equal a recomputation from the image and seed."""
    pairs_h5, _, records = inputs
    from xai_ssl.data.images import load_rgb

    pairs = read_pairs(pairs_h5)
    assert count_pairs(pairs_h5) == 3 and pairs.image_ids == [r.image_id for r in records]
    for i, rec in enumerate(records):
        views = make_views(load_rgb(rec.path), S, 5, rec.image_id, (0.3, 1.0))
        for k in ("x1", "x2", "xt"):
            assert torch.equal(getattr(pairs, k)[i], views[k].float() / 255), (rec.image_id, k)


def test_readers_leave_no_hdf5_file_open(inputs: tuple[Path, Path, list], tmp_path: Path) -> None:
    """Readers use ``with``: after reading, no HDF5 file of ours is held open (safe across jobs / on NFS)."""
    pairs_h5, model, _ = inputs
    compute_attributions(pairs_h5, model, tmp_path / "m.h5", "gradcam", {}, 1, 3, "cpu", 4, "x", "m", "gradcam", 0, progress=False)
    compute_metrics(pairs_h5, model, tmp_path / "m.h5", tmp_path / "s.csv", tmp_path / "s.curves.h5", {"insertion_deletion": {"pixels_per_step": 24}}, "cpu", 4, "x", "m", progress=False)
    read_pairs(pairs_h5)
    count_pairs(pairs_h5)
    load_attributions(tmp_path / "m.h5")
    read_curves_attrs(tmp_path / "s.curves.h5")
    assert h5py.h5f.get_obj_count(types=h5py.h5f.OBJ_FILE) == 0
    leaked = h5py.File(pairs_h5, "r")  # the check itself detects an open file
    assert h5py.h5f.get_obj_count(types=h5py.h5f.OBJ_FILE) == 1
    leaked.close()


def test_works_with_hdf5_file_locking_disabled(inputs: tuple[Path, Path, list], tmp_path: Path) -> None:
    """With HDF5_USE_FILE_LOCKING=FALSE (network file systems) the attribution step writes and reads as usual."""
    pairs_h5, model, _ = inputs
    code = (
        "import sys, h5py; from xai_ssl.stages.attribution import compute_attributions; from xai_ssl.io.maps_file import load_attributions\n"
        f"compute_attributions({str(pairs_h5)!r}, {str(model)!r}, {str(tmp_path / 'nl.h5')!r}, 'gradcam', {{}}, 1, 3, 'cpu', 4, 'x', 'm', 'gradcam', 0, progress=False)\n"
        f"print(len(load_attributions({str(tmp_path / 'nl.h5')!r}).image_ids))\n"
    )
    env = {**os.environ, "HDF5_USE_FILE_LOCKING": "FALSE", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("3")
    compute_attributions(pairs_h5, model, tmp_path / "l.h5", "gradcam", {}, 1, 3, "cpu", 4, "x", "m", "gradcam", 0, progress=False)
    assert torch.equal(load_attributions(tmp_path / "nl.h5").map1, load_attributions(tmp_path / "l.h5").map1)
