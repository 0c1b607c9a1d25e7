"""The batching engine: map diagnostics against plain Python; chunks, seeds, devices and progress with a fake method."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from xai_ssl.engine import map_diagnostics

NAN, INF = float("nan"), float("inf")
DISTINCT = [float(v) for v in range(9)]
# image: (map1, map2), 3 x 3 each
CASES = [
    (DISTINCT, [v + 10 for v in DISTINCT]),  # fine
    (DISTINCT, [NAN] + [0.0] * 8),  # map2: NaN, constant once NaN counts as 0
    ([INF, 0.0, 3, 4, 5, 6, 7, 8, 9], DISTINCT),  # +inf counts as 0: a tie with the 0
    ([-INF, 0.0, 3, 4, 5, 6, 7, 8, 9], DISTINCT),  # -inf likewise
    ([0.5] * 9, DISTINCT),  # constant map1
    (DISTINCT, [1.0, 1.0, 2, 3, 4, 5, 6, 7, 8]),  # one tie in map2
]


def reference_flags(maps: list[list[float]]) -> dict[str, bool]:
    """One image's flags over its maps, by hand: non-finite values count as 0 for 'constant' and 'ties'."""
    flags = {"nonfinite": False, "constant": False, "ties": False}
    for values in maps:
        clean = [v if math.isfinite(v) else 0.0 for v in values]
        flags["nonfinite"] |= not all(math.isfinite(v) for v in values)
        flags["constant"] |= max(clean) == min(clean)
        flags["ties"] |= len(set(clean)) < len(clean)
    return flags


def test_map_diagnostics_against_plain_python() -> None:
    map1 = torch.tensor([c[0] for c in CASES], dtype=torch.float64).view(-1, 3, 3)
    map2 = torch.tensor([c[1] for c in CASES], dtype=torch.float64).view(-1, 3, 3)
    for maps, cases in (([map1, map2], CASES), ([map1], [(c[0],) for c in CASES])):
        got = map_diagnostics(*maps) if len(maps) == 2 else map_diagnostics(maps[0], None)
        ref = [reference_flags(list(c)) for c in cases]
        for key in ("nonfinite", "constant", "ties"):
            assert got[key].shape == (len(CASES),) and got[key].dtype == bool, key
            np.testing.assert_array_equal(got[key], [r[key] for r in ref], err_msg=key)
    both = map_diagnostics(map1, map2)
    assert both["nonfinite"].tolist() == [False, True, True, True, False, False]  # the cases cover every flag
    assert both["constant"].tolist() == [False, True, False, False, True, False]
    assert both["ties"].tolist() == [False, True, True, True, True, True]


class FakeSpec:
    """A method spec whose function records what it is given and returns float64 maps on the CPU."""

    def __init__(self, two_maps: bool = True) -> None:
        self.name, self.pair_family, self.two_maps = "fake", "crop_aug", two_maps
        self.calls: list[dict] = []

    def fn(self, encoder, x1, x2, params, ctx):
        self.calls.append({"x1": x1, "x2": x2, "params": params, "ctx": ctx})
        m = x1.detach().to("cpu", torch.float64, copy=True)[:, 0, :2, :2] if x1.device.type != "meta" else torch.zeros(x1.shape[0], 2, 2, dtype=torch.float64)
        return m, (m + 1 if self.two_maps else None)


class FakePairs:
    """The part of ``io.pairs_file.Pairs`` the engine uses."""

    def __init__(self, n: int) -> None:
        self.image_ids = [f"img{i}" for i in range(n)]
        self.x1 = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        self.x2 = self.x1.flip(-1)

    def pair(self, family: str) -> tuple[torch.Tensor, torch.Tensor]:
        assert family == "crop_aug"
        return self.x1, self.x2


def test_chunk_size_and_slices() -> None:
    from xai_ssl.engine import CHUNK, chunk_size, chunk_slices

    assert [chunk_size(b) for b in (0, 1, 5, CHUNK, CHUNK + 9)] == [1, 1, 5, CHUNK, CHUNK]
    assert [(s.start, s.stop) for s in chunk_slices(7, 3)] == [(0, 3), (3, 6), (6, 7)]


