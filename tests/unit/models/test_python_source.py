"""Model source ``python``: the factory protocol (file and module forms), strict weights, refusals, and the traits
the config validation reads from a factory built on the meta device."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from workflow_runner import TINY_CONFIG
from xai_ssl.config import ConfigError, validate_config
from xai_ssl.models.checkpoints import CheckpointError
from xai_ssl.models.registry import load_encoder, load_pretrained, save_encoder

USER_FILE = '''
import torch
from torch import nn

from xai_ssl.models import Encoder
from xai_ssl.models.python_source import load_state_file


class Net(nn.Module):
    def __init__(self, width=4, dim=6, act="relu"):
        super().__init__()
        a = nn.ReLU if act == "relu" else nn.SiLU
        self.backbone = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), a(), nn.Conv2d(width, 2 * width, 3, 2, 1), a())
        self.projector = nn.Sequential(nn.Linear(2 * width, 2 * width), a(), nn.Linear(2 * width, dim))


def build(checkpoint=None, width=4, dim=6, act="relu"):
    net = Net(width, dim, act)
    if checkpoint is not None:
        load_state_file(net, checkpoint)
    return Encoder(net.backbone, net.projector, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))


def plain(checkpoint=None):
    return Net()


def no_checkpoint_argument(width=4):
    return build(None, width)
'''
MEAN, STD = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, nn.Module]:
    """A working directory with the user's file ``enc_file.py`` (also importable as module ``enc_mod``) and weights."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "enc_file.py").write_text(textwrap.dedent(USER_FILE))
    (tmp_path / "enc_mod.py").write_text(textwrap.dedent(USER_FILE))
    import importlib.util

    spec = importlib.util.spec_from_file_location("weights_maker", tmp_path / "enc_file.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(3)
    net = mod.Net(4, 6).eval()
    torch.save(net.state_dict(), tmp_path / "weights.pth")
    return tmp_path, net


def by_hand(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The protocol's embedding of ``net``: projector(spatial mean of backbone((x - mean) / std))."""
    a = net.backbone((x - MEAN) / STD)
    return net.projector(a.mean(dim=(2, 3)))


@pytest.mark.parametrize("factory", ["enc_file.py:build", "enc_mod:build"])
def test_factory_loads_the_weights_and_follows_the_protocol(user: tuple, factory: str) -> None:
    work, net = user
    enc, arch, params = load_pretrained("python", work / "weights.pth", factory=factory, kwargs={"width": 4, "dim": 6})
    assert arch == "python" and params == {"factory": factory, "kwargs": {"width": 4, "dim": 6}}
    assert enc.source_facts["embedding"] == f"defined by the factory {factory}"
    with torch.no_grad():
        torch.testing.assert_close(enc(X), by_hand(net, X))
        assert enc.features(X).shape == (3, 8, 4, 4)
    save_encoder(enc, work / "encoder.pt", arch, params)
    back = load_encoder(work / "encoder.pt")  # rebuilt by the factory without a checkpoint, weights from encoder.pt
    with torch.no_grad():
        torch.testing.assert_close(back(X), enc(X), atol=0, rtol=0)


def test_factory_problems_are_refused_with_the_protocol(user: tuple) -> None:
    work, _ = user
    weights = work / "weights.pth"
    with pytest.raises(CheckpointError, match=r"returned Net; it must return an xai_ssl.models.Encoder\(trunk, head, mean, std\)"):
        load_pretrained("python", weights, factory="enc_file.py:plain")
    with pytest.raises(CheckpointError, match="must accept a 'checkpoint' argument"):
        load_pretrained("python", weights, factory="enc_file.py:no_checkpoint_argument")
    with pytest.raises(CheckpointError, match="has no function 'buidl'"):
        load_pretrained("python", weights, factory="enc_file.py:buidl")
    with pytest.raises(CheckpointError, match="cannot import module 'no_such_module'"):
        load_pretrained("python", weights, factory="no_such_module:build")
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        load_pretrained("python", work / "absent.pth", factory="enc_file.py:build")


def test_weights_are_loaded_strictly(user: tuple) -> None:
    work, net = user
    state = net.state_dict()
    state["projector.9.weight"] = state.pop("projector.2.weight")
    torch.save(state, work / "renamed.pth")
    with pytest.raises(CheckpointError) as err:
        load_pretrained("python", work / "renamed.pth", factory="enc_file.py:build")
    assert "renamed.pth" in str(err.value) and "projector.2.weight" in str(err.value) and "projector.9.weight" in str(err.value)


def python_config(act: str, method: str) -> dict:
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["models"]["mine"] = {"source": "python", "factory": "enc_file.py:build", "kwargs": {"act": act}, "checkpoint": "weights.pth"}
    cfg["methods"][method] = {}
    cfg["run"]["models"] = ["tiny_simclr", "mine"]
    cfg["run"]["methods"] = ["gradcam", method]
    return cfg


def test_guided_methods_follow_the_factory_activations(user: tuple) -> None:
    validate_config(python_config("relu", "input_x_gradient_g"), check_paths=False)  # ReLUs only: defined
    with pytest.raises(ConfigError, match=r"'input_x_gradient_g' is not defined for model 'mine'.*SiLU"):
        validate_config(python_config("silu", "input_x_gradient_g"), check_paths=False)
    cfg = python_config("relu", "vit_attention")
    cfg["methods"]["vit_attention"]["models"] = ["mine"]
    with pytest.raises(ConfigError, match=r"'vit_attention' is not defined for model 'mine'.*python enc_file.py:build is a CNN"):
        validate_config(cfg, check_paths=False)


def test_validation_builds_the_factory_on_the_meta_device(user: tuple) -> None:
    from xai_ssl.models.python_source import meta_build

    enc = meta_build("enc_file.py:build", {"width": 64, "dim": 64})
    assert all(p.is_meta for p in enc.parameters())
