"""The public API (xai_ssl.api) against the workflow's own stage functions on real Two4Two renders.

Views must equal the pairs file written by ``stages.data.make_pairs`` bit for bit; maps must equal the maps
written by ``stages.attribution.compute_attributions``; scores must equal ``stages.evaluation.compute_metrics``'s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import REPO, tiny_encoder
from xai_ssl import api
from xai_ssl.config import ConfigError, validate_config
from xai_ssl.data.corpus import load_corpus
from xai_ssl.io.maps_file import load_attributions
from xai_ssl.io.pairs_file import read_pairs
from xai_ssl.io.scores_file import read_curves, read_scores
from xai_ssl.models.registry import save_encoder
from xai_ssl.stages.attribution import compute_attributions
from xai_ssl.stages.data import index_dataset, make_pairs
from xai_ssl.stages.evaluation import compute_metrics

SIZE = 32
SEED = 7
CROP = (0.3, 1.0)
N_IMAGES = 3
ARCH = {"width": 4, "embedding_dim": 8, "hidden_dim": 16}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A workflow-style run through the stage functions: index, pairs, a prepared encoder (float32)."""
    from helpers import shared_data

    root = shared_data("two4two-mini")
    work = tmp_path_factory.mktemp("api-run")
    index = work / "index.csv"
    index_dataset(str(index), "two4two", str(root))
    pairs = work / "pairs.h5"
    make_pairs(str(index), str(pairs), "test", N_IMAGES, SIZE, SEED, CROP, progress=False)
    enc = work / "encoder.pt"
    save_encoder(tiny_encoder(seed=3, fit_size=SIZE).float(), enc, "small_resnet", ARCH)
    return {"root": root, "index": index, "pairs": pairs, "encoder": enc, "work": work}


def stage_maps(run: dict, registry: str, params: dict, key: str | None = None) -> tuple:
    """The maps the attribution stage writes for every stored pair (key: the method's config name)."""
    out = run["work"] / "maps" / f"{key or registry}.h5"
    compute_attributions(str(run["pairs"]), str(run["encoder"]), str(out), registry, params, 1, SEED, "cpu", 8, "ds", "m", key or registry, 0,
                         index=str(run["index"]), progress=False)
    return load_attributions(out)


def image_path(run: dict, image_id: str) -> Path:
    return run["root"] / "test" / f"{image_id}.png"


def test_views_equal_the_workflow_pairs_bit_for_bit(run: dict) -> None:
    stored = read_pairs(run["pairs"])
    assert stored.mask1 is not None
    for i, image_id in enumerate(stored.image_ids):
        path = image_path(run, image_id)
        v = api.views(path, SIZE, seed=SEED, crop_scale=CROP)  # the id defaults to the file stem, the workflow's id
        assert v.image_id == image_id and v.seed == SEED
        for k in ("x1", "x2", "xt"):
            assert torch.equal(getattr(v, k), getattr(stored, k)[i]), (image_id, k)
        assert np.array_equal(v.mask1, stored.mask1[i])
        # a PIL image and a tensor of the same picture, given the id, give the same views
        with Image.open(path) as pil:
            w = api.views(pil, SIZE, seed=SEED, image_id=image_id, crop_scale=CROP)
        t = api.views(v_tensor(path), SIZE, seed=SEED, image_id=image_id, crop_scale=CROP)
        for k in ("x1", "x2", "xt"):
            assert torch.equal(getattr(w, k), getattr(stored, k)[i]) and torch.equal(getattr(t, k), getattr(stored, k)[i])
        x1, _, xt = v  # unpacking
        assert torch.equal(x1, v.x1) and torch.equal(xt, v.xt)
    other = api.views(image_path(run, stored.image_ids[0]), SIZE, seed=SEED + 1, crop_scale=CROP)
    assert not torch.equal(other.x2, stored.x2[0])  # the seed matters


def v_tensor(path: Path) -> torch.Tensor:
    """The image as a float tensor [3, H, W] in [0, 1] decoded independently of xai_ssl (RGBA -> RGB, / 255)."""
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1).contiguous()


