"""What every job does around its stage function: logging, threads, arguments from the rule, provenance."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from typing import Any

from xai_ssl.logs import job_log

log = logging.getLogger(__name__)

NOT_ARGUMENTS = ("code", "content")  # rule params that only trigger reruns (code fingerprints, dataset content)


def _plain(value: Any) -> Any:
    """Snakemake's file objects as str / list[str]; other values as they are."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def rule_arguments(smk: Any, fn: Callable[..., Any]) -> dict[str, Any]:
    """The keyword arguments of ``fn`` from a Snakemake job: its named input, output, params and wildcards.

    Every named input, output and param must be an argument of ``fn`` (a name used twice, or one the
    function does not take, is an error that names the rule); wildcards are passed where ``fn`` takes them,
    and ``threads`` (Snakemake's, a scheduling figure) where ``fn`` takes it.
    """
    rule = getattr(smk, "rule", "?")
    accepted = inspect.signature(fn).parameters
    given: dict[str, Any] = {}
    for section in ("input", "output", "params"):
        for name, value in getattr(smk, section).items():
            if name in NOT_ARGUMENTS and section == "params":
                continue
            if name in given:
                raise TypeError(f"rule {rule}: {name!r} is used twice among its input/output/params names")
            if name not in accepted:
                raise TypeError(f"rule {rule}: {fn.__module__}.{fn.__name__} takes no argument {name!r} ({section})")
            given[name] = value if section == "params" else _plain(value)
    for name, value in smk.wildcards.items():
        if name in accepted and name not in given:
            given[name] = str(value)
    if "threads" in accepted:
        given["threads"] = int(smk.threads)
    missing = [n for n, p in accepted.items() if p.default is inspect.Parameter.empty and n not in given]
    if missing:
        raise TypeError(f"rule {rule}: {fn.__module__}.{fn.__name__} needs {missing}, which the rule does not name")
    return given


def run_rule(smk: Any, fn: Callable[..., Any]) -> Any:
    """Run a stage function as a Snakemake job, its logging, stdout and stderr going to the job's log file.

    Torch jobs set their thread count themselves from the config (``torch_threads``), never from Snakemake's
    ``threads`` (which ``--cores`` can lower), so numbers do not depend on ``--cores``.
    """
    with job_log(smk.log[0]):
        return fn(**rule_arguments(smk, fn))


def log_diagnostics(method_key: str, diagnostics: dict[str, Any]) -> None:
    """One log line with the bad-number counts of a job (a warning when maps/images were affected)."""
    keys = ("nonfinite_maps", "zero_norm_embeddings", "excluded_images", "nonfinite_scores", "nonfinite_curves", "images_without_mask")
    bad = {k: v for k, v in diagnostics.items() if k in keys and v}
    log.log(logging.WARNING if bad else logging.INFO, "%s: bad numbers %s", method_key, json.dumps(diagnostics, sort_keys=True))
