"""Localisation metrics (PG, TKI, RRA, RMA against object and arm masks) on hand-made maps, against an
independent numpy computation (Quantus-style argsort), through score_attributions, and once on the real
two4two-mini renders with a tiny trained model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import background_distance
from xai_ssl.engine import explain_pairs
from xai_ssl.io.maps_file import Attributions
from xai_ssl.io.pairs_file import Pairs
from xai_ssl.methods import MethodContext, get_method
from xai_ssl.metrics import MetricContext, get_metric
from xai_ssl.metrics.localisation import (
    COLUMNS,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    score_maps,
    topk_intersection,
)
from xai_ssl.models import build_architecture
from xai_ssl.scoring import score_attributions

PARAMS = {"top_k": 4, "class_blocks": [7, 8], "abs": False}


def square_mask(h: int = 8, w: int = 8, rows: slice = slice(2, 4), cols: slice = slice(2, 5)) -> torch.Tensor:
    """Bool mask [h, w] with one rectangle set."""
    s = torch.zeros(h, w, dtype=torch.bool)
    s[rows, cols] = True
    return s


def numpy_reference(a: np.ndarray, s: np.ndarray, k: int) -> dict[str, float]:
    """Independent scores for maps without ties: Quantus-style argsort on flattened arrays."""
    af, sf = a.ravel(), s.ravel().astype(bool)
    order = np.argsort(-af, kind="stable")
    pos = np.clip(af, 0, None)
    return {
        "PG": float(sf[np.argmax(af)]),
        "TKI": float(sf[order[:k]].sum()) / k,
        "RRA": float(sf[order[: sf.sum()]].sum()) / sf.sum(),
        "RMA": float(pos[sf].sum() / pos.sum()),
    }


def test_perfect_map_scores_one() -> None:
    s = square_mask()  # 6 pixels
    a = s.double() + 0.01 * torch.arange(64, dtype=torch.float64).view(8, 8) * s  # no ties inside s, 0 outside
    assert pointing_game(a, s) == 1.0
    assert topk_intersection(a, s, 4) == 1.0
    assert relevance_rank_accuracy(a, s) == 1.0
    assert relevance_mass_accuracy(a, s) == 1.0


def test_reversed_map_scores_zero() -> None:
    s = square_mask()
    a = (~s).double() * (1 + torch.rand(8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    assert pointing_game(a, s) == 0.0
    assert topk_intersection(a, s, 4) == 0.0
    assert relevance_rank_accuracy(a, s) == 0.0
    assert relevance_mass_accuracy(a, s) == 0.0


def test_ties_are_expected_value_over_random_order() -> None:
    s = square_mask()  # 6 of 64 pixels
    const = torch.full((8, 8), 0.3, dtype=torch.float64)
    assert pointing_game(const, s) == 1.0  # every arg-max counts
    assert topk_intersection(const, s, 4) == pytest.approx(6 / 64)
    assert relevance_rank_accuracy(const, s) == pytest.approx(6 / 64)
    assert relevance_mass_accuracy(const, s) == pytest.approx(6 / 64)
    # 2 strict top pixels (one in s), then a tie of 4 pixels (two in s) for the remaining 2 of k = 4
    a = torch.zeros(8, 8, dtype=torch.float64)
    a[2, 2], a[7, 7] = 5.0, 4.0
    a[2, 3], a[3, 3], a[6, 6], a[6, 7] = 3.0, 3.0, 3.0, 3.0
    assert topk_intersection(a, s, 4) == pytest.approx((1 + 2 * 2 / 4) / 4)


def test_empty_mask_is_na() -> None:
    a = torch.rand(8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    s = torch.zeros(8, 8, dtype=torch.bool)
    for value in (pointing_game(a, s), topk_intersection(a, s, 4), relevance_rank_accuracy(a, s), relevance_mass_accuracy(a, s)):
        assert math.isnan(value)


def test_rma_na_without_positive_mass() -> None:
    assert math.isnan(relevance_mass_accuracy(-torch.ones(8, 8, dtype=torch.float64), square_mask()))


def test_pointing_game_row_col_order() -> None:
    """The survey's bug indexed the mask with the (row, col) pair as two row indices (§10 item 3)."""
    h, w = 6, 10  # non-square, so a row/col swap cannot go unnoticed
    s = torch.zeros(h, w, dtype=torch.bool)
    s[1, 5] = True
    a = torch.zeros(h, w, dtype=torch.float64)
    a[5, 1] = 1.0  # arg-max at the transposed position: a miss
    assert pointing_game(a, s) == 0.0
    r, c = np.unravel_index(int(a.argmax()), (h, w))
    assert bool(s.numpy()[[r, c]].any())  # the buggy indexing (rows r and c) would call it a hit
    b = torch.zeros(h, w, dtype=torch.float64)
    b[1, 5] = 1.0
    assert pointing_game(b, s) == 1.0
    c2 = torch.zeros(h, w, dtype=torch.float64)
    c2[4, 9] = 1.0  # row 4, col 9: col 9 is not a valid row, the buggy code would fail; ours is a clean miss
    assert pointing_game(c2, s) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_maps_match_numpy_reference(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(12, 9, generator=g, dtype=torch.float64)  # continuous: no ties
    s = torch.rand(12, 9, generator=g) < 0.3
    ref = numpy_reference(a.numpy(), s.numpy(), 7)
    assert pointing_game(a, s) == ref["PG"]
    assert topk_intersection(a, s, 7) == pytest.approx(ref["TKI"])
    assert relevance_rank_accuracy(a, s) == pytest.approx(ref["RRA"])
    assert relevance_mass_accuracy(a, s) == pytest.approx(ref["RMA"])


def test_object_and_arm_truths_from_labels() -> None:
    labels = torch.zeros(1, 8, 8, dtype=torch.uint8)
    labels[0, 1:3, 1:3] = 3  # spine
    labels[0, 5:7, 5:7] = 7  # right arm
    a = torch.zeros(1, 8, 8, dtype=torch.float64)
    a[0, 1:3, 1:3] = 1.0  # all relevance on the spine
    out = score_maps(a, labels, PARAMS)
    assert out["PG_obj"][0] == 1.0 and out["RMA_obj"][0] == 1.0 and out["RRA_obj"][0] == pytest.approx((4 + 4 * 4 / 60) / 8)  # 4 hits + 4 of 60 tied zeros, 4 of them in s
    assert out["PG_arm"][0] == 0.0 and out["RMA_arm"][0] == 0.0 and out["RRA_arm"][0] == 0.0
    no_arm = labels.clone()
    no_arm[no_arm == 7] = 2
    out = score_maps(a, no_arm, PARAMS)
    assert all(math.isnan(out[f"{m}_arm"][0]) for m in ("PG", "TKI", "RRA", "RMA"))
    assert out["PG_obj"][0] == 1.0


def test_feature_resolution_map_is_upsampled_bilinear() -> None:
    labels = torch.zeros(1, 16, 16, dtype=torch.uint8)
    labels[0, 4:8, 8:12] = 1  # cell (1, 2) of a 4x4 grid
    m = torch.zeros(1, 4, 4)
    m[0, 1, 2] = 1.0
    out = score_maps(m, labels, PARAMS)
    assert out["PG_obj"][0] == 1.0 and out["RRA_obj"][0] == 1.0
    up = torch.nn.functional.interpolate(m[:, None].double(), size=(16, 16), mode="bilinear", align_corners=False)[0, 0]
    ref = numpy_reference(up.numpy(), labels[0].numpy() > 0, 4)
    assert out["RMA_obj"][0] == pytest.approx(ref["RMA"])


def test_registry_defaults_scale_top_k_with_area() -> None:
    spec = get_metric("localisation")
    assert spec.resolve_params({}, 128)["top_k"] == 1000
    assert spec.resolve_params({}, 256)["top_k"] == 4000
    assert spec.resolve_params({}, 48)["top_k"] == round(1000 * 48 * 48 / 128**2)
    assert spec.resolve_params({"top_k": 50}, 48)["top_k"] == 50
    assert set(spec.directions) == set(COLUMNS) and set(spec.directions.values()) == {"↑"}
    with pytest.raises(KeyError):
        spec.resolve_params({"k": 3}, 48)


def _tiny_encoder() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_architecture("small_resnet", width=4, embedding_dim=8, hidden_dim=16).eval()


def test_na_without_masks() -> None:
    spec = get_metric("localisation")
    params = spec.resolve_params({}, 16)
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    m = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(1))
    for ctx in (MethodContext(device=torch.device("cpu")), MetricContext(device=torch.device("cpu"))):
        scores, curves = spec.fn(_tiny_encoder(), x, x, m, None, params, ctx)
        assert set(scores) == set(COLUMNS) and curves == {}
        assert all(np.isnan(v).all() and v.shape == (3,) for v in scores.values())