def test_views_refuse_bad_images(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        api.views(torch.rand(1, 3, 8, 8), 8)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        api.views(torch.rand(3, 8, 8) * 2, 8)
    with pytest.raises(TypeError, match="path, a PIL image or a tensor"):
        api.views(3.0, 8)
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(Exception, match="x.png: cannot read image"):
        api.views(bad, 8)


# the methods compared with the attribution stage: every pair family, seeded and single-map methods, a corpus method
STAGE_METHODS = {
    "gradcam": {},
    "pairwise_occlusion": {"n_erases": 12},
    "smooth_grad": {"n_samples": 4},
    "avg_transforms_n": {},
    "pixel_invariance": {"n_augmentations": 16, "epochs": 2},
    "relax": {"n_masks": 20},
    "vdsn": {"corpus_size": 10},
    "cocoa_rise": {"corpus_size": 6, "foil_size": 5, "n_masks": 10},
}


@pytest.mark.parametrize("registry", sorted(STAGE_METHODS))
def test_explain_equals_the_attribution_stage(run: dict, registry: str) -> None:
    params = STAGE_METHODS[registry]
    stored = stage_maps(run, registry, params)
    enc = api.load_encoder(run["encoder"], device="cpu")
    pairs = read_pairs(run["pairs"])
    corpus = None
    if api.method_spec(registry).needs_corpus:  # the reference images the stage loads from the index
        corpus = load_corpus(run["index"], SIZE, pairs.attrs.get("split"), params["corpus_size"], SEED)
    vs = [api.views(image_path(run, image_id), SIZE, seed=SEED, crop_scale=CROP) for image_id in stored.image_ids]
    # the same images in one call: the same chunk as the stage, so the same bits
    m1, m2 = api.explain(enc, vs, method=registry, seed=SEED, batch_size=8, corpus=corpus, **params)
    assert torch.equal(m1, stored.map1), registry
    assert (m2 is None) == (stored.map2 is None)
    if m2 is not None:
        assert torch.equal(m2, stored.map2)
    # one image at a time: the same seeds; a convolution over another batch size may round differently
    for i, v in enumerate(vs):
        s1, s2 = api.explain(enc, v, method=registry, seed=SEED, batch_size=8, corpus=corpus, **params)
        torch.testing.assert_close(s1, stored.map1[i], rtol=1e-4, atol=1e-6)
        if s2 is not None:
            torch.testing.assert_close(s2, stored.map2[i], rtol=1e-4, atol=1e-6)


def test_explain_batch_equals_single_images_and_raw_pairs(run: dict) -> None:
    enc = api.load_encoder(run["encoder"], device="cpu")
    pairs = read_pairs(run["pairs"])
    vs = [api.views(image_path(run, i), SIZE, seed=SEED, crop_scale=CROP) for i in pairs.image_ids]
    b1, b2 = api.explain(enc, vs, method="smooth_grad", seed=SEED, n_samples=3)
    assert b1.shape == (N_IMAGES, SIZE, SIZE)
    a, b = pairs.pair("interpolation")
    r1, r2 = api.explain(enc, a, b, "smooth_grad", seed=SEED, image_id=pairs.image_ids, n_samples=3)  # tensors: the explained pair itself
    assert torch.equal(b1, r1) and torch.equal(b2, r2)
    for i, v in enumerate(vs):
        s1, s2 = api.explain(enc, v, method="smooth_grad", seed=SEED, n_samples=3)
        assert s1.shape == (SIZE, SIZE)
        torch.testing.assert_close(b1[i], s1, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(b2[i], s2, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="one image id per image"):
        api.explain(enc, a, b, "gradcam", image_id="one")


def test_explain_uses_the_config_name_as_seed_key(run: dict) -> None:
    """A method configured as `pw_small` (registry pairwise_occlusion) draws from image_seed(seed, id, 'pw_small')."""
    params = {"n_erases": 8}
    stored = stage_maps(run, "pairwise_occlusion", params, key="pw_small")
    enc = api.load_encoder(run["encoder"], device="cpu")
    v = api.views(image_path(run, stored.image_ids[0]), SIZE, seed=SEED, crop_scale=CROP)
    keyed, _ = api.explain(enc, v, method="pairwise_occlusion", seed=SEED, key="pw_small", **params)
    plain, _ = api.explain(enc, v, method="pairwise_occlusion", seed=SEED, **params)
    assert torch.equal(keyed, stored.map1[0])
    assert not torch.equal(plain, stored.map1[0])


def test_score_equals_the_metric_stage(run: dict) -> None:
    registry, params = "smooth_grad", {"n_samples": 3}
    metrics = {"insertion_deletion": {"blur_kernel": 5, "blur_sigma": 2.0}, "average_drop_increase": {}, "localisation": {},
               "max_sensitivity": {"n_samples": 2, "radius": 0.1}}
    stage_maps(run, registry, params)
    maps = run["work"] / "maps" / f"{registry}.h5"
    csv, curves_h5 = run["work"] / "scores.csv", run["work"] / "scores.curves.h5"
    compute_metrics(str(run["pairs"]), str(run["encoder"]), str(maps), str(csv), str(curves_h5), metrics, "cpu", 8, "ds", "m", progress=False)
    table, curves = read_scores(csv), read_curves([curves_h5])
    enc = api.load_encoder(run["encoder"], device="cpu")
    stored = load_attributions(maps)
    vs = [api.views(image_path(run, image_id), SIZE, seed=SEED, crop_scale=CROP) for image_id in stored.image_ids]
    values, crv = api.score(enc, vs, maps=(stored.map1, stored.map2), metrics=metrics, method=registry, seed=SEED, method_params=params, batch_size=8)
    assert list(table["image_id"]) == stored.image_ids
    assert set(values) == set(table.columns) - {"image_id"} and set(crv) == set(curves)
    for col, value in values.items():  # the CSV keeps 6 decimals
        np.testing.assert_allclose(value, table[col].to_numpy(), rtol=0, atol=5.01e-7, err_msg=col)
    for name, c in crv.items():  # the same chunk as the stage: the same bits
        np.testing.assert_array_equal(c, curves[name], err_msg=name)
    for i, v in enumerate(vs):  # one image at a time: equal up to the rounding of another batch size
        one, one_crv = api.score(enc, v, maps=(stored.map1[i], stored.map2[i]), metrics=metrics, method=registry, seed=SEED, method_params=params,
                                 batch_size=8)
        for col, value in one.items():
            np.testing.assert_allclose(value, values[col][i], rtol=1e-4, atol=1e-6, err_msg=col)
        for name, c in one_crv.items():
            np.testing.assert_allclose(c, crv[name][i], rtol=1e-4, atol=1e-6, err_msg=name)
    row = table.iloc[-1]
    # metric parameters by keyword, merged into the requested metrics
    values, _ = api.score(enc, v, maps=(stored.map1[-1], stored.map2[-1]), metrics=["insertion_deletion"], method=registry,
                          insertion_deletion={"blur_kernel": 5, "blur_sigma": 2.0})
    np.testing.assert_allclose(values["SI"], row["SI"], rtol=1e-4, atol=1e-6)


def test_unknown_names_get_the_config_errors(run: dict) -> None:
    enc = api.load_encoder(run["encoder"], device="cpu")
    config = yaml_config()
    v = api.views(torch.rand(3, 60, 60), config["datasets"]["synthetic"]["image_size"])  # the config's image size
    for methods, api_call in (
        ({"gradcam": {"params": {"windw": 3}}}, lambda: api.explain(enc, v, method="gradcam", windw=3)),
        ({"conditional_occlusion": {"params": {"window": 99}}}, lambda: api.explain(enc, v, method="conditional_occlusion", window=99)),
        ({"gradcm": {}}, lambda: api.explain(enc, v, method="gradcm")),
    ):
        cfg = {**config, "methods": methods, "run": {**config["run"], "methods": list(methods)}}
        with pytest.raises(ConfigError) as from_config:
            validate_config(cfg, check_paths=False)
        with pytest.raises((KeyError, ValueError)) as from_api:
            api_call()
        message = from_api.value.args[0]
        assert message in str(from_config.value), (message, str(from_config.value))
    with pytest.raises(KeyError, match=r"unknown metric 'insertion'; accepted: \["):
        api.score(enc, v, maps=(torch.zeros(4, 4), torch.zeros(4, 4)), metrics=["insertion"])
    with pytest.raises(KeyError, match=r"metric 'insertion_deletion': unknown parameter\(s\) \['blur'\]"):
        api.score(enc, v, maps=(torch.zeros(4, 4), torch.zeros(4, 4)), insertion_deletion={"blur": 3})
    with pytest.raises(ValueError, match="pass corpus="):
        api.explain(enc, v, method="vdsn")
    with pytest.raises(ValueError, match="name the method"):
        api.explain(enc, v)


def yaml_config() -> dict:
    import yaml

    return yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))


