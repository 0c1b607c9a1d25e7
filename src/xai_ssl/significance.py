"""Is a method distinguishable from the random baseline? Paired Wilcoxon tests per metric column, Holm-corrected.

For every method m and per-image metric column c, the values of m and of the reference (``random_baseline``)
are paired by image id; images where either value is NA are dropped pairwise. With n pairs left:

* n < ``min_pairs`` (6): no test, p = NA. Six is the smallest n at which a two-sided exact test can reach
  p < 0.05 at all (the smallest p is 2 / 2^n = 0.031 at n = 6); below it every method would look
  indistinguishable from random only because there are too few images.
* all differences 0 (e.g. two maps that ignore the model both have RAND = 1): p = 1.
* otherwise the two-sided Wilcoxon signed-rank test (Wilcoxon 1945) of d = m - reference, rounded to 9
  decimals so that values equal in the 6-decimal score files tie exactly (scipy's advice), with
  ``zero_method="pratt"`` (Pratt 1959: zero differences take part in the ranking and are then dropped,
  more conservative than discarding them first) and scipy's ``method="auto"``: the exact null
  distribution for n <= 50 without ties or zeros, an exhaustive sign-flip permutation for n <= 13 with
  them, the normal approximation (corrected for ties and zeros) otherwise. No random draws are made.

Per column, the p values of all methods except the reference are Holm-corrected (Holm 1979, step-down,
controls the family-wise error rate; scipy has no Holm — ``false_discovery_control`` is Benjamini–Hochberg):
sorted ascending p_(1) <= ... <= p_(k), adjusted p_(i) = max_{j <= i} min(1, (k - j + 1) p_(j)); NA p values
are not part of the family. A method is "not distinguishable from random" in a column when its adjusted
p >= ``alpha`` (0.05); the test is two-sided, so "distinguishable" may also mean worse than random.

A method is tested against the random baseline explained on the same view pairs (``pair_families``): a method of
the interpolation family is scored on (x, its photometric view), ``random_baseline`` on the two augmented crops, so
their per-image values differ by the pair as much as by the map and do not pair. ``random_baseline_interpolation``
(the same noise maps on the interpolation pairs) is the reference of that family. A method whose family's
reference is not in the run gets p NA, and the note names it. All tests of a column form one Holm family.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

RANDOM_BASELINE = "random_baseline"
RANDOM_BASELINES = {"crop_aug": RANDOM_BASELINE, "interpolation": "random_baseline_interpolation"}  # reference by pair family
ALPHA = 0.05
MIN_PAIRS = 6
ROUND_DECIMALS = 9
MARK = "†"
UNTESTED_MARK = "‡"  # after the method name: explained on other view pairs than the reference, not tested


def paired_wilcoxon(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, min_pairs: int = MIN_PAIRS) -> tuple[float, int]:
    """(two-sided Wilcoxon signed-rank p of x - y, n pairs) over the pairs where both are finite; p NA below ``min_pairs``."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired_wilcoxon: x and y must be 1-d and of equal length, got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    n = int(keep.sum())
    if n < max(1, min_pairs):
        return math.nan, n
    d = np.round(x[keep] - y[keep], ROUND_DECIMALS)  # [n]
    if not np.any(d):
        return 1.0, n
    from scipy.stats import wilcoxon  # imported here: scipy.stats costs ~1 s, the figure jobs only need the constants

    return float(wilcoxon(d, zero_method="pratt", alternative="two-sided", method="auto").pvalue), n


def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p values (same order as ``p``); NA entries stay NA and are not counted in the family."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    k = idx.size
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (k - rank) * p[i]))
        out[i] = running
    return out


