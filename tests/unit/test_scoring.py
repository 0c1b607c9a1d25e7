"""Bad numbers: NaN/inf maps, zero-norm embeddings, constant maps and ties have defined, counted outcomes; tables never hold NaN."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers import aggregate
from xai_ssl.engine import map_diagnostics
from xai_ssl.io.maps_file import Attributions
from xai_ssl.io.pairs_file import Pairs
from xai_ssl.io.scores_file import save_scores
from xai_ssl.methods import MethodContext
from xai_ssl.metrics import get_metric
from xai_ssl.models import build_architecture
from xai_ssl.scoring import score_attributions

CPU = torch.device("cpu")
METRICS = ["insertion_deletion", "average_drop_increase"]
S = 16


class ZeroOnBlack(nn.Module):
    """A tiny encoder whose embedding of an all-black image is exactly zero (a zero-norm embedding)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.enc = build_architecture("small_resnet", width=4, embedding_dim=8, hidden_dim=16).double().eval()

    def __getattr__(self, name: str):  # noqa: ANN204 - baseline_pixel, features, ... of the wrapped encoder
        """Attributes of the wrapped encoder (baseline_pixel, normalised, ...)."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("enc"), name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings [B, D]; zero rows for black images."""
        return self.enc(x) * (x.flatten(1).amax(1) > 0).to(x.dtype)[:, None]


def setup() -> tuple[nn.Module, Pairs, Attributions, list]:
    """Five images: 0 NaN map, 1 inf map, 2 constant map, 3 black view (zero embedding), 4 map with ties."""
    g = torch.Generator().manual_seed(1)
    x1 = torch.rand(5, 3, S, S, generator=g, dtype=torch.float64)
    x2 = torch.rand(5, 3, S, S, generator=g, dtype=torch.float64)
    x1[3] = 0.0
    m1 = torch.rand(5, 8, 8, generator=g)
    m2 = torch.rand(5, 8, 8, generator=g)
    m1[0, 2, 3] = float("nan")
    m2[1, 0, 0] = float("inf")
    m1[2] = 0.5
    m1[4] = (m1[4] * 4).round() / 4  # five levels: many ties
    ids = [f"img{i}" for i in range(5)]
    pairs = Pairs(ids, np.arange(5), x1, x2, x1.clone(), None)
    attributions = Attributions(ids, np.arange(5), m1, m2, {})
    specs = [(get_metric(n), get_metric(n).resolve_params({"pixels_per_step": 16} if n == "insertion_deletion" else {}, S)) for n in METRICS]
    return ZeroOnBlack(), pairs, attributions, specs


def test_bad_maps_and_embeddings_give_counted_na_rows() -> None:
    enc, pairs, attributions, specs = setup()
    diagnostics: dict = {}
    table, curves = score_attributions(enc, pairs, attributions, "crop_aug", specs, CPU, 4, progress=False, diagnostics=diagnostics)
    cols = [c for c in table.columns if c != "image_id"]
    assert table.loc[[0, 1, 3], cols].isna().all().all()  # NaN map, inf map, zero-norm embedding: NA everywhere
    assert table.loc[[2, 4], ["SI", "SD", "CI", "CD"]].notna().all().all()
    assert all(np.isnan(c[[0, 1, 3]]).all() and np.isfinite(c[[2, 4]]).all() for c in curves.values())
    assert diagnostics["nonfinite_maps"] == 2 and diagnostics["zero_norm_embeddings"] == 1 and diagnostics["excluded_images"] == 3
    assert diagnostics["constant_maps"] == 1 and diagnostics["maps_with_ties"] == 2  # image 2 (constant) and image 4
    # the good rows equal a plain computation on those images alone
    for spec, params in specs:
        scores, _ = spec.fn(enc, pairs.x1[[2, 4]], pairs.x2[[2, 4]], attributions.map1[[2, 4]], attributions.map2[[2, 4]], params, MethodContext(CPU, 4))
        for k, v in scores.items():
            np.testing.assert_allclose(table.loc[[2, 4], k].to_numpy(), np.asarray(v, dtype=np.float64), rtol=1e-12, err_msg=k)