def test_explain_accepts_a_corpus_tensor(run: dict) -> None:
    enc = api.load_encoder(run["encoder"], device="cpu")
    v = api.views(image_path(run, read_pairs(run["pairs"]).image_ids[0]), SIZE, seed=SEED, crop_scale=CROP)
    corpus = load_corpus(run["index"], SIZE, "test", 8, SEED)
    from_tensor, _ = api.explain(enc, v, method="vdsn", corpus=corpus.floats(torch.device("cpu")), seed=SEED)
    from_corpus, _ = api.explain(enc, v, method="vdsn", corpus=corpus, seed=SEED)
    assert torch.equal(from_tensor, from_corpus)


def test_load_encoder_by_model_name(run: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = yaml_config()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"not prepared yet; prepare it with `snakemake --cores all results/models/simclr_small/encoder.pt`"):
        api.load_encoder("simclr_small", config=config)
    with pytest.raises(KeyError, match=r"unknown model 'resnet'; accepted \(models of the config\): \['simclr_small'\]"):
        api.load_encoder("resnet", config=config)
    other = tmp_path / "other.yaml"
    import yaml

    other.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=f"--configfile {other} results/models/simclr_small/encoder.pt"):
        api.load_encoder("simclr_small", config=other)
    target = tmp_path / "results" / "models" / "simclr_small" / "encoder.pt"
    target.parent.mkdir(parents=True)
    target.write_bytes(run["encoder"].read_bytes())
    enc = api.load_encoder("simclr_small", config=config, device="cpu")
    assert not enc.training and enc.channels_last  # the config's speed settings, as the workflow's jobs
    x = torch.rand(2, 3, SIZE, SIZE)
    ref = api.load_encoder(run["encoder"], device="cpu")
    torch.testing.assert_close(enc(x), ref(x))
    with pytest.raises(FileNotFoundError, match="encoder file not found"):
        api.load_encoder(tmp_path / "missing.pt")


