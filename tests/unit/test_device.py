"""The automatic batch size: ``device.choose_batch_size`` with a fake clock and a fake cost per batch, and ``auto`` in
``stages.inference.resolve_batch_size``."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import torch
from torch import nn

from xai_ssl.device import choose_batch_size
from xai_ssl.stages.inference import resolve_batch_size

CPU = torch.device("cpu")
WARM_UP = 1000.0  # seconds the first forward of each batch size costs (must not be timed)


class FakeEncoder(nn.Module):
    """Advances a fake clock by ``per_image(bs) * bs`` seconds per forward of a batch of ``bs`` (the first forward of
    each size by WARM_UP); ``fail(bs)`` may raise instead. Records the batch sizes it saw."""

    def __init__(self, clock: dict[str, float], per_image: Callable[[int], float], fail: Callable[[int], None] = lambda bs: None) -> None:
        super().__init__()
        self.clock, self.per_image, self.fail = clock, per_image, fail
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bs = x.shape[0]
        self.fail(bs)
        self.clock["t"] += WARM_UP if bs not in self.calls else self.per_image(bs) * bs
        self.calls.append(bs)
        return x.flatten(1)[:, :4]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """A fake ``time.perf_counter`` that moves only when a fake encoder runs."""
    state = {"t": 0.0}
    monkeypatch.setattr(time, "perf_counter", lambda: state["t"])
    return state


def table(seconds: dict[int, float]) -> Callable[[int], float]:
    """Seconds per image by batch size."""
    return lambda bs: seconds[bs]


def sizes(enc: FakeEncoder) -> list[int]:
    """The batch sizes tried, in order."""
    return list(dict.fromkeys(enc.calls))


def test_chooses_the_fastest_batch_and_stops_after_two_slower(clock: dict[str, float]) -> None:
    """8 is the fastest per image; 16 and 32 are >10 % slower, so 64 (faster still) is never tried."""
    enc = FakeEncoder(clock, table({1: 1.0, 2: 0.5, 4: 0.3, 8: 0.25, 16: 0.4, 32: 0.5, 64: 0.01}))
    assert choose_batch_size(enc, 8, CPU, repeats=3) == 8
    assert sizes(enc) == [1, 2, 4, 8, 16, 32]
    assert enc.calls == [bs for bs in sizes(enc) for _ in range(4)]  # one warm-up, then ``repeats`` timed forwards


def test_one_slower_batch_or_a_small_slowdown_does_not_stop(clock: dict[str, float]) -> None:
    """16 is slower by less than 10 % (not counted), 32 is slower once, 64 is the fastest and the CPU's largest."""
    enc = FakeEncoder(clock, table({1: 1.0, 2: 0.5, 4: 0.3, 8: 0.25, 16: 0.27, 32: 0.5, 64: 0.2, 128: 0.01}))
    assert choose_batch_size(enc, 8, CPU) == 64
    assert sizes(enc) == [1, 2, 4, 8, 16, 32, 64]  # the CPU default largest is 64
    enc = FakeEncoder(clock, table({1: 1.0, 2: 0.5, 4: 0.3, 8: 0.25}))
    assert choose_batch_size(enc, 8, CPU, largest=8) == 8 and sizes(enc) == [1, 2, 4, 8]
    enc = FakeEncoder(clock, table({1: 0.5, 2: 1.0, 4: 0.3, 8: 0.6, 16: 0.6}))  # a new best resets the count
    assert choose_batch_size(enc, 8, CPU, largest=16) == 4 and sizes(enc) == [1, 2, 4, 8, 16]


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), RuntimeError("CUDA error: out of memory")])
def test_out_of_memory_ends_the_search(clock: dict[str, float], error: RuntimeError) -> None:
    """A batch that runs out of memory ends the search; the fastest batch so far is chosen."""

    def fail(bs: int) -> None:
        if bs >= 16:
            raise error

    enc = FakeEncoder(clock, table({1: 1.0, 2: 0.5, 4: 0.3, 8: 0.25}), fail)
    assert choose_batch_size(enc, 8, CPU) == 8
    assert sizes(enc) == [1, 2, 4, 8]
    enc = FakeEncoder(clock, table({1: 1.0, 2: 0.5, 4: 0.6, 8: 0.7}), fail)
    assert choose_batch_size(enc, 8, CPU) == 2


@pytest.mark.parametrize("error", [RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x8 and 9x2)"), ValueError("bad input")])
def test_other_errors_propagate(clock: dict[str, float], error: Exception) -> None:
    """Only out-of-memory errors end the search; any other error is the caller's to see."""

    def fail(bs: int) -> None:
        if bs == 4:
            raise error

    enc = FakeEncoder(clock, table({1: 1.0, 2: 0.5}), fail)
    with pytest.raises(type(error), match=str(error)[:10]):
        choose_batch_size(enc, 8, CPU)


def test_resolve_batch_size_times_auto(clock: dict[str, float]) -> None:
    """``auto`` is the timed choice for the job's image size; a number is used as configured."""
    seen: list[tuple[int, ...]] = []
    enc = FakeEncoder(clock, table({1: 1.0, 2: 0.5, 4: 0.3, 8: 0.35, 16: 0.4}))
    enc.register_forward_pre_hook(lambda mod, args: seen.append(tuple(args[0].shape[1:])))
    assert resolve_batch_size("auto", enc, 12, CPU) == 4
    assert set(seen) == {(3, 12, 12)}
    assert resolve_batch_size(12, enc, 12, CPU) == 12 and resolve_batch_size("6", enc, 12, CPU) == 6
