"""Code fingerprints: the static import closure is complete, function-level, and changes exactly with the code it covers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO
from xai_ssl import fingerprint as fp

STAGE_RULES = {
    "data": ["generate_synthetic_dataset", "download_dataset_archive", "extract_two4two_archive", "index_dataset", "prepare_imagenet_val", "make_pairs"],
    "models": ["train_model", "model_card", "download_checkpoint", "download_simclrv2_tf", "convert_simclrv2", "prepare_model"],
    "attribution": ["compute_attributions", "feature_visualisation"],
    "evaluation": ["compute_metrics", "aggregate_tables", "compare_reference"],
    "report": ["plot_attribution_grid", "plot_curves", "plot_metric_bars", "plot_training_loss", "plot_model_card", "plot_feature_visualisation", "build_explorer"],
}


def imported_by(module: str) -> set[str]:
    """The xai_ssl modules that importing ``module`` really loads (in a fresh interpreter)."""
    code = f"import sys, json, {module}; print(json.dumps(sorted(m for m in sys.modules if m == 'xai_ssl' or m.startswith('xai_ssl.'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": str(REPO / "src"), "PATH": ""})
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("stage", sorted(STAGE_RULES))
def test_closure_covers_what_python_imports(stage: str) -> None:
    """Every module Python loads for a stage module is in the static closure, except the registries' plugins."""
    module = f"xai_ssl.stages.{stage}"
    static = fp.import_closure([module])
    plugins = {m for m in imported_by(module) if m.startswith(("xai_ssl.methods.", "xai_ssl.metrics.")) and not m.endswith(".base")}
    missing = imported_by(module) - static - plugins
    assert not missing, missing


def test_every_rule_has_a_stage_function_named_like_it() -> None:
    """rule = script = stage function: each rule of rules/<stage>.smk is xai_ssl.stages.<stage>.<rule>, called by workflow/scripts/<rule>.py."""
    rules = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for line in smk.read_text().splitlines():
            if line.startswith("rule "):
                rules[line.split()[1].rstrip(":")] = smk.stem
    rules.pop("all", None)
    assert {r: s for s, names in STAGE_RULES.items() for r in names} == rules
    for rule, stage in rules.items():
        assert fp.stage_module(rule) == f"xai_ssl.stages.{stage}"
        script = (REPO / "workflow" / "scripts" / f"{rule}.py").read_text()
        assert f"from xai_ssl.stages.{stage} import {rule}\n" in script and f"run_rule(snakemake, {rule})" in script
    assert sorted(p.stem for p in (REPO / "workflow" / "scripts").glob("*.py")) == sorted(rules)


def test_function_level_dependencies() -> None:
    """aggregate_tables uses the tables but no torch stage code; compute_metrics uses scoring but not tables."""
    _, agg = fp.function_dependencies("xai_ssl.stages.evaluation", "aggregate_tables")
    _, met = fp.function_dependencies("xai_ssl.stages.evaluation", "compute_metrics")
    agg_closure, met_closure = fp.import_closure(agg), fp.import_closure(met)
    assert "xai_ssl.tables" in agg_closure and "xai_ssl.scoring" not in agg_closure and "xai_ssl.engine" not in agg_closure
    assert "xai_ssl.scoring" in met_closure and "xai_ssl.tables" not in met_closure and "xai_ssl.plots" not in met_closure


@pytest.fixture
def code_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the library whose files a test may edit; the fingerprint module reads it instead of the real one."""
    dest = tmp_path / "xai_ssl"
    shutil.copytree(REPO / "src" / "xai_ssl", dest, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fp, "PACKAGE_DIR", dest)
    fp._tree.cache_clear()
    fp.direct_imports.cache_clear()
    yield dest
    fp._tree.cache_clear()
    fp.direct_imports.cache_clear()


def edited(copy: Path, rel: str, rules: list[str], plugins: dict[str, list[str]] | None = None) -> set[str]:
    """The rules whose fingerprint changes when ``rel`` (a file of the copy) gets one more comment line."""
    plugins = plugins or {}
    before = {r: fp.rule_fingerprint(r, plugins.get(r, [])) for r in rules}
    (copy / rel).write_text((copy / rel).read_text() + "\n# edit\n")
    fp._tree.cache_clear()
    fp.direct_imports.cache_clear()
    return {r for r in rules if fp.rule_fingerprint(r, plugins.get(r, [])) != before[r]}


ALL_RULES = [r for names in STAGE_RULES.values() for r in names]


def test_plot_edit_changes_only_figure_rules(code_copy: Path) -> None:
    assert edited(code_copy, "plots.py", ALL_RULES) == set(STAGE_RULES["report"]) - {"build_explorer"}


def test_seeding_edit_changes_the_rules_that_draw_seeds(code_copy: Path) -> None:
    changed = edited(code_copy, "seeding.py", ALL_RULES)
    assert {"make_pairs", "train_model", "compute_attributions", "compute_metrics", "feature_visualisation", "prepare_model"} <= changed
    assert not changed & {"aggregate_tables", "index_dataset", "generate_synthetic_dataset", "plot_curves"}


def test_stage_function_edit_is_function_level(code_copy: Path) -> None:
    """Editing aggregate_tables' body changes its fingerprint, not compute_metrics' (same module)."""
    path = code_copy / "stages" / "evaluation.py"
    before = {r: fp.rule_fingerprint(r) for r in ("aggregate_tables", "compute_metrics")}
    path.write_text(path.read_text().replace("log.info(\"%s: bad-number counts %s\"", "log.warning(\"%s: bad-number counts %s\""))
    fp._tree.cache_clear()
    assert fp.rule_fingerprint("aggregate_tables") != before["aggregate_tables"]
    assert fp.rule_fingerprint("compute_metrics") == before["compute_metrics"]


def test_plugins_are_separate(code_copy: Path) -> None:
    """A method module's edit changes the jobs of that method only (the method's module is a plugin of its jobs)."""
    rules = ["compute_attributions", "compute_metrics"]
    gradcam = {r: ["xai_ssl.methods.gradcam"] for r in rules}
    occlusion = {r: ["xai_ssl.methods.conditional_occlusion"] for r in rules}
    assert edited(code_copy, "methods/gradcam.py", rules, occlusion) == set()
    assert edited(code_copy, "methods/gradcam.py", rules, gradcam) == set(rules)
    # interaction_cam imports gradcam's helpers: its jobs depend on gradcam.py too
    assert edited(code_copy, "methods/gradcam.py", rules, {r: ["xai_ssl.methods.interaction_cam"] for r in rules}) == set(rules)
