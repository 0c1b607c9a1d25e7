"""Family and baseline role of configured methods, from the method registry, for tables and figures.

Names are looked up as registry names (a config key is its registry name unless the config sets
``methods.<key>.method``; such renamed entries count as family "other"). The registry is imported only
when a function is called, so importing this module stays light.
"""

from __future__ import annotations

from collections.abc import Sequence

BASELINE = "baseline"  # the family of every method registered with baseline=True
BASELINE_ORDER = ("random_baseline", "centre_baseline", "edge_baseline")  # fixed order of the last table rows
FAMILY_ORDER = ("occlusion", "cam", "gradient", "perturbation", "other", BASELINE)  # legend / colour order
FAMILY_LABELS = {
    "occlusion": "occlusion",
    "cam": "CAM / feature maps",
    "gradient": "gradient",
    "perturbation": "perturbation / surrogate",
    "other": "other",
    BASELINE: "baselines",
    "reference": "reference",  # legend column of reference lines (the random baseline's mean)
}


def method_families(names: Sequence[str]) -> dict[str, str]:
    """Registry family of each name ("baseline" for baselines); names not in the registry get "other"."""
    from xai_ssl.methods import METHOD_REGISTRY

    return {n: (METHOD_REGISTRY[n].family if n in METHOD_REGISTRY else "other") for n in names}


def baselines_last(names: Sequence[str], families: dict[str, str] | None = None) -> list[str]:
    """``names`` (duplicates dropped) with the baselines moved to the end in the fixed order random, centre, edge."""
    names = list(dict.fromkeys(names))
    families = method_families(names) if families is None else families
    base = [n for n in names if families.get(n) == BASELINE]
    rank = {n: i for i, n in enumerate(BASELINE_ORDER)}
    base.sort(key=lambda n: (rank.get(n, len(rank)), n))
    return [n for n in names if n not in base] + base
