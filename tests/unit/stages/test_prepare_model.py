"""Bad checkpoints: missing, wrong sha256, truncated, wrong format, wrong keys -> an error naming the file and what to do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from checkpoint_layouts import write_torchvision
from xai_ssl.io.download import ChecksumError, sha256_file
from xai_ssl.models.registry import (
    CheckpointError,
    build_architecture,
    load_encoder,
    save_encoder,
)
from xai_ssl.stages.models import prepare_model

CFG = {"source": "torchvision_resnet", "variant": "resnet18"}


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid torchvision ResNet-18 state dict."""
    path = tmp_path_factory.mktemp("ckpt") / "resnet18.pth"
    write_torchvision(path, "resnet18")
    return path


def prepare(ckpt: Path, tmp_path: Path, **kwargs: str) -> str:
    """The CheckpointError message of preparing ``ckpt``; nothing may be written."""
    with pytest.raises(CheckpointError) as err:
        prepare_model(ckpt, tmp_path / "m" / "encoder.pt", tmp_path / "m" / "source.json", {**CFG, "checkpoint": str(ckpt)}, **kwargs)
    assert not (tmp_path / "m" / "encoder.pt").exists()
    return str(err.value)


def test_missing_file_without_url_says_where_to_put_it(tmp_path: Path) -> None:
    msg = prepare(tmp_path / "absent.pth", tmp_path)
    assert "absent.pth" in msg and "not found" in msg and "place the torchvision_resnet checkpoint there" in msg


def test_wrong_sha256_names_file_and_fix(good: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "resnet18.pth"
    ckpt.write_bytes(good.read_bytes())
    with pytest.raises(ChecksumError) as err:
        prepare_model(ckpt, tmp_path / "e.pt", tmp_path / "s.json", {**CFG, "checkpoint": str(ckpt)}, sha256="1" * 64)
    msg = str(err.value)
    assert str(ckpt) in msg and sha256_file(ckpt) in msg and "what to do" in msg and "replace it" in msg


def test_truncated_file(good: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "resnet18.pth"
    data = good.read_bytes()
    ckpt.write_bytes(data[: len(data) // 3])
    msg = prepare(ckpt, tmp_path, url="https://example.invalid/r18.pth")
    assert str(ckpt) in msg and "not a readable torch checkpoint" in msg and "delete it and rerun to download it again" in msg


def test_wrong_format(tmp_path: Path) -> None:
    ckpt = tmp_path / "resnet18.pth"
    ckpt.write_text("<html>404 Not Found</html>\n")  # what a failed download often saves
    msg = prepare(ckpt, tmp_path)
    assert str(ckpt) in msg and "torchvision_resnet" in msg and "what to do" in msg


def test_wrong_keys(good: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "resnet18.pth"
    state = torch.load(good, weights_only=True)
    state["layer9.weight"] = state.pop("layer1.0.conv1.weight")
    torch.save(state, ckpt)
    msg = prepare(ckpt, tmp_path)
    assert str(ckpt) in msg and "layer1.0.conv1.weight" in msg and "layer9.weight" in msg and "what to do" in msg


def test_truncated_encoder_checkpoint_names_the_file(tmp_path: Path) -> None:
    """A workflow encoder.pt cut short (e.g. a copy interrupted) is refused with its path."""
    path = tmp_path / "encoder.pt"
    save_encoder(build_architecture("small_resnet", width=4, embedding_dim=8, hidden_dim=16), path, "small_resnet", {"width": 4, "embedding_dim": 8, "hidden_dim": 16})
    load_encoder(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"encoder\.pt: not a readable torch checkpoint"):
        load_encoder(path)


# --- issue 20, item 5: embeddings that are infinite or all zero -------------------------------------------


def scaled_checkpoint(good: Path, path: Path, factor: float) -> Path:
    """The ResNet-18 with every weight and bias multiplied by ``factor`` (running statistics kept)."""
    state = torch.load(good, weights_only=True)
    for k, v in state.items():
        if v.is_floating_point() and "running" not in k:
            state[k] = v * factor
    torch.save(state, path)
    return path


def test_infinite_embedding_is_refused(good: Path, tmp_path: Path) -> None:
    """Weights x 1e30: the smoke embedding overflows; refused naming the checkpoint and what was seen."""
    ckpt = scaled_checkpoint(good, tmp_path / "huge.pth", 1e30)
    msg = prepare(ckpt, tmp_path)
    assert str(ckpt) in msg and "not finite" in msg
    assert re.search(r"\d+ of \d+ values (are )?(inf|infinite)", msg), msg  # what was seen


def test_all_zero_embedding_is_refused(good: Path, tmp_path: Path) -> None:
    """All-zero weights: every embedding is zero (cosine similarity undefined), refused with the norms seen."""
    ckpt = scaled_checkpoint(good, tmp_path / "zero.pth", 0.0)
    msg = prepare(ckpt, tmp_path)
    assert str(ckpt) in msg and "zero" in msg and "norm" in msg


def test_smoke_embedding_rules_directly() -> None:
    """The checks themselves, on hand-made embeddings: finite and non-zero pass; inf, NaN, zero norm fail."""
    from xai_ssl.models.prepare import check_embedding

    check_embedding(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), Path("x.pth"), "simsiam")
    for bad, word in [([[float("inf"), 0.0], [1.0, 1.0]], "inf"), ([[float("nan"), 0.0], [1.0, 1.0]], "nan"), ([[0.0, 0.0], [1.0, 1.0]], "zero"), ([[1e-30, 0.0], [1.0, 1.0]], "zero")]:
        with pytest.raises(CheckpointError, match=word):
            check_embedding(torch.tensor(bad), Path("x.pth"), "simsiam")