def test_ties_break_by_pixel_index() -> None:
    """A map with ties scores exactly as the same map with ties broken in favour of the lower pixel index."""
    enc, pairs, attributions, specs = setup()
    spec, params = specs[0]
    tied = attributions.map1[4:5]  # [1, 8, 8]
    broken = tied.double() - torch.arange(64, dtype=torch.float64).view(1, 8, 8) * 1e-6  # earlier pixel ranks first
    a, _ = spec.fn(enc, pairs.x1[4:5], pairs.x2[4:5], tied, attributions.map2[4:5], params, MethodContext(CPU, 4))
    b, _ = spec.fn(enc, pairs.x1[4:5], pairs.x2[4:5], broken.float(), attributions.map2[4:5], params, MethodContext(CPU, 4))
    for k in ("SD", "CD_1"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_map_diagnostics_counts() -> None:
    m = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 1.0], [1.0, 1.0]], [[5.0, float("nan")], [2.0, 3.0]], [[0.0, 1.0], [1.0, 3.0]]])
    d = map_diagnostics(m, None)
    assert d["nonfinite"].tolist() == [False, False, True, False]
    assert d["constant"].tolist() == [False, True, False, False]
    assert d["ties"].tolist() == [False, True, False, True]


def test_tables_say_na_and_report_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Per-image CSV and summary hold 'NA', never 'nan'/'inf'; excluded images are counted per method and logged."""
    enc, pairs, attributions, specs = setup()
    diagnostics: dict = {}
    table, curves = score_attributions(enc, pairs, attributions, "crop_aug", specs, CPU, 4, progress=False, diagnostics=diagnostics)
    d = tmp_path / "metrics"
    save_scores(table, curves, d / "shard-0.csv", d / "shard-0.curves.h5", {"diagnostics": diagnostics, "config_hash": "abc", "code_version": "def", "seed": 3})
    # a second "method" whose CSV carries an infinite value written by some other tool
    other = table.copy()
    other.loc[2, "SI"] = np.inf
    other.to_csv(d / "other.csv", index=False, na_rep="NA")
    out = tmp_path / "tables"
    with caplog.at_level(logging.INFO):
        summary = aggregate([d / "shard-0.csv", d / "other.csv"], ["good", "other"], METRICS, out / "scores.csv", out / "scores.md", out / "per_image.csv", "t")
    for name in ("scores.csv", "scores.md", "per_image.csv"):
        assert not re.search(r"\b(nan|-?inf)\b", (out / name).read_text(), re.I), name
    wide = pd.read_csv(out / "scores.csv", index_col="method", na_values=["NA"], keep_default_na=False)
    assert wide.loc["good", "excluded_images"] == 3 and wide.loc["good", "nonfinite_maps"] == 2 and wide.loc["good", "zero_norm_embeddings"] == 1
    assert wide.loc["good", "na_SI"] == 3 and wide.loc["other", "na_SI"] == 4  # the inf counted as NA
    np.testing.assert_allclose(summary.loc["other", "SI"], table.loc[4, "SI"])  # mean over the one finite image
    assert np.isfinite(summary.loc["good", "SI"])
    assert any("excluded_images" in r.getMessage() for r in caplog.records)
    assert any("infinite value" in r.getMessage() for r in caplog.records)


def test_all_na_cell_is_na_with_count(tmp_path: Path) -> None:
    """A cell no image can fill is written as NA and its na_<col> equals the number of images."""
    per = pd.DataFrame({"image_id": ["a", "b"], "SI": [np.nan, np.nan], "SD": [0.1, 0.2], "CI": [0.3, 0.4], "CD": [0.1, 0.1], "CI_1": [0, 0], "CI_2": [0, 0], "CD_1": [0, 0], "CD_2": [0, 0]})
    per.to_csv(tmp_path / "s.csv", index=False, na_rep="NA")
    aggregate([tmp_path / "s.csv"], ["m"], ["insertion_deletion"], tmp_path / "o.csv", tmp_path / "o.md", tmp_path / "l.csv", "t")
    row = pd.read_csv(tmp_path / "o.csv", keep_default_na=False).iloc[0]
    assert row["SI"] == "NA" and int(row["na_SI"]) == 2 and int(row["n_images"]) == 2
    assert "| m | NA |" in (tmp_path / "o.md").read_text()
