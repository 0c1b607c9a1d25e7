"""Average drop / increase in confidence (SAD, SIC, CAD, CID) against hand computations on an analytic encoder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xai_ssl.methods import MethodContext
from xai_ssl.metrics import METRIC_REGISTRY, get_metric
from xai_ssl.metrics.average_drop import drop_increase, masked_images, minmax_normalise
from xai_ssl.models import Encoder, build_architecture

CPU = torch.device("cpu")
ADI = get_metric("average_drop_increase")
SIZE = 16
REGION = (slice(3, 9), slice(6, 12))  # a 6 x 6 block R


def ctx(batch_size: int = 32) -> MethodContext:
    return MethodContext(device=CPU, batch_size=batch_size)


class MaskTrunk(nn.Module):
    """Keeps the pixels inside the region R and zeroes the rest: the embedding is linear in the pixels of R."""

    def __init__(self) -> None:
        super().__init__()
        mask = torch.zeros(SIZE, SIZE, dtype=torch.float64)
        mask[REGION] = 1
        self.register_buffer("mask", mask[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


def analytic_encoder(weight: list[list[float]], bias: list[float]) -> tuple[Encoder, callable]:
    """z = W · mean_{H,W}(x ⊙ 1_R) + b (no input normalisation: the baseline is black); and the same by hand."""
    head = nn.Linear(3, len(weight)).double()
    with torch.no_grad():
        head.weight.copy_(torch.tensor(weight, dtype=torch.float64))
        head.bias.copy_(torch.tensor(bias, dtype=torch.float64))
    enc = Encoder(MaskTrunk(), head).double().eval()
    w, b = np.array(weight), np.array(bias)
    mask = np.zeros((SIZE, SIZE))
    mask[REGION] = 1

    def embed(img: np.ndarray) -> np.ndarray:  # [3, H, W] -> z, by hand
        return w @ (img * mask).mean(axis=(1, 2)) + b

    return enc, embed


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def region_image(rgb: tuple[float, float, float], background: tuple[float, float, float] = (0.2, 0.5, 0.9)) -> torch.Tensor:
    x = torch.empty(1, 3, SIZE, SIZE, dtype=torch.float64)
    for c in range(3):
        x[0, c] = background[c]
        x[0, c][REGION] = rgb[c]
    return x


def region_map(inside: float) -> torch.Tensor:
    """A map with value ``inside`` on R, 1 at one outside pixel and 0 at another: min-max leaves it unchanged."""
    m = torch.full((1, SIZE, SIZE), 0.3, dtype=torch.float64)
    m[0][REGION] = inside
    m[0, 0, 0], m[0, -1, -1] = 1.0, 0.0
    return m


W = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
BIAS = [0.0, 0.0, 0.05]  # towards blue: shrinking the red-ish R moves z̃ away from z2


def test_known_average_drop_by_hand() -> None:
    """ê = 0.25 on R: the masked embedding is 0.25·a + b, so B and M follow from the colours of R."""
    enc, embed = analytic_encoder(W, BIAS)
    x1, x2 = region_image((0.9, 0.1, 0.3)), region_image((0.6, 0.4, 0.2))
    scores, curves = ADI.fn(enc, x1, x2, region_map(0.25), region_map(0.5), ADI.resolve_params({}, SIZE), ctx())
    assert curves == {}
    z1, z2 = embed(x1[0].numpy()), embed(x2[0].numpy())
    zt1, zt2 = embed(0.25 * x1[0].numpy()), embed(0.5 * x2[0].numpy())  # black baseline: x̃ = ê x
    b = cos(z1, z2)
    m1, m2, ms = cos(zt1, z2), cos(z1, zt2), cos(zt1, zt2)
    assert b > 0
    assert scores["ADI_B"][0] == pytest.approx(b, abs=1e-12)
    for name, m in (("CAD_1", m1), ("CAD_2", m2), ("SAD", ms)):
        assert scores[name][0] == pytest.approx(max(0.0, b - m) / b, abs=1e-12), name
    for name, m in (("CID_1", m1), ("CID_2", m2), ("SIC", ms)):
        assert scores[name][0] == float(m > b), name
    assert scores["CAD"][0] == pytest.approx((scores["CAD_1"][0] + scores["CAD_2"][0]) / 2)
    assert scores["CID"][0] == pytest.approx((scores["CID_1"][0] + scores["CID_2"][0]) / 2)
    assert scores["CAD_1"][0] > 0.001  # a real drop, not a trivially zero case
    assert scores["ADI_constant_maps"][0] == 0


def test_increase_indicator_is_strict_and_fires() -> None:
    """ê = 1 on R keeps f(x) exactly: M = B, no drop and no increase. Small ê pulls both embeddings
    towards the shared bias, so the simultaneous similarity rises: SIC = 1."""
    enc, embed = analytic_encoder(W, [0.3, 0.3, 0.3])
    x1, x2 = region_image((0.9, 0.1, 0.3)), region_image((0.1, 0.8, 0.3))
    keep, _ = ADI.fn(enc, x1, x2, region_map(1.0), region_map(1.0), ADI.resolve_params({}, SIZE), ctx())
    assert keep["ADI_M_1"][0] == keep["ADI_B"][0] == keep["ADI_M_S"][0]
    for name in ("SAD", "CAD", "SIC", "CID"):
        assert keep[name][0] == 0.0, name
    shrink, _ = ADI.fn(enc, x1, x2, region_map(0.05), region_map(0.05), ADI.resolve_params({}, SIZE), ctx())
    zt1, zt2 = embed(0.05 * x1[0].numpy()), embed(0.05 * x2[0].numpy())
    assert cos(zt1, zt2) > shrink["ADI_B"][0]
    assert shrink["SIC"][0] == 1.0 and shrink["SAD"][0] == 0.0
    assert shrink["ADI_M_S"][0] == pytest.approx(cos(zt1, zt2), abs=1e-12)


def test_non_positive_base_gives_na_drop_but_an_increase_value() -> None:
    """Anti-aligned embeddings: B < 0, so the drop ratio is NA; the increase indicator is still defined."""
    enc, embed = analytic_encoder([[1.0, -1.0, 0.0], [0.1, 0.1, 0.0]], [0.0, 0.0])
    x1, x2 = region_image((0.9, 0.0, 0.0), (0, 0, 0)), region_image((0.0, 0.9, 0.0), (0, 0, 0))
    scores, _ = ADI.fn(enc, x1, x2, region_map(0.5), region_map(0.5), ADI.resolve_params({}, SIZE), ctx())
    b = cos(embed(x1[0].numpy()), embed(x2[0].numpy()))
    assert b < 0 and scores["ADI_B"][0] == pytest.approx(b, abs=1e-12)
    for name in ("SAD", "CAD", "CAD_1", "CAD_2"):
        assert math.isnan(scores[name][0]), name
    for name in ("SIC", "CID_1", "CID_2"):
        assert scores[name][0] in (0.0, 1.0), name
    # B exactly 0 is NA as well
    drop, inc = drop_increase(np.array([0.0, -0.2, 0.5, 0.5, 0.5]), np.array([0.1, -0.5, 0.2, 0.9, -0.5]))
    assert math.isnan(drop[0]) and math.isnan(drop[1])
    np.testing.assert_allclose(drop[2:], [0.6, 0.0, 2.0])  # M < 0 can give a drop above 1 (as defined)
    np.testing.assert_array_equal(inc, [1.0, 0.0, 0.0, 1.0, 0.0])


def test_constant_map() -> None:
    """A constant map has no min-max: ê = constant_map everywhere (0 = the baseline image by default)."""
    enc, embed = analytic_encoder(W, BIAS)
    x1, x2 = region_image((0.9, 0.1, 0.3)), region_image((0.6, 0.4, 0.2))
    flat = torch.full((1, SIZE, SIZE), 0.7, dtype=torch.float64)
    scores, _ = ADI.fn(enc, x1, x2, flat, region_map(0.5), ADI.resolve_params({}, SIZE), ctx())
    z1, z2 = embed(x1[0].numpy()), embed(x2[0].numpy())
    b, m1 = cos(z1, z2), cos(np.array(BIAS), z2)  # x̃1 = black: z̃1 = b
    assert scores["ADI_M_1"][0] == pytest.approx(m1, abs=1e-12)
    assert scores["CAD_1"][0] == pytest.approx(max(0.0, b - m1) / b, abs=1e-12)
    assert scores["ADI_constant_maps"][0] == 1
    ones, _ = ADI.fn(enc, x1, x2, flat, flat, ADI.resolve_params({"constant_map": 1}, SIZE), ctx())
    assert ones["ADI_constant_maps"][0] == 2
    assert ones["ADI_M_S"][0] == pytest.approx(b, abs=1e-12) and ones["SAD"][0] == 0.0 and ones["SIC"][0] == 0.0
    e, const = minmax_normalise(torch.stack([flat[0], region_map(0.25)[0]]))
    assert const.tolist() == [True, False]
    assert float(e[0].abs().max()) == 0.0 and float(e[1].min()) == 0.0 and float(e[1].max()) == 1.0
    with pytest.raises(ValueError, match="constant_map"):
        ADI.resolve_params({"constant_map": 0.5}, SIZE)


def test_single_map_method_has_no_simultaneous_scores() -> None:
    enc, _ = analytic_encoder(W, BIAS)
    x1, x2 = region_image((0.9, 0.1, 0.3)), region_image((0.6, 0.4, 0.2))
    scores, _ = ADI.fn(enc, x1, x2, region_map(0.25), None, ADI.resolve_params({}, SIZE), ctx())
    assert math.isnan(scores["SAD"][0]) and math.isnan(scores["SIC"][0])
    assert scores["CAD"][0] == scores["CAD_1"][0] and scores["CID"][0] == scores["CID_1"][0]
    assert "CAD_2" not in scores and "ADI_M_S" not in scores


def test_masking_is_in_model_input_space_and_maps_are_upsampled() -> None:
    """With a normalising encoder the masked image is ê ⊙ x after normalisation (pixels: baseline + ê (x - baseline))."""
    torch.manual_seed(0)
    enc = build_architecture("small_resnet", width=4, embedding_dim=8, hidden_dim=16, normalise=True).double().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, SIZE, SIZE, generator=g, dtype=torch.float64)
    coarse = torch.rand(2, 4, 4, generator=g, dtype=torch.float64)
    xt, _ = masked_images(enc, x, coarse)
    up = F.interpolate(coarse[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)[:, 0]
    e = (up - up.amin((1, 2), keepdim=True)) / (up.amax((1, 2), keepdim=True) - up.amin((1, 2), keepdim=True))
    torch.testing.assert_close(enc.normalise(xt), e[:, None] * enc.normalise(x), rtol=1e-12, atol=1e-12)
    # the metric on the coarse map equals the metric on its bilinear upsampling, and is batch-size invariant
    x2 = torch.rand(2, 3, SIZE, SIZE, generator=g, dtype=torch.float64)
    params = ADI.resolve_params({}, SIZE)
    a, _ = ADI.fn(enc, x, x2, coarse, coarse.flip(1), params, ctx(1))
    b, _ = ADI.fn(enc, x, x2, up, F.interpolate(coarse.flip(1)[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)[:, 0], params, ctx(64))
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-10, err_msg=k)


def test_registered_with_paper_columns() -> None:
    assert "average_drop_increase" in METRIC_REGISTRY
    assert ADI.directions == {"SAD": "↓", "SIC": "↑", "CAD": "↓", "CID": "↑"}
    assert ADI.resolve_params({}, 48) == {"constant_map": 0.0}
    with pytest.raises(KeyError, match="accepted"):
        ADI.resolve_params({"constant": 1}, 48)
