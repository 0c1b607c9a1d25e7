"""The results explorer's writer: files, 8-bit maps against the raw arrays, means/ranks against pandas, NA, size, atomicity."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from explorer_helpers import fake_data, real_explorer_files
from PIL import Image

from xai_ssl.explorer import (
    ExplorerData,
    base_cosines,
    explorer_data_from_files,
    write_explorer,
)
from xai_ssl.io.hdf5 import write_strings
from xai_ssl.io.maps_file import save_attributions
from xai_ssl.io.pairs_file import read_pairs
from xai_ssl.io.scores_file import save_scores

PREFIX = "window.XAI_SSL_EXPLORER = "


def read_payload(folder: Path) -> dict:
    """The data object of data.js, parsed as JSON (the file is one assignment)."""
    text = (folder / "data.js").read_text(encoding="utf-8")
    assert text.startswith(PREFIX) and text.endswith(";\n")
    return json.loads(text[len(PREFIX) : -2])


def decode_png(uri: str) -> np.ndarray:
    """A ``data:image/png;base64,`` URI -> uint8 [H, W] or [H, W, 3]."""
    head = "data:image/png;base64,"
    assert uri.startswith(head)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri[len(head) :]))))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExplorerData, Path, dict]:
    data = fake_data(n_images=7, n_methods=6)
    index = write_explorer(tmp_path_factory.mktemp("explorer") / "out", data)
    return data, index.parent, read_payload(index.parent)


def test_files_are_local_and_complete(written: tuple[ExplorerData, Path, dict]) -> None:
    data, folder, payload = written
    assert sorted(p.name for p in folder.iterdir()) == ["data.js", "explorer.css", "explorer.js", "index.html"]
    page = (folder / "index.html").read_text(encoding="utf-8")
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sorted(refs) == ["data.js", "explorer.css", "explorer.js"]  # nothing from a CDN, everything beside index.html
    assert data.title in page
    for name in ("index.html", "explorer.js", "explorer.css"):
        text = (folder / name).read_text(encoding="utf-8")
        no_namespace = text.replace("http://www.w3.org/2000/svg", "")
        assert not re.search(r"https?://|//cdn|@import|url\(|fetch\(|XMLHttpRequest|WebSocket", no_namespace), name
    assert payload["format"] == "xai_ssl.explorer/1"
    assert payload["images"] == data.image_ids
    assert [m["name"] for m in payload["methods"]] == list(data.methods)
    assert [m["baseline"] for m in payload["methods"]] == [m.is_baseline for m in data.methods.values()]


def test_title_is_escaped_in_html(tmp_path: Path) -> None:
    data = fake_data(n_images=2, n_methods=2)
    data.title = '<script>alert("x")</script> & co'
    page = write_explorer(tmp_path / "e", data).read_text(encoding="utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page


def test_maps_round_trip_within_8_bit_quantisation(written: tuple[ExplorerData, Path, dict]) -> None:
    data, _, payload = written
    checked = 0
    for entry, (name, m) in zip(payload["methods"], data.methods.items()):
        assert entry["family"] == m.pair_family
        for i in range(len(data.image_ids)):
            for k, raw in enumerate((m.map1[i], None if m.map2 is None else m.map2[i])):
                e = entry["maps"][i][k]
                if raw is None:
                    assert e is None
                    continue
                q = decode_png(e["png"])
                assert q.dtype == np.uint8 and q.shape == raw.shape == (e["h"], e["w"])
                finite = np.isfinite(raw)
                lo, hi = float(np.min(raw[finite])), float(np.max(raw[finite]))
                assert (e["lo"], e["hi"]) == (lo, hi)  # the raw range, exactly
                assert e["nonfinite"] == int((~finite).sum())
                restored = e["lo"] + q.astype(np.float64) / 255.0 * (e["hi"] - e["lo"])
                step = (hi - lo) / 255.0
                err = np.abs(restored - raw.astype(np.float64))[finite]
                assert err.max() <= step / 2 + 1e-9 * max(1.0, abs(hi), abs(lo)), (name, i, k)
                if hi > lo:
                    assert q[finite].min() == 0 and q[finite].max() == 255
                checked += 1
    assert checked > 40
    first = payload["methods"][0]["maps"]
    assert first[0][0]["lo"] == first[0][0]["hi"] == 0.25  # the constant map keeps its value
    assert first[1][0]["nonfinite"] == 1  # the NaN pixel is counted, not spread


def test_views_and_base_cosine_round_trip(written: tuple[ExplorerData, Path, dict]) -> None:
    data, _, payload = written
    assert list(payload["families"]) == ["crop_aug", "interpolation"]
    for family, f in payload["families"].items():
        for i in range(len(data.image_ids)):
            for k in range(2):
                img = decode_png(payload["pngs"][f["views"][i][k]])
                np.testing.assert_array_equal(img, data.views[family][k][i].transpose(1, 2, 0))
        np.testing.assert_array_equal(f["base_cosine"], data.base_cosine[family])
    # x1 is the first view of both families: stored once
    assert [f["views"][0][0] for f in payload["families"].values()] == [payload["families"]["crop_aug"]["views"][0][0]] * 2
    assert len(payload["pngs"]) == 3 * len(data.image_ids)


def test_means_ranks_and_na_equal_pandas(written: tuple[ExplorerData, Path, dict]) -> None:
    data, _, payload = written
    df = data.metrics.copy()
    assert df["value"].isna().any()
    df["direction"] = df["column"].map(data.directions)
    means = df.groupby(["method", "column"])["value"].mean()
    counts = df.groupby(["method", "column"])["value"].count()
    ranked = df[df["direction"].notna()].copy()
    ranked["rank"] = 0.0
    for d in ("↑", "↓"):
        sel = ranked["direction"] == d
        ranked.loc[sel, "rank"] = ranked[sel].groupby(["method", "column"])["value"].rank(method="min", ascending=d == "↓")
    ranks = ranked.set_index(["method", "column", "image_id"])["rank"]
    pos = {image_id: i for i, image_id in enumerate(data.image_ids)}
    n_cells = 0
    for (method, column), group in df.groupby(["method", "column"]):
        cell = payload["metrics"][method][column]
        assert cell["n"] == counts[(method, column)]
        if np.isnan(means[(method, column)]):
            assert cell["mean"] is None
        else:
            assert cell["mean"] == pytest.approx(means[(method, column)], rel=1e-12, abs=1e-15)
        for _, row in group.iterrows():
            i = pos[row["image_id"]]
            if pd.isna(row["value"]):
                assert cell["values"][i] is None and cell["ranks"][i] == 0
                continue
            assert cell["values"][i] == row["value"]
            expected = ranks[(method, column, row["image_id"])] if column in data.directions else 0
            assert cell["ranks"][i] == expected, (method, column, row["image_id"])
            n_cells += 1
    assert n_cells > 500
    names = [c["name"] for c in payload["columns"]]
    assert names[: len(data.directions)] == list(data.directions)  # table order: the directions first
    assert [c["direction"] for c in payload["columns"]] == [data.directions.get(c) for c in names]


def test_ties_share_the_best_rank(tmp_path: Path) -> None:
    data = fake_data(n_images=5, n_methods=2)
    name = next(iter(data.methods))
    values = [0.5, 0.9, 0.5, np.nan, 0.1]
    rows = [(name, i, c, v) for c in ("SI", "SD") for i, v in zip(data.image_ids, values)]
    data.metrics = pd.DataFrame(rows, columns=["method", "image_id", "column", "value"])
    cells = read_payload(write_explorer(tmp_path / "e", data).parent)["metrics"][name]
    assert cells["SI"]["ranks"] == [2, 1, 2, 0, 4]  # ↑: larger is better; NA has no rank
    assert cells["SD"]["ranks"] == [2, 4, 2, 0, 1]  # ↓: smaller is better
    assert cells["SI"]["n"] == 4 and cells["SI"]["mean"] == pytest.approx(0.5)
    assert list(read_payload(tmp_path / "e")["metrics"]) == list(data.methods)  # a method without values is listed, empty


def test_curves_round_trip(written: tuple[ExplorerData, Path, dict]) -> None:
    data, _, payload = written
    assert payload["curve_names"] == ["SI", "SD", "CI_1", "CI_2", "CD_1", "CD_2"]
    excluded = 0
    for method, per in data.curves.items():
        for name, c in per.items():
            got = payload["curves"][method][name]
            ok = np.isfinite(c).all(1)
            excluded += int((~ok).sum())
            for i, row in enumerate(got["values"]):
                if ok[i]:
                    np.testing.assert_allclose(row, c[i], atol=5.1e-6)
                else:
                    assert row is None
            np.testing.assert_allclose(got["mean"], np.nanmean(np.where(ok[:, None], c, np.nan), axis=0), atol=5.1e-6)
    assert excluded == len(data.methods)  # the fake data has one excluded image per method


def test_default_run_size_is_below_20_mb(tmp_path: Path) -> None:
    """~32 images x ~20 methods at 48 px, every map 48x48 noise with a map2 (the worst case for PNG)."""
    data = fake_data(n_images=32, n_methods=20, size=48, noise_maps=True)
    folder = write_explorer(tmp_path / "e", data).parent
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total < 20e6, total
    assert total > 2e6  # the maps are really there (20 x 32 x 2 maps of 48 x 48)


def test_same_data_same_bytes(tmp_path: Path) -> None:
    a = write_explorer(tmp_path / "a", fake_data(n_images=3, n_methods=3)).parent
    b = write_explorer(tmp_path / "b", fake_data(n_images=3, n_methods=3)).parent
    for name in ("index.html", "data.js"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "explorer"
    write_explorer(out, fake_data(n_images=3, n_methods=2, seed=1))
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    from xai_ssl.explorer import writer

    real = writer.data_script

    def fail_midway(payload: dict) -> str:  # index.html and the static files are already written
        raise OSError("disk full")

    monkeypatch.setattr(writer, "data_script", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        write_explorer(out, fake_data(n_images=4, n_methods=2, seed=2))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the previous explorer is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explorer"]  # no temporary folder left

    fresh = tmp_path / "fresh"
    with pytest.raises(OSError):
        write_explorer(fresh, fake_data(n_images=4, n_methods=2))
    assert not fresh.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["explorer"]

    monkeypatch.setattr(writer, "data_script", real)
    (out / "stale.txt").write_text("old")
    write_explorer(out, fake_data(n_images=4, n_methods=2, seed=2))
    assert not (out / "stale.txt").exists() and len(read_payload(out)["images"]) == 4  # replaced as a whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explorer"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.views.update(crop_aug=(d.views["crop_aug"][0].astype(np.float32), d.views["crop_aug"][1])), r"views\['crop_aug'\]\[0\]: expected uint8"),
        (lambda d: d.base_cosine.update(crop_aug=np.zeros(2)), r"base_cosine\['crop_aug'\]: expected \[N=4\]"),
        (lambda d: setattr(next(iter(d.methods.values())), "map1", np.zeros((3, 4, 4), np.float32)), r"map1: expected \[N=4, h, w\]"),
        (lambda d: setattr(next(iter(d.methods.values())), "pair_family", "other"), r"pair_family: 'other' has no views"),
        (lambda d: setattr(d, "directions", {"SI": "up"}), r"directions: .*'up'"),
        (lambda d: setattr(d, "metrics", d.metrics.drop(columns=["value"])), r"metrics: missing column\(s\) \['value'\]"),
        (lambda d: setattr(d, "metrics", pd.concat([d.metrics, d.metrics.head(1)])), r"more than one value"),
        (lambda d: setattr(d, "image_ids", d.image_ids[:-1] + d.image_ids[:1]), r"unique"),
    ],
)
def test_bad_data_is_refused_with_the_field_name(tmp_path: Path, change, message: str) -> None:
    data = fake_data(n_images=4, n_methods=3)
    change(data)
    with pytest.raises(ValueError, match=message):
        write_explorer(tmp_path / "e", data)
    assert not (tmp_path / "e").exists()


# ---------- reading the workflow's files ----------


def write_fake_workflow_files(work: Path, n: int = 5, size: int = 12) -> dict:
    """A pairs file, two shards (out of order) of a two-map and a single-map method, their CSVs and curves."""
    rng = np.random.default_rng(3)
    ids = [f"id{i}" for i in range(n)]
    views = {k: rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8) for k in ("x1", "x2", "xt")}
    pairs_h5 = work / "pairs.h5"
    work.mkdir(parents=True, exist_ok=True)
    with h5py.File(pairs_h5, "w") as f:
        write_strings(f, "image_id", ids)
        for k, v in views.items():
            f.create_dataset(k, data=v)
    maps = {"occ": (rng.normal(size=(n, 4, 4)).astype(np.float32), rng.normal(size=(n, 4, 4)).astype(np.float32), "crop_aug"),
            "grad": (rng.uniform(size=(n, size, size)).astype(np.float32), None, "interpolation")}
    files: dict = {"attribution_files": {}, "score_csvs": {}, "curve_files": {}}
    for name, (m1, m2, family) in maps.items():
        for shard, rows in enumerate((np.arange(2, n), np.arange(0, 2))):  # listed in reverse row order
            h5 = work / name / f"shard-{shard}.h5"
            save_attributions(h5, [ids[r] for r in rows], rows, torch.from_numpy(m1[rows]), None if m2 is None else torch.from_numpy(m2[rows]),
                              {"method": name, "registry_method": name, "pair_family": family})
            table = pd.DataFrame({"image_id": [ids[r] for r in rows], "SI": rows * 0.1, "CD": np.where(rows == 3, np.nan, rows * 0.2),
                                  "CD_1": rows * 1.0})
            csv = work / name / f"shard-{shard}.csv"
            curves = {"CI_1": np.stack([np.linspace(0, 1, size + 1) * r for r in rows])}
            save_scores(table, curves, csv, csv.with_name(f"shard-{shard}.curves.h5"), {})
            files["attribution_files"].setdefault(name, []).append(h5)
            files["score_csvs"].setdefault(name, []).append(csv)
            files["curve_files"].setdefault(name, []).append(csv.with_name(f"shard-{shard}.curves.h5"))
    files["pairs_h5"] = pairs_h5
    return files | {"_ids": ids, "_views": views, "_maps": maps}


def test_explorer_data_from_files(tmp_path: Path) -> None:
    files = write_fake_workflow_files(tmp_path / "w")
    ids, views, maps = files.pop("_ids"), files.pop("_views"), files.pop("_maps")
    cos = {"crop_aug": np.linspace(0, 1, len(ids)), "interpolation": np.linspace(1, 2, len(ids))}
    data = explorer_data_from_files(**files, base_cosine=cos, title="t", directions={"SI": "↑", "CD": "↓"})
    assert data.image_ids == ids
    np.testing.assert_array_equal(data.methods["occ"].map1, maps["occ"][0])  # back in pairs-file order
    np.testing.assert_array_equal(data.methods["occ"].map2, maps["occ"][1])
    assert data.methods["grad"].map2 is None and data.methods["grad"].pair_family == "interpolation"
    np.testing.assert_array_equal(data.views["crop_aug"][0], views["x1"])
    np.testing.assert_array_equal(data.views["crop_aug"][1], views["x2"])
    interp = np.round(np.clip(0.1 * views["x1"] / 255.0 + 0.9 * views["xt"] / 255.0, 0, 1) * 255)
    assert np.abs(data.views["interpolation"][1].astype(int) - interp).max() <= 1
    np.testing.assert_array_equal(data.base_cosine["interpolation"], cos["interpolation"])
    long = data.metrics.set_index(["method", "image_id", "column"])["value"]
    assert long[("grad", "id3", "SI")] == pytest.approx(0.3)
    assert np.isnan(long[("occ", "id3", "CD")]) and long[("occ", "id4", "CD")] == pytest.approx(0.8)
    assert long[("occ", "id1", "CD_1")] == 1.0
    c = data.curves["grad"]["CI_1"]
    np.testing.assert_allclose(c[:, -1], np.arange(len(ids)), rtol=1e-6)  # row r ends at r: mapped to its image
    write_explorer(tmp_path / "e", data)


def test_explorer_data_from_files_refuses_mismatched_images(tmp_path: Path) -> None:
    files = write_fake_workflow_files(tmp_path / "w")
    for k in ("_ids", "_views", "_maps"):
        files.pop(k)
    files["attribution_files"]["grad"] = files["attribution_files"]["grad"][:1]
    with pytest.raises(ValueError, match="'grad' explains other images than 'occ'"):
        explorer_data_from_files(**files, title="t")
    files["attribution_files"]["grad"] = []
    with pytest.raises(ValueError, match="no attribution files for method 'grad'"):
        explorer_data_from_files(**files, title="t")


def test_base_cosines_equal_a_plain_loop() -> None:
    from xai_ssl.io.pairs_file import Pairs
    from xai_ssl.models.small_resnet import build_small_resnet

    torch.manual_seed(0)
    enc = build_small_resnet(width=4, embedding_dim=8, hidden_dim=16).double().eval()
    g = torch.Generator().manual_seed(1)
    x = [torch.rand(3, 3, 16, 16, generator=g, dtype=torch.float64) for _ in range(3)]
    pairs = Pairs(["a", "b", "c"], np.arange(3), *x, None)
    got = base_cosines(enc, pairs, ["crop_aug", "interpolation"], batch_size=2)
    with torch.no_grad():
        for i in range(3):
            for family, other in (("crop_aug", x[1][i]), ("interpolation", 0.1 * x[0][i] + 0.9 * x[2][i])):
                a, b = enc(x[0][i : i + 1])[0], enc(other[None])[0]
                assert got[family][i] == pytest.approx(float(a @ b / (a.norm() * b.norm())), rel=1e-9)


def test_real_maps_of_a_tiny_encoder(tmp_path: Path, two4two_mini: Path) -> None:
    """The workflow's own writers and methods (Grad-CAM, occlusion, gradients) -> explorer; maps equal the stored HDF5."""
    files = real_explorer_files(tmp_path / "w", two4two_mini / "test", n_images=3, methods={"gradcam": {}, "conditional_occlusion": {}, "input_x_gradient": {}},
                                metrics={"insertion_deletion": {"blur_kernel": 11, "blur_sigma": 5.0}})
    data = explorer_data_from_files(**files, title="real")
    assert list(data.methods) == ["gradcam", "conditional_occlusion", "input_x_gradient", "centre_baseline"]
    assert [m.is_baseline for m in data.methods.values()] == [False, False, False, True]
    assert data.methods["gradcam"].map1.shape == (3, 6, 6) and data.methods["conditional_occlusion"].map1.shape == (3, 18, 18)
    assert set(data.curves["gradcam"]) == {"SI", "SD", "CI_1", "CI_2", "CD_1", "CD_2"}
    pairs = read_pairs(files["pairs_h5"])
    np.testing.assert_array_equal(data.views["crop_aug"][1], (pairs.x2 * 255).round().to(torch.uint8).numpy())
    payload = read_payload(write_explorer(tmp_path / "e", data).parent)
    with h5py.File(files["attribution_files"]["gradcam"][0], "r") as f:
        raw = f["map2"][()]
    e = payload["methods"][0]["maps"][2][1]
    restored = e["lo"] + decode_png(e["png"]) / 255.0 * (e["hi"] - e["lo"])
    np.testing.assert_allclose(restored, raw[2], atol=(e["hi"] - e["lo"]) / 510 + 1e-12)
