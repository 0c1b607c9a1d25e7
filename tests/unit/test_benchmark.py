"""The benchmark's reference loops and Captum baseline compute the same values as our batched code."""

from __future__ import annotations

import csv

import pytest
import torch

from xai_ssl import benchmark as bm
from xai_ssl.device import choose_batch_size
from xai_ssl.methods import MethodContext, get_method
from xai_ssl.metrics import get_metric


@pytest.fixture(scope="module")
def enc() -> torch.nn.Module:
    """A seeded small encoder, channels-last as the benchmark runs it."""
    return bm.build_model("small_resnet", torch.device("cpu"), channels_last=True, autocast="none")


def test_occlusion_params_tile_the_image() -> None:
    for size in (32, 48, 224):
        p = bm.occlusion_params(size, 6)
        assert (size - p["window"]) % p["stride"] == 0 and (size - p["window"]) // p["stride"] + 1 == 6


@pytest.fixture(scope="module")
def occlusion_case(enc: torch.nn.Module) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """Two test images, the occlusion parameters (4 x 4 windows at 32 px) and our drop map [4, 4] of the first."""
    x = bm.test_images(2, 32, torch.device("cpu"))
    spec = get_method("conditional_occlusion")
    params = spec.resolve_params(bm.occlusion_params(32, 4), 32)
    m1, _ = spec.fn(enc, x[:1], x[1:], params, MethodContext(device=torch.device("cpu"), batch_size=5, seeds=[0]))
    return x, params, m1[0]


def test_reference_and_captum_occlusion_equal_ours(enc: torch.nn.Module, occlusion_case) -> None:
    """The seed-style loop cuts its windows by slicing, Captum places its own; neither uses our masks."""
    x, params, ours = occlusion_case
    ref = bm.reference_occlusion(enc, x[0], x[1], params["window"], params["stride"])
    cap = bm.captum_occlusion(enc, x[0], x[1], params["window"], params["stride"], batch_size=5)
    assert ref.abs().max() > 1e-3  # drops that tell windows apart
    ref_diff = (ref - ours).abs().max().item()
    cap_diff = (cap - bm.window_average(ours, 32, params["window"], params["stride"])).abs().max().item()
    assert ref_diff < 1e-5 and cap_diff < 1e-5, f"max |ours - reference| = {ref_diff:.1e}, max |window-averaged ours - captum| = {cap_diff:.1e}"


def test_window_average_by_hand() -> None:
    """Windows of 3 px at stride 2 on 5 px: pixel (2, 2) lies in all four windows, (0, 0) in one, (2, 0) in two."""
    avg = bm.window_average(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), 5, 3, 2)
    assert avg[0, 0] == 1.0 and avg[0, 4] == 2.0 and avg[4, 0] == 3.0 and avg[4, 4] == 4.0
    assert avg[2, 2] == 2.5 and avg[2, 0] == 2.0 and avg[0, 2] == 1.5


def test_reference_insertion_deletion_equals_ours(enc: torch.nn.Module) -> None:
    x = bm.test_images(4, 32, torch.device("cpu"))
    spec = get_metric("insertion_deletion")
    params = spec.resolve_params({"pixels_per_step": 128, "blur_kernel": 5, "blur_sigma": 2.0}, 32)
    g = torch.Generator().manual_seed(0)
    m1, m2 = torch.rand(2, 4, 4, generator=g), torch.rand(2, 4, 4, generator=g)
    ours, _ = spec.fn(enc, x[0::2], x[1::2], m1, m2, params, MethodContext(device=torch.device("cpu"), batch_size=3, seeds=[0, 0]))
    ref = bm.reference_insertion_deletion(enc, x[0::2], x[1::2], m1, m2, params)
    for name in ("SI", "SD", "CI", "CD"):
        assert ours[name] == pytest.approx(ref[name], abs=1e-5), name


def test_reference_ranking_steps_and_trapezoid_by_hand() -> None:
    """The reference's own pieces: descending order with ties by index, pps pixels per step, trapezoid over [0, 1]."""
    assert bm.reference_order(torch.tensor([[3.0, 1.0], [3.0, 0.0]]), 2) == [0, 2, 1, 3]
    start, target = torch.zeros(3, 2, 2), torch.ones(3, 2, 2)
    imgs = list(bm.reference_curve_images(start, target, [3, 0, 2, 1], 3))
    assert [img[0].flatten().tolist() for img in imgs] == [[0, 0, 0, 0], [1, 0, 1, 1], [1, 1, 1, 1]]
    assert bm.trapezoid([1.0, 0.5, 0.0]) == pytest.approx(0.5) and bm.trapezoid([0.0, 0.0, 0.0, 1.0]) == pytest.approx(1 / 6)


def test_choose_batch_size_is_a_timed_power_of_two(enc: torch.nn.Module) -> None:
    bs = choose_batch_size(enc, 32, torch.device("cpu"), largest=8, repeats=1)
    assert bs in (1, 2, 4, 8)


def test_study_estimate_scales_with_images() -> None:
    h1, parts = bm.study_estimate(10.0, 100)
    h2, _ = bm.study_estimate(10.0, 200)
    assert h1 > 0 and h2 == pytest.approx(2 * h1)
    assert sum(parts.values()) == pytest.approx(h1, rel=1e-9)


def test_benchmark_command_writes_tables(tmp_path) -> None:
    bm.main(["--model", "small_resnet", "--size", "32", "--device", "cpu", "--occlusion-positions", "4", "--curve-steps", "4", "--methods",
             "--out", str(tmp_path)])
    rows = list(csv.DictReader((tmp_path / "benchmark-cpu.csv").open()))
    variants = {(r["workload"], r["variant"]) for r in rows}
    assert {("plain forward", "limit"), ("conditional_occlusion", "ours"), ("conditional_occlusion", "reference"),
            ("conditional_occlusion", "captum"), ("insertion_deletion", "ours"), ("insertion_deletion", "reference")} <= variants
    checks = [r["check"] for r in rows if r["check"].startswith("max")]
    assert checks and all(float(c.rsplit("=", 1)[1]) < 1e-4 for c in checks)
    assert "batch_size" in (tmp_path / "benchmark-cpu.md").read_text()
    for r in rows:  # every ours row carries the limit measured next to it; its ratio is the median of the paired ratios
        if r["variant"] == "ours":
            assert float(r["limit_forwards_per_s"]) > 0
            lo, hi = (float(v) for v in r["vs_limit_range"].split("-"))
            assert lo <= float(r["vs_limit"]) <= hi


def test_channels_last_same_embeddings_and_autocast_refused_on_cpu() -> None:
    from xai_ssl.models.small_resnet import build_small_resnet

    torch.manual_seed(0)
    e = build_small_resnet(width=8, embedding_dim=16, hidden_dim=32).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.inference_mode():
        ref = e(x)
        fast = e.set_speed(channels_last=True)(x)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="CUDA"):
        e.set_speed(autocast="bfloat16")
    with pytest.raises(ValueError, match="not one of"):
        e.set_speed(autocast="half")


def test_steps_resolve_auto_batch_size() -> None:
    from xai_ssl.stages.inference import resolve_batch_size

    e = bm.build_model("small_resnet", torch.device("cpu"), channels_last=False, autocast="none")
    assert resolve_batch_size(12, e, 32, torch.device("cpu")) == 12
    assert resolve_batch_size("auto", e, 16, torch.device("cpu")) in (1, 2, 4, 8, 16, 32, 64)
