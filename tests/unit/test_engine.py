"""The batching engine's helpers against plain Python: per-image map diagnostics."""

from __future__ import annotations

import math

import numpy as np
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
