"""The live demo's computations without a browser (xai_ssl.demo.DemoCore), the CLI, and the pixel limit for uploads."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from helpers import REPO, demo_config, png_bomb, prepare_model
from xai_ssl import api
from xai_ssl.cli import parser
from xai_ssl.cost import PassCounter
from xai_ssl.data.images import check_pixel_limit
from xai_ssl.data.records import DataError
from xai_ssl.demo import DemoCore, metrics_html, view_images
from xai_ssl.io.maps_file import load_attributions


def test_check_pixel_limit_reads_the_header_only(tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "bomb.png", 10000)
    assert bomb.stat().st_size < 200_000  # 10⁸ pixels in a small file
    with pytest.raises(DataError, match=r"bomb.png: 10000×10000 = 100000000 pixels, more than the limit of 40000000 \(demo.max_pixels\)"):
        check_pixel_limit(bomb, 40_000_000, setting="demo.max_pixels")
    assert check_pixel_limit(bomb, 10**8) == (10000, 10000)
    with open(bomb, "rb") as fh:  # a file object is rewound for the decoder
        assert check_pixel_limit(fh, 10**8) == (10000, 10000) and fh.tell() == 0
    beyond_pillow = png_bomb(tmp_path / "huge.png", 14000)  # > 2 × Pillow's MAX_IMAGE_PIXELS: Pillow itself refuses to open it
    with pytest.raises(DataError, match=r"huge.png: cannot read image \(DecompressionBombError"):
        check_pixel_limit(beyond_pillow, 10**9)
    text = tmp_path / "notes.png"
    text.write_text("not an image", encoding="utf-8")
    with pytest.raises(DataError, match=r"notes.png: cannot read image \(UnidentifiedImageError"):
        check_pixel_limit(text, 10**6)
    with pytest.raises(DataError, match="missing.png: file not found"):
        check_pixel_limit(tmp_path / "missing.png", 10**6)


@pytest.fixture
def core(tmp_path: Path) -> DemoCore:
    results = tmp_path / "results"
    prepare_model(results)
    return DemoCore(demo_config(cpu_budget_s=30, max_pixels=1_000_000, n_examples=3), results=results, device="cpu", work_dir=tmp_path / "work")


def test_bad_uploads_are_refused_with_a_message(core: DemoCore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two4two_mini: Path) -> None:
    image = next(p for p in sorted((two4two_mini / "test").glob("*.png")) if not p.name.endswith("_mask.png"))
    bomb = png_bomb(tmp_path / "bomb.png", 2000)  # 4 MP > the 1 MP limit of this config
    decoded: list[object] = []
    monkeypatch.setattr("xai_ssl.api.load_rgb", lambda *args: decoded.append(args))
    with pytest.raises(DataError, match=r"more than the limit of 1000000 \(demo.max_pixels\)"):
        core.load_image(bomb, 48, 0)
    assert not decoded, "the pixel limit is checked before decoding"
    monkeypatch.undo()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    with pytest.raises(DataError, match=r"truncated.png: cannot read image \(OSError"):
        core.load_image(truncated, 48, 0)
    text = tmp_path / "notes.png"
    text.write_text("not an image", encoding="utf-8")
    with pytest.raises(DataError, match=r"notes.png: cannot read image \(UnidentifiedImageError"):
        core.load_image(text, 48, 0)
    with pytest.raises(DataError, match="choose 8 to 1024 px"):
        core.load_image(image, 4000, 0)
    assert core.load_image(image, 48, 5).image_id == image.stem


def test_models_name_the_target_that_prepares_them(tmp_path: Path) -> None:
    config = demo_config()
    config["models"]["other"] = dict(config["models"]["simclr_small"])
    results = tmp_path / "results"
    prepare_model(results)
    core = DemoCore(config, results=results, device="cpu", work_dir=tmp_path / "work")
    entries = {m.name: m for m in core.models()}
    assert entries["simclr_small"].prepared and not entries["other"].prepared
    assert entries["other"].target == f"snakemake --cores all {results}/models/other/encoder.pt"
    with pytest.raises(DataError, match=f"model 'other' is not prepared yet .*; prepare it with `snakemake --cores all {results}/models/other/encoder.pt`"):
        core.encoder("other")
    cfg_file = tmp_path / "mine.yaml"
    cfg_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert f"--configfile {cfg_file} " in DemoCore(cfg_file, results=results, device="cpu", work_dir=tmp_path / "w2").models()[1].target


def test_methods_estimates_and_the_cpu_budget(core: DemoCore) -> None:
    names = core.method_names()
    assert names[: len(core.config["run"]["methods"])] == core.config["run"]["methods"]  # the config's methods first
    assert {"vdsn", "cocoa_rise", "lffi_ig"} <= set(names)  # then every other registered method
    assert core.method_label("vdsn").startswith("vdsn (needs ") and core.method_label("gradcam") == "gradcam"
    est = dict(core.estimates("simclr_small", ["gradcam", "pixel_invariance", "relax"], 48))
    assert 0 < est["gradcam"] < est["relax"] and est["gradcam"] < est["pixel_invariance"]
    core.budget_s = (est["gradcam"] + min(est["relax"], est["pixel_invariance"])) / 2
    assert core.over_budget(list(est.items())) == ["pixel_invariance", "relax"]
    core.budget_s = 1e9
    assert core.over_budget(list(est.items())) == []
    assert core.over_budget([("new_method", None)]) == ["new_method"]  # no estimate: ask


def test_metric_passes_from_the_probe_equal_the_real_encoder(core: DemoCore) -> None:
    """The probe's counts equal those of scoring with the real encoder (metric passes do not depend on the encoder)."""
    enc = core.encoder("simclr_small")
    x = torch.rand(2, 3, 48, 48)
    for two in (True, False):
        m = torch.rand(6, 6)
        with PassCounter(enc, 48) as counted:
            api.score(enc, x[0], x[1], maps=(m, m if two else None), metrics=core.metrics_for(False), batch_size=core.batch_size)
        assert core.metric_passes(48, two) == (counted.forwards, counted.backwards)