@dataclass(frozen=True)
class Significance:
    """Holm-adjusted p values (``p_<col>``) and pair counts (``n_<col>``) of every method against the reference."""

    p: pd.DataFrame  # [methods, p_<col>]; the reference's row is NA; no columns when the reference is not in the run
    n: pd.DataFrame  # [methods, n_<col>] pairs with both values present
    reference: str = RANDOM_BASELINE
    alpha: float = ALPHA
    min_pairs: int = MIN_PAIRS
    other_pairs: dict[str, str] = field(default_factory=dict)  # untested: method -> its pair family (no reference of that family ran)
    reference_pairs: str | None = None  # the reference's pair family (None: not known)
    references: dict[str, str] = field(default_factory=dict)  # tested method -> the reference it was tested against

    @property
    def available(self) -> bool:
        """Whether the reference was in the run (otherwise there are no tests)."""
        return len(self.p.columns) > 0

    def not_distinguishable(self, method: str, column: str) -> bool:
        """True when the adjusted p of ``method`` in per-image ``column`` is >= alpha (NA p: False, no test)."""
        key = f"p_{column}"
        if method == self.reference or method in self.references.values() or key not in self.p.columns or method not in self.p.index:
            return False
        p = self.p.at[method, key]
        return bool(np.isfinite(p) and p >= self.alpha)


def significance_table(
    per_image: pd.DataFrame,
    columns: Sequence[str],
    method_order: Sequence[str],
    reference: str = RANDOM_BASELINE,
    alpha: float = ALPHA,
    min_pairs: int = MIN_PAIRS,
    pair_families: dict[str, str] | None = None,
) -> Significance:
    """Test every method of ``method_order`` against ``reference`` in each per-image column of ``per_image``.

    ``per_image`` is the long table (``method``, ``image_id``, one column per metric); values are paired
    by ``image_id``. Without the reference in ``per_image`` the result has no columns (``available`` False).
    ``pair_families`` (pair family by method; None: all alike): a method is tested against the random baseline
    of its pair family (``RANDOM_BASELINES``; ``reference`` for the reference's own family); methods of a family
    whose baseline is not in the run are not tested (p NA, not part of the Holm family; listed in ``other_pairs``).
    """
    methods = [m for m in method_order if m in set(per_image["method"])]
    cols = [c for c in columns if c in per_image.columns]
    if reference not in methods:
        empty = pd.DataFrame(index=pd.Index(methods, name="method"))
        return Significance(empty, empty.copy(), reference, alpha, min_pairs)
    by_method = {}
    for m, g in per_image.groupby("method", sort=False):
        dup = g["image_id"][g["image_id"].duplicated()]
        if len(dup):
            raise ValueError(f"significance: method {m!r} has image ids more than once ({sorted(set(dup))[:5]}); a shard was read twice?")
        by_method[m] = g.set_index("image_id")
    families = dict(pair_families or {})
    ref_pairs = families.get(reference)
    refs_by_family = {f: r for f, r in RANDOM_BASELINES.items() if r in by_method and families.get(r) == f}
    if ref_pairs is not None:
        refs_by_family[ref_pairs] = reference
    reference_names = set(refs_by_family.values()) | {reference}
    references: dict[str, str] = {}
    other_pairs: dict[str, str] = {}
    for m in methods:
        if m in reference_names:
            continue
        family = families.get(m, ref_pairs)
        if ref_pairs is None:  # pair families unknown: every method against the reference
            references[m] = reference
        elif family in refs_by_family:
            references[m] = refs_by_family[family]
        else:
            other_pairs[m] = family
    p = pd.DataFrame(np.nan, index=pd.Index(methods, name="method"), columns=[f"p_{c}" for c in cols])
    n = pd.DataFrame(0, index=pd.Index(methods, name="method"), columns=[f"n_{c}" for c in cols])
    for c in cols:
        raw = []
        for m in references:
            values = by_method[m][c]  # [N_m] by image id
            ref = by_method[references[m]][c]
            pv, k = paired_wilcoxon(values.to_numpy(), ref.reindex(values.index).to_numpy(), min_pairs)
            raw.append(pv)
            n.at[m, f"n_{c}"] = k
        p.loc[list(references), f"p_{c}"] = holm(raw)
        for r in reference_names & set(methods):
            n.at[r, f"n_{c}"] = int(by_method[r][c].notna().sum())
    return Significance(p, n, reference, alpha, min_pairs, other_pairs, ref_pairs, references)