def test_import_is_cheap_and_the_api_is_reexported() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    code = "import sys, xai_ssl; assert 'torch' not in sys.modules, 'import xai_ssl imported torch'; from xai_ssl import explain, score, views, load_encoder; print(explain.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "xai_ssl.api"
    import xai_ssl

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        xai_ssl.nope  # noqa: B018


def test_configured_method_and_similarity(run: dict) -> None:
    config = yaml_config()
    config["methods"]["pw_small"] = {"method": "pairwise_occlusion", "params": {"n_erases": 6}, "model_params": {"simclr_small": {"n_erases": 4}}}
    assert api.configured_method(config, "pw_small") == {"method": "pairwise_occlusion", "key": "pw_small", "n_erases": 6}
    assert api.configured_method(config, "pw_small", model="simclr_small")["n_erases"] == 4
    assert api.configured_method(config, "relax") == {"method": "relax", "key": "relax", "n_masks": 500}
    with pytest.raises(KeyError, match="unknown method 'nope'; accepted"):
        api.configured_method(config, "nope")
    enc = api.load_encoder(run["encoder"], device="cpu")
    v = api.views(image_path(run, read_pairs(run["pairs"]).image_ids[0]), SIZE, seed=SEED, crop_scale=CROP)
    with torch.inference_mode():
        z1, z2 = enc(v.x1[None]), enc(v.x2[None])
    expected = float((z1 * z2).sum() / (z1.norm() * z2.norm()))  # the cosine by hand
    assert float(api.similarity(enc, v)) == pytest.approx(expected, rel=1e-5)
    assert float(api.similarity(enc, v.x1, v.x2)) == pytest.approx(expected, rel=1e-5)
    a, b = v.pair("interpolation")
    assert api.similarity(enc, [v, v], family="interpolation").shape == (2,)
    assert float(api.similarity(enc, [v], family="interpolation")[0]) == pytest.approx(float(api.similarity(enc, a, b)), rel=1e-5)


def test_views_refuse_files_above_the_pixel_limit(tmp_path: Path) -> None:
    from helpers import png_bomb
    from xai_ssl.data.records import DataError

    bomb = png_bomb(tmp_path / "bomb.png", 3000)
    with pytest.raises(DataError, match=r"bomb.png: 3000×3000 = 9000000 pixels, more than the limit of 1000000"):
        api.views(bomb, 32, max_pixels=1_000_000)
    assert api.views(png_bomb(tmp_path / "small.png", 40), 32, max_pixels=1_000_000).image_id == "small"