def test_run_equals_the_api_and_writes_the_attribution_layout(core: DemoCore, two4two_mini: Path) -> None:
    image = next(p for p in sorted((two4two_mini / "test").glob("*.png")) if not p.name.endswith("_mask.png"))
    progress: list[float] = []
    result = core.run(image, "simclr_small", ["gradcam", "pixel_invariance", "vdsn", "feature_visualisation"], seed=3, size=48,
                      report=lambda f, d: progress.append(f))
    assert progress[-1] == 1.0 and progress == sorted(progress)
    by = {r.name: r for r in result.methods}
    assert "snakemake --cores all" in by["vdsn"].error and "index.csv" in by["vdsn"].error  # no dataset index: a message, the others run
    enc = api.load_encoder(core.models()[0].path, config=core.config, device="cpu")
    v = api.views(image, 48, seed=3, crop_scale=core.crop_scale)
    assert torch.equal(result.views.x2, v.x2) and result.views.mask1 is not None
    assert result.cosine["crop_aug"] == pytest.approx(float(api.similarity(enc, v)), rel=1e-6)
    for name in ("gradcam", "pixel_invariance"):
        kwargs = api.configured_method(core.config, name)
        m1, m2 = api.explain(enc, v, seed=3, batch_size=core.batch_size, **kwargs)
        r = by[name]
        assert r.error is None and torch.equal(r.map1, m1) and (m2 is None or torch.equal(r.map2, m2))
        method, key = kwargs.pop("method"), kwargs.pop("key")
        values, _ = api.score(enc, v, maps=(m1, m2), metrics=core.metrics_for(True), method=method, key=key, seed=3, method_params=kwargs,
                                   batch_size=core.batch_size)
        assert r.values == pytest.approx(values, nan_ok=True) and "PG_obj" in values  # localisation: the render's mask
        stored = load_attributions(r.h5)
        assert stored.image_ids == [image.stem] and torch.equal(stored.map1[0], m1)
        assert (stored.map2 is None) == (m2 is None) and stored.attrs["method"] == name and int(stored.attrs["seed"]) == 3
        assert stored.attrs["params"] == r.params
        html = metrics_html(result)
        assert f'data-method="{name}" data-column="SI" data-value="{values["SI"]!r}"' in html
    assert by["feature_visualisation"].map1.shape == (3, 48, 48) and by["feature_visualisation"].h5.is_file()
    assert len(view_images(result)) == 3


def test_examples_come_from_the_dataset_or_are_generated(core: DemoCore, tmp_path: Path, two4two_mini: Path) -> None:
    generated = core.example_images()
    assert len(generated) == 3 and all(p.is_file() and Image.open(p).size == (128, 128) for p in generated)
    from xai_ssl.stages.data import index_dataset

    index = core.index_path()
    index.parent.mkdir(parents=True)
    index_dataset(str(index), "two4two", str(two4two_mini))
    from_data = core.example_images()
    assert len(from_data) == 3 and all(two4two_mini in p.parents for p in from_data)
    # corpus methods: the estimate counts the reference images the index offers (the 48 training renders), not corpus_size
    assert core.corpus_pool() == len(list((two4two_mini / "train").glob("*_mask.png")))
    from xai_ssl.cost import estimate
    from xai_ssl.methods import get_method

    spec = get_method("vdsn")
    times = core.pass_times("simclr_small", 48)
    f, b = core.metric_passes(48, False)
    expected = estimate(spec, spec.resolve_params({"corpus_size": core.corpus_pool()}, 48), 48, times).seconds + f * times.forward_s + b * times.backward_s
    assert dict(core.estimates("simclr_small", ["vdsn"], 48))["vdsn"] == pytest.approx(expected)


def test_cli_serves_on_loopback_by_default() -> None:
    args = parser().parse_args(["demo"])
    assert (args.host, args.port, args.config) == ("127.0.0.1", 7860, "config/config.yaml")
    import inspect

    from xai_ssl import demo

    assert inspect.signature(demo.launch).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(demo.main).parameters["host"].default == "127.0.0.1"
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == {"xai-ssl": "xai_ssl.cli:main"}
    out = subprocess.run([sys.executable, "-m", "xai_ssl", "demo", "--help"], capture_output=True, text=True, check=False,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": ""})
    assert out.returncode == 0 and "--budget SECONDS" in out.stdout and "127.0.0.1" in out.stdout


def test_png_bomb_helper_is_a_valid_png(tmp_path: Path) -> None:
    """The bomb is a real image (so the limit, not a parse error, refuses it): a small one decodes to zeros."""
    with Image.open(png_bomb(tmp_path / "small.png", 64)) as im:
        assert im.size == (64, 64) and not np.asarray(im).any()
    buf = io.BytesIO()
    Image.new("L", (4, 4)).save(buf, format="PNG")
    assert check_pixel_limit(io.BytesIO(buf.getvalue()), 16) == (4, 4)