def test_explain_batches_passes_chunks_seeds_ids_and_device() -> None:
    """Each call gets its chunk on the device, with that chunk's seeds and ids and the batch size; maps come back as float."""
    from xai_ssl.engine import explain_batches

    pairs, spec = FakePairs(5), FakeSpec()
    seeds, ids = [11, 12, 13, 14, 15], pairs.image_ids
    m1, m2 = explain_batches(None, spec, pairs.x1, pairs.x2, {"p": 1}, seeds, ids, torch.device("cpu"), 7, chunk=2)
    assert [c["ctx"].seeds for c in spec.calls] == [[11, 12], [13, 14], [15]]
    assert [c["ctx"].image_ids for c in spec.calls] == [ids[:2], ids[2:4], ids[4:]]
    assert all(c["ctx"].batch_size == 7 and c["ctx"].device == torch.device("cpu") and c["params"] == {"p": 1} for c in spec.calls)
    assert torch.equal(spec.calls[1]["x1"], pairs.x1[2:4]) and torch.equal(spec.calls[1]["x2"], pairs.x2[2:4])
    assert m1.dtype == m2.dtype == torch.float32 and m1.shape == (5, 2, 2)  # "as float on the CPU" by default
    torch.testing.assert_close(m1, pairs.x1[:, 0, :2, :2].float())
    torch.testing.assert_close(m2, m1 + 1)
    spec = FakeSpec(two_maps=False)
    m1, m2 = explain_batches(None, spec, pairs.x1, pairs.x2, {}, seeds, ids, torch.device("cpu"), 3, to_cpu=False)
    assert m2 is None and m1.dtype == torch.float64 and [len(c["ctx"].seeds) for c in spec.calls] == [3, 2]  # chunk = batch size
    spec = FakeSpec()
    explain_batches(None, spec, pairs.x1, pairs.x2, {}, seeds, ids, torch.device("meta"), 4, to_cpu=False)
    assert all(c["x1"].device.type == c["x2"].device.type == c["ctx"].device.type == "meta" for c in spec.calls)


def test_explain_pairs_seeds_chunks_device_and_float_maps() -> None:
    """explain_pairs: the seed rule with the method's config name, the given chunk and device, float maps on the CPU."""
    from xai_ssl.engine import explain_pairs, image_seed

    pairs, spec = FakePairs(3), FakeSpec()
    m1, m2 = explain_pairs(None, pairs, spec, {}, 9, torch.device("meta"), 8, key="fake_small", progress=False, chunk=2)
    assert [len(c["ctx"].seeds) for c in spec.calls] == [2, 1]
    assert [s for c in spec.calls for s in c["ctx"].seeds] == [image_seed(9, i, "fake_small") for i in pairs.image_ids]
    assert all(c["x1"].device.type == "meta" for c in spec.calls)
    assert m1.dtype == m2.dtype == torch.float32 and m1.device.type == "cpu"


def test_progress_bars(capsys: pytest.CaptureFixture[str]) -> None:
    """Progress goes to stderr only when asked: the method's name (or the given description), counted in chunks."""
    from xai_ssl.engine import explain_batches, explain_pairs

    pairs = FakePairs(2)
    explain_batches(None, FakeSpec(), pairs.x1, pairs.x2, {}, [0, 0], pairs.image_ids, torch.device("cpu"), 2)
    assert capsys.readouterr().err == ""
    explain_batches(None, FakeSpec(), pairs.x1, pairs.x2, {}, [0, 0], pairs.image_ids, torch.device("cpu"), 2, progress=True)
    err = capsys.readouterr().err
    assert "fake" in err and re.search(r"[0-9?]chunk/s", err), err
    explain_pairs(None, pairs, FakeSpec(), {}, 0, torch.device("cpu"), 2, key="fake_small")  # progress by default
    assert "attribution fake_small" in capsys.readouterr().err
    explain_pairs(None, pairs, FakeSpec(), {}, 0, torch.device("cpu"), 2, key="fake_small", progress=False)
    assert capsys.readouterr().err == ""
