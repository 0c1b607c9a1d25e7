"""Choosing the torch device from the config."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto|cpu|cuda|cuda:N`` to a device; ``auto`` picks CUDA when available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device: {name!r} was requested but CUDA is not available on this machine; use 'auto' or 'cpu'")
    return torch.device(name)


def set_threads(n: int | None) -> None:
    """Limit torch's intra-op CPU threads to the job's thread count."""
    if n is not None and n > 0:
        torch.set_num_threads(int(n))


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA (or other accelerator) out-of-memory errors."""
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def choose_batch_size(
    encoder: torch.nn.Module, image_size: int, device: torch.device, largest: int | None = None, repeats: int = 2
) -> int:
    """The fastest batch size for plain forwards of this encoder on this device (not the largest that fits).

    Powers of two from 1 are timed (``repeats`` batches each after a warm-up) until a batch runs
    out of memory, is >10 % slower per image than the best so far twice in a row, or reaches
    ``largest`` (default 64 on CPU, where large batches are slower per image, 1024 on GPU).
    """
    import time

    largest = largest or (1024 if device.type == "cuda" else 64)
    x = torch.rand(largest, 3, image_size, image_size, device=device)
    best, best_rate, worse = 1, 0.0, 0
    bs = 1
    with torch.inference_mode():
        while bs <= largest:
            try:
                encoder(x[:bs])
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
                for _ in range(repeats):
                    encoder(x[:bs])
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                rate = repeats * bs / (time.perf_counter() - t0)
            except RuntimeError as exc:
                if not is_out_of_memory(exc):
                    raise
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                break
            if rate > best_rate:
                best, best_rate, worse = bs, rate, 0
            elif rate < 0.9 * best_rate:
                worse += 1
                if worse == 2:
                    break
            bs *= 2
    return best
