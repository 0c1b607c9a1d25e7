"""SimCLR (NT-Xent) training of an encoder on a tensor of images, seeded and with a progress bar."""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from xai_ssl.augment import AUGMENTATIONS
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
    restarts at every Kaggle session are not reproduced).
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


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent loss of two views [N, D]: cross-entropy over cosine logits / tau, 2N-2 in-batch negatives."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # [2N, D]
    logits = z @ z.T / temperature  # [2N, 2N]
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def _views(images: torch.Tensor, g: torch.Generator, scale: tuple[float, float], augment: str = "simclr") -> torch.Tensor:
    """One augmented view per image [B, 3, S, S] with the named preset."""
    size = images.shape[-1]
    fn = AUGMENTATIONS[augment]
    return torch.stack([fn(img, size, g, scale=scale) for img in images])


def _view_pairs(
    images: torch.Tensor, params: SimCLRParams, g: torch.Generator, batch: int, prefetch: bool
) -> Generator[tuple[torch.Tensor, torch.Tensor], None, None]:
    """The (v1, v2) batches [B, 3, S, S] of every step in order; with ``prefetch`` built one step ahead in a thread.

    Only this generator draws from ``g``, in the same order either way, so the views (and the trained
    weights) do not depend on ``prefetch``; the thread overlaps the Python-heavy augmentation with the
    forward/backward pass, which releases the GIL.
    """

    def produce() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = images.shape[0]
        for _ in range(params.epochs):
            perm = torch.randperm(n, generator=g)
            for step in range(n // batch):
                chunk = images[perm[step * batch : (step + 1) * batch]]
                v1 = _views(chunk, g, params.crop_scale, params.augment)
                v2 = _views(chunk, g, params.crop_scale, params.augment)
                yield v1, v2

    if not prefetch:
        yield from produce()
        return
    slots: queue.Queue[object] = queue.Queue(maxsize=2)
    stop = threading.Event()
    done = object()

    def offer(item: object) -> bool:
        """Put ``item`` in the queue unless the consumer has stopped; False once it has."""
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def worker() -> None:
        try:
            for item in produce():
                if not offer(item):
                    return
            offer(done)
        except BaseException as err:  # handed to the consumer, raised there
            offer(err)

    thread = threading.Thread(target=worker, name="simclr-views", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


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
    prefetch: bool = True,
    channels_last: bool = False,
) -> list[dict[str, float]]:
    """Train ``encoder`` in place on images [N, 3, H, W] in [0, 1]; returns the per-epoch loss history.

    ``channels_last`` trains in that memory layout (~1.5x faster forward/backward on CPU for the small
    ResNet; the weights come out in the usual contiguous layout); ``prefetch`` builds the next views in a
    thread. Neither changes which views are drawn; the layout changes the float rounding of the convolutions.
    """
    n = images.shape[0]
    batch = min(params.batch_size, n)
    if batch < 2:
        raise ValueError(f"SimCLR needs at least 2 training images per batch, got {n} images")
    if params.augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation preset {params.augment!r}; accepted: {sorted(AUGMENTATIONS)}")
    torch.manual_seed(derive_seed(seed, "init"))
    layout = torch.channels_last if channels_last else torch.contiguous_format
    encoder.to(device=device, memory_format=layout).train()
    opt = make_optimizer(params, encoder.parameters())
    steps_per_epoch = n // batch
    total = params.epochs * steps_per_epoch
    period = (params.lr_schedule_epochs or params.epochs) * steps_per_epoch  # cosine period in steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, period) / max(period, 1))))
    g = torch.Generator().manual_seed(derive_seed(seed, "simclr-augment"))
    bar = tqdm(total=total, desc="SimCLR training", unit="step", disable=not progress)
    pairs = _view_pairs(images, params, g, batch, prefetch)
    try:
        history = _train_epochs(encoder, opt, sched, pairs, params, steps_per_epoch, device, layout, bar)
    finally:
        pairs.close()  # stops and joins the prefetch thread
        bar.close()
    encoder.to(memory_format=torch.contiguous_format).eval()
    return history


def _train_epochs(
    encoder: Encoder,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    pairs: Iterator[tuple[torch.Tensor, torch.Tensor]],
    params: SimCLRParams,
    steps_per_epoch: int,
    device: torch.device,
    layout: torch.memory_format,
    bar: tqdm,
) -> list[dict[str, float]]:
    """The epoch loop of :func:`train_simclr`; returns the per-epoch loss history."""
    history: list[dict[str, float]] = []
    for epoch in range(params.epochs):
        losses = []
        for _ in range(steps_per_epoch):
            v1, v2 = (v.to(device=device, memory_format=layout) for v in next(pairs))  # [B, 3, H, W] each
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
    return history
