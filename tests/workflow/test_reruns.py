"""Reruns are computed from the code: an edit reruns exactly the jobs whose library code it changes (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow_runner import planned_jobs, snakemake

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("tiny_run")]

FIGURES = {"plot_attribution_grid": 1, "plot_curves": 1, "plot_metric_bars": 1, "plot_training_loss": 1, "plot_model_card": 1}


def planned_after_edit(run: tuple[Path, Path], module: str) -> dict[str, int]:
    """Jobs a dry run plans after appending a comment to ``src/xai_ssl/<module>`` of the run's code copy (restored after)."""
    work, code = run
    path = code / "src" / "xai_ssl" / module
    original = path.read_text()
    try:
        path.write_text(original + "\n# an edit\n")
        jobs = planned_jobs(snakemake(work, code, "-n"))
    finally:
        path.write_text(original)
    jobs.pop("all", None)
    return jobs


def test_plotting_edit_reruns_only_the_figures(tiny_run: tuple[Path, Path]) -> None:
    assert planned_after_edit(tiny_run, "plots.py") == FIGURES


def test_seeding_edit_reruns_everything_that_draws_seeds(tiny_run: tuple[Path, Path]) -> None:
    """Views, training, the model card, maps and metrics draw from xai_ssl.seeding; generating and indexing the data do not."""
    jobs = planned_after_edit(tiny_run, "seeding.py")
    assert jobs == {"make_pairs": 1, "train_model": 1, "model_card": 1, "compute_attributions": 8, "compute_metrics": 8, "aggregate_tables": 1, "build_explorer": 1, **FIGURES}


def test_method_edit_reruns_only_that_methods_jobs(tiny_run: tuple[Path, Path]) -> None:
    jobs = planned_after_edit(tiny_run, "methods/conditional_occlusion.py")
    assert jobs == {"compute_attributions": 2, "compute_metrics": 2, "aggregate_tables": 1, "plot_attribution_grid": 1, "plot_curves": 1, "plot_metric_bars": 1, "build_explorer": 1}


def test_table_edit_does_not_rerun_metrics(tiny_run: tuple[Path, Path]) -> None:
    assert planned_after_edit(tiny_run, "tables.py") == {"aggregate_tables": 1, "plot_metric_bars": 1}


def test_io_edit_reruns_its_readers_and_writers(tiny_run: tuple[Path, Path]) -> None:
    """The pairs file format is read by every torch job and the figures that show views, but not by training."""
    jobs = planned_after_edit(tiny_run, "io/pairs_file.py")
    assert "train_model" not in jobs and "index_dataset" not in jobs
    assert jobs["make_pairs"] == 1 and jobs["compute_attributions"] == 8 and jobs["compute_metrics"] == 8