def _pairs(n: int, size: int, masks: np.ndarray | None) -> Pairs:
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(2))
    return Pairs([f"img{i}" for i in range(n)], np.arange(n), x, x.flip(-1), x, masks)


def test_score_attributions_passes_masks_in_chunks() -> None:
    n, size = 5, 16
    labels = np.zeros((n, size, size), np.uint8)
    maps = torch.zeros(n, size, size)
    for i in range(n):
        labels[i, i : i + 3, 2:6] = 1 + i  # image 4 has label 5 (no arm)
        labels[i, 10:12, 10:13] = 8
        maps[i, i + 1, 3] = 1.0  # inside the object, not on the arm
    attr = Attributions([f"img{i}" for i in range(n)], np.arange(n), maps, None, {})
    spec = get_metric("localisation")
    params = spec.resolve_params({"top_k": 3}, size)
    table, _ = score_attributions(_tiny_encoder(), _pairs(n, size, labels), attr, "crop_aug", [(spec, params)], torch.device("cpu"), batch_size=2, progress=False)
    assert list(table.columns) == ["image_id", *COLUMNS]
    assert (table["PG_obj"] == 1.0).all() and (table["PG_arm"] == 0.0).all()
    assert np.allclose(table["RMA_obj"], 1.0) and np.allclose(table["RMA_arm"], 0.0)
    table, _ = score_attributions(_tiny_encoder(), _pairs(n, size, None), attr, "crop_aug", [(spec, params)], torch.device("cpu"), batch_size=2, progress=False)
    assert table[list(COLUMNS)].isna().all().all()


