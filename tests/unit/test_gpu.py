"""GPU: methods and metrics give the CPU's numbers on CUDA (skipped without a CUDA device)."""

from __future__ import annotations

import pytest
import torch

from helpers import OPTIONAL
from xai_ssl.methods import MethodContext, get_method
from xai_ssl.metrics import get_metric
from xai_ssl.models.registry import build_architecture

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason=f"{OPTIONAL} no CUDA device")]


@pytest.mark.parametrize("method", ["conditional_occlusion", "gradcam", "input_x_gradient"])
def test_method_and_metric_match_cpu(method: str) -> None:
    torch.manual_seed(0)
    encoder = build_architecture("small_resnet", width=8, embedding_dim=16, hidden_dim=32).eval()
    x1, x2 = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    spec, metric = get_method(method), get_metric("insertion_deletion")
    params, mparams = spec.resolve_params({}, 32), metric.resolve_params({}, 32)
    results = {}
    for dev in ("cpu", "cuda"):
        d = torch.device(dev)
        enc = encoder.to(d)
        ctx = MethodContext(d, 16)
        m1, m2 = spec.fn(enc, x1.to(d), x2.to(d), params, ctx)
        scores, _ = metric.fn(enc, x1.to(d), x2.to(d), m1, m2, mparams, ctx)
        results[dev] = (m1.cpu(), m2.cpu(), scores)
    torch.testing.assert_close(results["cuda"][0], results["cpu"][0], rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(results["cuda"][1], results["cpu"][1], rtol=1e-3, atol=1e-4)
    for key in ("SI", "SD", "CI", "CD"):
        assert abs(results["cuda"][2][key] - results["cpu"][2][key]).max() < 5e-3, key


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_autocast_moves_metrics_by_less_than_0005(dtype: str) -> None:
    """Issue #8: with autocast on, insertion/deletion scores of the same maps move by < 0.005 against fp32."""
    from xai_ssl.models.torchvision_resnet import build_torchvision_resnet_encoder

    torch.manual_seed(0)
    d = torch.device("cuda")
    enc = build_torchvision_resnet_encoder("resnet18").to(d).eval()
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.rand(4, 3, 64, 64, generator=g).to(d), torch.rand(4, 3, 64, 64, generator=g).to(d)
    spec, metric = get_method("gradcam"), get_metric("insertion_deletion")
    ctx = MethodContext(d, 32)
    m1, m2 = spec.fn(enc, x1, x2, spec.resolve_params({}, 64), ctx)
    mparams = metric.resolve_params({}, 64)
    fp32, _ = metric.fn(enc, x1, x2, m1, m2, mparams, ctx)
    enc.set_speed(channels_last=True, autocast=dtype)
    low, _ = metric.fn(enc, x1, x2, m1, m2, mparams, ctx)
    enc.set_speed(channels_last=False, autocast="none")
    for key in ("SI", "SD", "CI", "CD"):
        assert abs(low[key] - fp32[key]).max() < 5e-3, (key, low[key], fp32[key])


def test_auto_batch_size_on_gpu_is_large() -> None:
    """The fastest batch on a GPU is not a CPU-sized one (issue #8)."""
    from xai_ssl.device import choose_batch_size
    from xai_ssl.models.torchvision_resnet import build_torchvision_resnet_encoder

    enc = build_torchvision_resnet_encoder("resnet50").to("cuda").eval()
    assert choose_batch_size(enc, 224, torch.device("cuda"), largest=256) >= 16
