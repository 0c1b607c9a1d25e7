"""SimCLR (NT-Xent) training of an encoder on a tensor of images, seeded and with a progress bar."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from xai_ssl.models.batch_views import BATCH_AUGMENTATIONS
from xai_ssl.models.encoder import Encoder
from xai_ssl.seeding import derive_seed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimCLRParams:
    """Training hyper-parameters (config ``models.<name>.training``).

    ``optimizer`` adam (default) or sgd (with ``momentum``; the survey: lr 0.07, momentum 0.9, weight decay
    5e-4); ``augment`` the view preset (``simclr``: crop, flip, colour jitter, greyscale, blur; ``survey``:
    crop, +90 degree rotation, h/v flips, blur, no colour — ``methods-survey.md`` §6); the learning rate
    follows a cosine over ``lr_schedule_epochs`` epochs (null = the training length), stepped per batch.
    The survey's ``CosineAnnealingLR(T_max=500)`` over ~200 epochs is ``lr_schedule_epochs: 500`` (its
    restarts at every Kaggle session are not reproduced). ``warmup_epochs``: linear warm-up of the learning
    rate before the cosine. ``threads``: torch's CPU thread count during training, set by the training
    itself, so the weights do not depend on how many threads the caller (e.g. the Snakemake job) had.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-6
    temperature: float = 0.5
    crop_scale: tuple[float, float] = (0.2, 1.0)
    optimizer: str = "adam"
    momentum: float = 0.9
    augment: str = "simclr"
    lr_schedule_epochs: int | None = None
    warmup_epochs: float = 0.0
    threads: int = 1
    colour_jitter: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2)
    p_colour_jitter: float = 0.8
    p_grey: float = 0.2


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent loss of two views [N, D]: cross-entropy over cosine logits / tau, 2N-2 in-batch negatives."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # [2N, D]
    logits = z @ z.T / temperature  # [2N, 2N]
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def _views(images: torch.Tensor, g: torch.Generator, params: SimCLRParams, size: int) -> torch.Tensor:
    """One augmented view per image [B, 3, size, size] with the configured preset (all draws batched, from ``g``)."""
    extra = {}
    if params.augment == "simclr":
        extra = {"jitter": tuple(params.colour_jitter), "p_jitter": params.p_colour_jitter, "p_gray": params.p_grey}
    return BATCH_AUGMENTATIONS[params.augment](images, size, g, scale=params.crop_scale, **extra)


def lr_factor(step: int, warmup_steps: int, period: int) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up over ``warmup_steps``, then a cosine over ``period`` steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    s = min(step - warmup_steps, period)
    return 0.5 * (1 + math.cos(math.pi * s / max(period, 1)))


def make_optimizer(params: SimCLRParams, weights: object) -> torch.optim.Optimizer:
    """Adam, or SGD with momentum, with the configured learning rate and weight decay."""
    if params.optimizer == "adam":
        return torch.optim.Adam(weights, lr=params.lr, weight_decay=params.weight_decay)  # type: ignore[arg-type]
    if params.optimizer == "sgd":
        return torch.optim.SGD(weights, lr=params.lr, momentum=params.momentum, weight_decay=params.weight_decay)  # type: ignore[arg-type]
    raise ValueError(f"unknown optimizer {params.optimizer!r}; accepted: ['adam', 'sgd']")


def train_simclr(
    encoder: Encoder,
    images: torch.Tensor,
    params: SimCLRParams,
    seed: int,
    device: torch.device,
    progress: bool = True,
    size: int | None = None,
) -> list[dict[str, float]]:
    """Train ``encoder`` in place on images [N, 3, H, W] in [0, 1]; returns the per-epoch loss history.

    Views are ``size`` pixels (default: the images' size); images larger than that give crops with
    real detail instead of enlarged pixels. Runs on ``params.threads`` torch CPU threads whatever the
    caller's setting (restored afterwards).
    """
    n = images.shape[0]
    batch = min(params.batch_size, n)
    if batch < 2:
        raise ValueError(f"SimCLR needs at least 2 training images per batch, got {n} images")
    if params.augment not in BATCH_AUGMENTATIONS:
        raise ValueError(f"unknown augmentation preset {params.augment!r}; accepted: {sorted(BATCH_AUGMENTATIONS)}")
    if int(params.threads) < 1:
        raise ValueError(f"training.threads must be >= 1, got {params.threads}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(int(params.threads))
    try:
        return _train(encoder, images, params, seed, device, progress, batch, int(size or images.shape[-1]))
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    encoder: Encoder, images: torch.Tensor, params: SimCLRParams, seed: int, device: torch.device, progress: bool, batch: int, size: int
) -> list[dict[str, float]]:
    """The training loop of :func:`train_simclr` (threads already set)."""
    n = images.shape[0]
    torch.manual_seed(derive_seed(seed, "init"))
    encoder.to(device).train()
    opt = make_optimizer(params, encoder.parameters())
    steps_per_epoch = n // batch
    total = params.epochs * steps_per_epoch
    warmup = int(round(params.warmup_epochs * steps_per_epoch))
    period = (params.lr_schedule_epochs or params.epochs) * steps_per_epoch - warmup  # cosine period in steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, warmup, period))
    g = torch.Generator().manual_seed(derive_seed(seed, "simclr-augment"))
    history: list[dict[str, float]] = []
    bar = tqdm(total=total, desc="SimCLR training", unit="step", disable=not progress)
    for epoch in range(params.epochs):
        perm = torch.randperm(n, generator=g)
        losses = []
        for step in range(steps_per_epoch):
            idx = perm[step * batch : (step + 1) * batch]
            v1 = _views(images[idx], g, params, size).to(device)  # [B, 3, size, size]
            v2 = _views(images[idx], g, params, size).to(device)
            loss = nt_xent_loss(encoder(v1), encoder(v2), params.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.3f}")
        record = {"epoch": epoch + 1, "loss": sum(losses) / len(losses), "lr": sched.get_last_lr()[0]}
        history.append(record)
        log.info("epoch %d/%d loss %.4f", epoch + 1, params.epochs, record["loss"])
    bar.close()
    encoder.eval()
    return history