def test_localisation_on_real_renders(two4two_mini: Path, tmp_path: Path) -> None:
    """A tiny SimCLR model trained briefly on the real train renders; Grad-CAM maps of the test split scored."""
    from xai_ssl.data.images import load_resized
    from xai_ssl.io.pairs_file import read_pairs
    from xai_ssl.models.simclr_training import SimCLRParams, train_simclr
    from xai_ssl.stages.data import index_dataset, make_pairs

    torch.set_num_threads(1)
    size = 48
    records = index_dataset(tmp_path / "index.csv", "two4two", two4two_mini)
    make_pairs(tmp_path / "index.csv", tmp_path / "pairs.h5", "test", None, size, seed=0, crop_scale=(0.3, 1.0), progress=False)
    pairs = read_pairs(tmp_path / "pairs.h5")
    assert pairs.mask1 is not None and pairs.mask1.shape == (32, size, size)
    assert set(np.unique(pairs.mask1)) <= set(range(9)) and (pairs.mask1 >= 7).any()
    train = load_resized([r.path for r in records if r.split == "train"], size)
    torch.manual_seed(0)
    enc = build_architecture("small_resnet", width=8, embedding_dim=32, hidden_dim=64)
    train_simclr(enc, train, SimCLRParams(epochs=3, batch_size=16, lr=2e-3, crop_scale=(0.3, 1.0)), 0, torch.device("cpu"), progress=False)
    spec_m = get_method("gradcam")
    mparams = spec_m.resolve_params({}, size)
    map1, map2 = explain_pairs(enc, pairs, spec_m, mparams, 0, torch.device("cpu"), 16, "gradcam", progress=False)
    attr = Attributions(pairs.image_ids, pairs.indices, map1, map2, {})
    spec = get_metric("localisation")
    params = spec.resolve_params({}, size)
    table, _ = score_attributions(enc, pairs, attr, spec_m.pair_family, [(spec, params)], torch.device("cpu"), 16, progress=False)
    g = torch.Generator().manual_seed(0)
    rand = Attributions(pairs.image_ids, pairs.indices, torch.rand(map1.shape, generator=g), None, {})
    rtable, _ = score_attributions(enc, pairs, rand, spec_m.pair_family, [(spec, params)], torch.device("cpu"), 16, progress=False)
    print(f"\nlocalisation on two4two-mini test (32 images, {size} px, top_k={params['top_k']}, Grad-CAM map {tuple(map1.shape[1:])}):")
    print("gradcam:", table[list(COLUMNS)].mean().round(4).to_dict())
    print("random :", rtable[list(COLUMNS)].mean().round(4).to_dict())
    assert table["PG_obj"].notna().all()
    assert ((table[list(COLUMNS)].stack() >= 0) & (table[list(COLUMNS)].stack() <= 1)).all()
    obj_frac = float((pairs.mask1 > 0).mean())
    assert abs(rtable["RRA_obj"].mean() - obj_frac) < 0.1  # random maps score about chance
    # a map known to be right (the distance from the background colour, from x1 alone) beats itself rotated by 180°
    right = background_distance(pairs.x1)
    scores = {}
    for name, m in (("right", right), ("rotated", right.flip(-1, -2))):
        attr = Attributions(pairs.image_ids, pairs.indices, m, None, {})
        scores[name], _ = score_attributions(enc, pairs, attr, spec_m.pair_family, [(spec, params)], torch.device("cpu"), 5, progress=False)
    for col in ("TKI_obj", "RRA_obj", "RMA_obj"):
        assert (scores["right"][col] > scores["rotated"][col]).all(), col
    assert scores["right"]["PG_obj"].mean() > 0.9 and scores["right"]["RRA_obj"].mean() > 0.6
