"""SimCLR (NT-Xent) training of an encoder on a tensor of images, seeded and with a progress bar."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from xai_ssl.augment import simclr_augment
from xai_ssl.models.encoder import Encoder
from xai_ssl.seeding import derive_seed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimCLRParams:
    """Training hyper-parameters (config ``models.<name>.training``)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-6
    temperature: float = 0.5
    crop_scale: tuple[float, float] = (0.2, 1.0)


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent loss of two views [N, D]: cross-entropy over cosine logits / tau, 2N-2 in-batch negatives."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # [2N, D]
    logits = z @ z.T / temperature  # [2N, 2N]
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def _views(images: torch.Tensor, g: torch.Generator, scale: tuple[float, float]) -> torch.Tensor:
    size = images.shape[-1]
    return torch.stack([simclr_augment(img, size, g, scale=scale) for img in images])


def train_simclr(
    encoder: Encoder,
    images: torch.Tensor,
    params: SimCLRParams,
    seed: int,
    device: torch.device,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``encoder`` in place on images [N, 3, H, W] in [0, 1]; returns the per-epoch loss history."""
    n = images.shape[0]
    batch = min(params.batch_size, n)
    if batch < 2:
        raise ValueError(f"SimCLR needs at least 2 training images per batch, got {n} images")
    torch.manual_seed(derive_seed(seed, "init"))
    encoder.to(device).train()
    opt = torch.optim.Adam(encoder.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    steps_per_epoch = n // batch
    total = params.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / max(total, 1))))
    g = torch.Generator().manual_seed(derive_seed(seed, "simclr-augment"))
    history: list[dict[str, float]] = []
    bar = tqdm(total=total, desc="SimCLR training", unit="step", disable=not progress)
    for epoch in range(params.epochs):
        perm = torch.randperm(n, generator=g)
        losses = []
        for step in range(steps_per_epoch):
            idx = perm[step * batch : (step + 1) * batch]
            v1 = _views(images[idx], g, params.crop_scale).to(device)  # [B, 3, H, W]
            v2 = _views(images[idx], g, params.crop_scale).to(device)
            loss = nt_xent_loss(encoder(v1), encoder(v2), params.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss))
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.3f}")
        record = {"epoch": epoch + 1, "loss": sum(losses) / len(losses), "lr": sched.get_last_lr()[0]}
        history.append(record)
        log.info("epoch %d/%d loss %.4f", epoch + 1, params.epochs, record["loss"])
    bar.close()
    encoder.eval()
    return history