def _n_text(values: Sequence[int]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def significance_note(sig: Significance, table: pd.DataFrame, columns: Sequence[str]) -> str:
    """The note under the Markdown table: the mark, the test, the correction, n per column and the untested cells.

    ``table`` is the summary (methods x columns); cells that are NA there (no values) are left out of n and of
    the list of untested cells.
    """
    if not sig.available:
        return f"No significance marks: {sig.reference} is not in this run (add it to run.methods to test every method against it)."
    tested = [m for m in table.index if m in sig.references]
    cols = [c for c in columns if f"p_{c}" in sig.p.columns and c in table.columns]
    with_values = {c: [m for m in tested if np.isfinite(table.at[m, c])] for c in cols}
    n_by_col = {c: _n_text([int(sig.n.at[m, f"n_{c}"]) for m in ms]) for c, ms in with_values.items() if ms}
    values = list(n_by_col.values())
    common = max(values, key=values.count) if values else "0"
    exceptions = [f"{c}: {v}" for c, v in n_by_col.items() if v != common]
    text = (
        f"{MARK} = not distinguishable from {sig.reference} at {sig.alpha:g}: two-sided Wilcoxon signed-rank test of the "
        f"per-image values against {sig.reference}'s, paired by image (images where either is NA dropped; zero differences "
        f"ranked, Pratt), p Holm-corrected across the {len(tested)} methods of each column (p_<column> in scores.csv; a median "
        f"column takes its column's test); n = {common} image pairs per test" + (f" ({'; '.join(exceptions)})" if exceptions else "") + "."
    )
    own = sorted({r for r in sig.references.values() if r != sig.reference})
    if own:
        by_ref = {r: [m for m in tested if sig.references[m] == r] for r in own}
        text += " " + "; ".join(f"{', '.join(ms)} against {r} (the same noise maps on their view pairs)" for r, ms in by_ref.items()) + "."
    untested = {c: [m for m in ms if not np.isfinite(sig.p.at[m, f"p_{c}"])] for c, ms in with_values.items()}
    parts = [f"{c} ({'all methods' if len(ms) == len(with_values[c]) else ', '.join(ms)})" for c, ms in untested.items() if ms]
    if parts:
        text += f" Not tested (fewer than {sig.min_pairs} pairs, no mark): " + "; ".join(parts) + "."
    other = [m for m in table.index if m in sig.other_pairs]
    if other:
        listed = ", ".join(f"{m} ({sig.other_pairs[m]})" for m in other)
        text += (
            f" {UNTESTED_MARK} = not tested: {listed} explained on other view pairs than {sig.reference} ({sig.reference_pairs}), "
            f"so their per-image values do not pair with its (add {RANDOM_BASELINES.get('interpolation')} to run.methods to test the "
            f"interpolation family)."
        )
    floors = {c: smallest_adjusted_p(sig, c) for c in cols}
    powerless = [c for c, f in floors.items() if sig.alpha <= f < math.inf]
    if powerless:
        floor = min(floors[c] for c in powerless)
        which = "any tested column" if len(powerless) == sum(f < math.inf for f in floors.values()) else ", ".join(powerless)
        text += (
            f" Too few images to tell any method from {sig.reference} in {which}: the smallest adjusted p these n allow "
            f"(k · 2 / 2^n for k corrected tests) is {floor:.2g} ≥ {sig.alpha:g}."
        )
    return text


def smallest_adjusted_p(sig: Significance, column: str) -> float:
    """The smallest Holm-adjusted p any method could reach in ``column``: k · 2 / 2^n_max (inf if nothing was tested).

    2 / 2^n is the smallest two-sided signed-rank p with n pairs (all differences of one sign); Holm multiplies
    the smallest of the k p values of a column by k.
    """
    key = f"p_{column}"
    tested = [m for m in sig.p.index if m != sig.reference and np.isfinite(sig.p.at[m, key])]
    if not tested:
        return math.inf
    n_max = max(int(sig.n.at[m, f"n_{column}"]) for m in tested)
    return min(1.0, len(tested) * 2.0 / 2.0**n_max)
