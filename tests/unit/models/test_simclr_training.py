"""The survey's custom SimCLR (methods-survey.md §6): survey augmentation preset, SGD with momentum, the cosine
period, one training step of the ResNet-18 with the 512-512-128 head, and config/survey.yaml."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF
import yaml

from helpers import REPO
from xai_ssl.augment import AUGMENTATIONS, survey_augment
from xai_ssl.models import build_architecture
from xai_ssl.models.simclr_training import SimCLRParams, make_optimizer, train_simclr


def image(size: int = 16, seed: int = 0) -> torch.Tensor:
    """A random image [3, size, size] in [0, 1]."""
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))


def test_survey_preset_registered() -> None:
    assert AUGMENTATIONS["survey"] is survey_augment


def test_identity_when_everything_is_off() -> None:
    x = image()
    out = survey_augment(x, 16, torch.Generator().manual_seed(0), scale=(1.0, 1.0), p_rotate=0, p_flip=0, p_blur=0)
    assert torch.allclose(out, x, atol=1e-6)  # full-area crop of a square image = the image; no colour change


def test_rotation_is_plus_90_degrees() -> None:
    x = image()
    g = torch.Generator().manual_seed(3)
    out = survey_augment(x, 16, g, scale=(1.0, 1.0), p_rotate=1, p_flip=0, p_blur=0)
    g = torch.Generator().manual_seed(3)
    plain = survey_augment(x, 16, g, scale=(1.0, 1.0), p_rotate=0, p_flip=0, p_blur=0)
    assert torch.allclose(out, TF.rotate(plain, 90.0))  # torchvision: counter-clockwise


def test_no_colour_change_and_seeded() -> None:
    colour = torch.tensor([0.8, 0.2, 0.4])[:, None, None]
    flat = colour.expand(3, 32, 32).clone()
    for seed in range(20):
        v = survey_augment(flat, 24, torch.Generator().manual_seed(seed))
        assert torch.allclose(v, colour.expand(3, 24, 24), atol=1e-5)  # no jitter, no greyscale
    x = image(32)
    a = survey_augment(x, 24, torch.Generator().manual_seed(5))
    b = survey_augment(x, 24, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_sgd_optimizer_and_unknown_names() -> None:
    w = [torch.nn.Parameter(torch.zeros(2))]
    opt = make_optimizer(SimCLRParams(optimizer="sgd", lr=0.07, momentum=0.9, weight_decay=5e-4), w)
    assert isinstance(opt, torch.optim.SGD)
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.07, 0.9, 5e-4)
    assert isinstance(make_optimizer(SimCLRParams(), w), torch.optim.Adam)
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer(SimCLRParams(optimizer="lamb"), w)


def test_one_step_of_the_survey_model() -> None:
    """ResNet-18 + 512-512-128 head, SGD, survey views, cosine period 500 epochs: one step on 4 tiny images."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    enc = build_architecture("resnet18", embedding_dim=128, hidden_dim=512)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    params = SimCLRParams(epochs=1, batch_size=4, lr=0.07, weight_decay=5e-4, temperature=0.5, crop_scale=(0.08, 1.0),
                          optimizer="sgd", momentum=0.9, augment="survey", lr_schedule_epochs=500)
    history = train_simclr(enc, torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1)), params, 0, torch.device("cpu"), progress=False)
    assert len(history) == 1 and math.isfinite(history[0]["loss"])
    assert history[0]["lr"] == pytest.approx(0.07 * 0.5 * (1 + math.cos(math.pi * 1 / 500)))  # 1 of 500 steps
    assert any(not torch.equal(before[k], v) for k, v in enc.state_dict().items() if k.endswith("weight"))
    with torch.inference_mode():
        assert enc(torch.rand(2, 3, 32, 32)).shape == (2, 128)
    with pytest.raises(ValueError, match="augmentation preset"):
        train_simclr(enc, torch.rand(4, 3, 16, 16), SimCLRParams(epochs=1, batch_size=4, augment="none"), 0, torch.device("cpu"), progress=False)


def test_survey_config_validates() -> None:
    from xai_ssl.config import validate_config
    from xai_ssl.methods import METHOD_REGISTRY

    cfg = validate_config(yaml.safe_load((REPO / "config" / "survey.yaml").read_text()))
    assert cfg["datasets"]["two4two_iclr22"]["source"] == "two4two_archive"
    assert cfg["models"]["simclr_survey"]["training"]["augment"] == "survey"
    assert all(cfg["methods"][m].get("method", m) in METHOD_REGISTRY for m in cfg["run"]["methods"])
    assert cfg["run"]["metrics"] == ["insertion_deletion", "localisation"]


def test_lr_factor_warms_up_linearly_then_follows_the_cosine() -> None:
    """Warm-up of 4 steps, then a cosine over 10 steps (hand values)."""
    from xai_ssl.models.simclr_training import lr_factor

    got = [lr_factor(s, 4, 10) for s in range(15)]
    assert got[:4] == [0.25, 0.5, 0.75, 1.0]
    assert got[4] == pytest.approx(1.0) and got[9] == pytest.approx(0.5) and got[14] == pytest.approx(0.0)
    assert got[6] == pytest.approx(0.5 * (1 + math.cos(math.pi * 2 / 10)))
    assert [lr_factor(s, 0, 10) for s in (0, 5, 10, 20)] == pytest.approx([1.0, 0.5, 0.0, 0.0])  # no warm-up, held at 0 after the period
