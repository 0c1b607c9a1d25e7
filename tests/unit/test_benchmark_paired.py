"""Benchmark timing on a shared machine: short slices paired with plain-forward slices, medians of paired ratios.

A fake machine whose speed drifts 1-9x within minutes (plus sudden slow-downs from other tenants) runs
variants of known relative cost; the paired medians stay within ±0.05 of the true ratio. And the benchmark
runs on a ViT-S/16 with the fastest-batch picker.
"""

from __future__ import annotations

import csv
import math
import random

import pytest
import torch

from xai_ssl import benchmark as bm

CPU = torch.device("cpu")
FORWARD = 0.05  # machine-seconds of one plain forward at speed 1
EFFICIENCY = {"limit": 1.0, "ours": 0.6, "reference": 0.2, "captum": 0.45}  # forwards/s relative to the plain forward
OURS_FW = 74  # forwards of the occlusion workload (6 x 6 windows, 2 views, + 2)


class DriftingMachine:
    """A clock and a CPU whose speed drifts 1x-9x over two minutes, drops to 1/2 or 1/3 for random tenant spells
    (3-20 s) and to 1/5 for short hiccups (0.5-3 s) that hit single slices."""

    def __init__(self, seed: int) -> None:
        self.t = 0.0
        rng = random.Random(seed)
        self.spells: list[tuple[float, float, float]] = []  # (start, end, factor)
        start = 0.0
        while start < 5000:
            start += rng.uniform(5, 30)
            if rng.random() < 0.5:
                length, factor = rng.uniform(3, 20), rng.choice((0.5, 1 / 3))
            else:
                length, factor = rng.uniform(0.5, 3), 0.2
            self.spells.append((start, start + length, factor))
            start += length

    def speed(self, t: float) -> float:
        base = 1 + 8 * (0.5 - 0.5 * math.cos(2 * math.pi * t / 120))
        return base * next((f for a, b, f in self.spells if a <= t < b), 1.0)

    def clock(self) -> float:
        return self.t

    def work(self, cost: float, dt: float = 0.02) -> None:
        """Advance the clock until ``cost`` machine-seconds (at speed 1) are done."""
        while cost > 1e-12:
            s = self.speed(self.t)
            step = min(dt, cost / s)
            self.t += step
            cost -= step * s


def slices(machine: DriftingMachine) -> dict[str, bm.Slice]:
    """Slices of known cost: limit 64 forwards, ours the workload, reference / Captum one view (half of it)."""

    def run(name: str, forwards: float):
        return lambda: machine.work(forwards * FORWARD / EFFICIENCY[name])

    return {
        "limit": bm.Slice(run("limit", 64), 64),
        "ours": bm.Slice(run("ours", OURS_FW), OURS_FW),
        "reference": bm.Slice(run("reference", OURS_FW / 2), OURS_FW / 2),
        "captum": bm.Slice(run("captum", OURS_FW / 2), OURS_FW / 2),
    }


@pytest.mark.parametrize("seed", range(6))
def test_paired_ratios_hold_on_a_drifting_machine(seed: int) -> None:
    machine = DriftingMachine(seed)
    machine.t = 17.0 * seed  # start at different phases of the drift
    t = bm.paired_race(slices(machine), CPU, rounds=7, clock=machine.clock)
    vs, lo, hi = t.vs_limit("ours")
    assert abs(vs - 0.6) <= 0.05, (vs, lo, hi)
    assert lo <= vs <= hi
    ref, _, _ = t.speedup("ours", "reference")
    cap, _, _ = t.speedup("ours", "captum")
    assert abs(ref - 3.0) <= 0.05 * 3.0 and abs(cap - 0.6 / 0.45) <= 0.05 * (0.6 / 0.45)


def test_slices_alternate_with_the_limit_and_reverse_every_round() -> None:
    order: list[str] = []
    clock = {"t": 0.0}

    def make(name: str, seconds: float) -> bm.Slice:
        def fn() -> str:
            order.append(name)
            clock["t"] += seconds
            return name

        return bm.Slice(fn, 10.0)

    t = bm.paired_race({"limit": make("limit", 1.0), "a": make("a", 2.0), "b": make("b", 4.0)}, CPU, rounds=2, clock=lambda: clock["t"])
    assert order == ["limit", "a", "limit", "b", "limit", "b", "limit", "a", "limit"]
    assert t.results == {"limit": "limit", "a": "a", "b": "b"}
    assert t.rates("a") == [5.0, 5.0] and t.vs_limit("a") == (0.5, 0.5, 0.5)
    assert t.speedup("a", "b") == (2.0, 2.0, 2.0) and t.seconds("b", 10.0) == 4.0


def test_paired_ratio_brackets_each_slice_with_its_neighbours() -> None:
    # limit rates 10, 20 around a slice of rate 15: ratio 1 (a linear drift cancels)
    t = bm.Timeline([("limit", 1.0, 10.0), ("ours", 1.0, 15.0), ("limit", 0.5, 10.0)], {})
    assert t.relative("ours") == [1.0]


def test_benchmark_on_a_vit_with_the_fastest_batch_picker(tmp_path) -> None:
    table = bm.main(["--model", "vit_small_patch16_224", "--size", "32", "--device", "cpu", "--batch-size", "auto", "--occlusion-positions", "3",
                     "--curve-steps", "4", "--rounds", "2", "--no-captum", "--methods", "--out", str(tmp_path)])
    rows = list(csv.DictReader((tmp_path / "benchmark-cpu.csv").open()))
    assert "vit_small_patch16_224" in rows[0]["model"] and int(rows[0]["batch_size"]) in (1, 2, 4, 8, 16, 32, 64)
    ours = [r for r in rows if r["variant"] == "ours"]
    assert {r["workload"] for r in ours} == {"conditional_occlusion", "insertion_deletion", "average_drop_increase"}
    for r in ours:
        lo, hi = (float(v) for v in r["vs_limit_range"].split("-"))
        assert lo <= float(r["vs_limit"]) <= hi and float(r["limit_forwards_per_s"]) > 0
    checks = [r["check"] for r in rows if r["check"].startswith("max")]
    assert len(checks) == 2 and all(float(c.rsplit("=", 1)[1]) < 1e-4 for c in checks)
    assert table is None
