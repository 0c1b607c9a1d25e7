"""Family and baseline role of configured methods for tables and figures: orders, labels, the fixed baseline order.

The families themselves come from the method registry (``MethodSpec.family``; ``Plan.method_families`` maps
config names to them and the table and figure rules pass that mapping on). This module imports no registry,
so the table and figure jobs (and their code fingerprints) do not depend on the methods' code.
"""

from __future__ import annotations

from collections.abc import Sequence

BASELINE = "baseline"  # the family of every method registered with baseline=True
BASELINE_ORDER = ("random_baseline", "random_baseline_interpolation", "centre_baseline", "edge_baseline")  # fixed order of the last table rows
FAMILY_ORDER = ("occlusion", "cam", "gradient", "perturbation", "attention", "other", BASELINE)  # legend / colour order
FAMILY_LABELS = {
    "occlusion": "occlusion",
    "cam": "CAM / feature maps",
    "gradient": "gradient",
    "perturbation": "perturbation / surrogate",
    "attention": "attention (ViTs)",
    "other": "other",
    BASELINE: "baselines",
    "reference": "reference",  # legend column of reference lines (the random baseline's mean)
}


def default_families(names: Sequence[str]) -> dict[str, str]:
    """Families when none are given: "baseline" for the three baselines' registry names, "other" for the rest."""
    return {n: (BASELINE if n in BASELINE_ORDER else "other") for n in names}


def baselines_last(names: Sequence[str], families: dict[str, str] | None = None) -> list[str]:
    """``names`` (duplicates dropped) with the baselines moved to the end in the fixed order random, centre, edge."""
    names = list(dict.fromkeys(names))
    families = default_families(names) if families is None else families
    base = [n for n in names if families.get(n) == BASELINE]
    rank = {n: i for i, n in enumerate(BASELINE_ORDER)}
    base.sort(key=lambda n: (rank.get(n, len(rank)), n))
    return [n for n in names if n not in base] + base
