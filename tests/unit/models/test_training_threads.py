"""SimCLR training runs on the configured thread count, so its weights do not depend on the caller's threads (--cores)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from xai_ssl.models import build_architecture, load_encoder
from xai_ssl.models.simclr_training import SimCLRParams, train_simclr

CPU = torch.device("cpu")


def _train(ambient_threads: int, params: SimCLRParams) -> dict[str, torch.Tensor]:
    """Train a small model after setting torch's threads to ``ambient_threads`` (as a Snakemake job with that many would)."""
    images = torch.rand(16, 3, 24, 24, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(0)
    enc = build_architecture("small_resnet", width=8, embedding_dim=16, hidden_dim=32)
    torch.set_num_threads(ambient_threads)
    train_simclr(enc, images, params, seed=0, device=CPU, progress=False)
    assert torch.get_num_threads() == ambient_threads  # the caller's setting is restored
    return {k: v.clone() for k, v in enc.state_dict().items()}


def test_weights_do_not_depend_on_the_ambient_thread_count() -> None:
    params = SimCLRParams(epochs=1, batch_size=16, lr=2e-3, crop_scale=(0.3, 1.0), threads=2)
    one, two = _train(1, params), _train(2, params)
    assert all(torch.equal(one[k], two[k]) for k in one)


def test_the_thread_count_reaches_the_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """The configured count is what torch sees inside the training loop, whatever was set before."""
    import xai_ssl.models.simclr_training as training

    seen: list[int] = []
    original = training.nt_xent_loss

    def spy(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
        seen.append(torch.get_num_threads())
        return original(z1, z2, temperature)

    monkeypatch.setattr(training, "nt_xent_loss", spy)
    torch.set_num_threads(1)
    enc = build_architecture("small_resnet", width=4, embedding_dim=8, hidden_dim=16)
    train_simclr(enc, torch.rand(8, 3, 16, 16), SimCLRParams(epochs=1, batch_size=8, threads=3), 0, CPU, progress=False)
    assert seen == [3] and torch.get_num_threads() == 1


def test_bad_thread_count_is_refused() -> None:
    enc = build_architecture("small_resnet", width=4, embedding_dim=8, hidden_dim=16)
    with pytest.raises(ValueError, match="training.threads"):
        train_simclr(enc, torch.rand(8, 3, 16, 16), SimCLRParams(epochs=1, batch_size=8, threads=0), 0, CPU, progress=False)


def test_checkpoint_records_the_thread_count(tmp_path: Path) -> None:
    """train_model stores training.threads in the checkpoint's provenance (``extra``)."""
    from xai_ssl.data.synthetic_two4two import generate_two4two
    from xai_ssl.stages.data import index_dataset
    from xai_ssl.stages.models import train_model

    generate_two4two(tmp_path / "data", {"train": 8}, seed=0, resolution=32, progress=False)
    index_dataset(str(tmp_path / "index.csv"), "synthetic_two4two", str(tmp_path / "data"))
    model = {"arch": "small_resnet", "arch_params": {"width": 4, "embedding_dim": 8, "hidden_dim": 16}, "train_split": "train",
             "image_size": 16, "training": {"epochs": 1, "batch_size": 8, "threads": 1}}
    ckpt = tmp_path / "encoder.pt"
    train_model(str(tmp_path / "index.csv"), str(ckpt), str(tmp_path / "training.csv"), model, 0, "cpu", progress=False)
    extra = torch.load(ckpt, weights_only=True)["extra"]
    assert extra["threads"] == 1
    load_encoder(ckpt)
