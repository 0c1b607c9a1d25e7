"""The skip rule: a missing requirement (shared data, a required package) skips a test with a message saying what is
missing, and fails it under CI=true; only optional resources skip in CI (pytest run in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from helpers import REPO

GENERATED = '''
import pytest
from helpers import OPTIONAL, require_module, shared_data, skip_optional


def test_package():
    require_module("xai_ssl_absent_package")


def test_data():
    shared_data("absent-folder")


def test_plain_skip():
    pytest.skip("a reason that is not optional")


def test_optional():
    skip_optional("no CUDA device")


@pytest.mark.skipif(True, reason=f"{OPTIONAL} no CUDA device")
def test_optional_mark():
    pass


def test_runs():
    pass
'''
MODULE_LEVEL = '''
from helpers import require_module

require_module("xai_ssl_absent_package")


def test_never_collected():
    pass
'''
IMPORTORSKIP = '''
import pytest

pytest.importorskip("xai_ssl_other_absent_package")


def test_never_collected_either():
    pass
'''


def run_pytest(args: list[str], cwd: Path, ci: bool, shared: Path, out: Path, extra_path: list[Path] = ()) -> tuple[int, dict[str, tuple[str, str]], str]:
    """pytest in a subprocess in ``cwd``: exit code, {test name: (outcome, message)} from its JUnit XML (in ``out``), its output."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(XAI_SSL_SHARED_DATA=str(shared), OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(map(str, [*extra_path, REPO / "src", REPO / "tests"])))
    if ci:
        env["CI"] = "true"
    xml = out / f"junit-{int(ci)}.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--continue-on-collection-errors", f"--junitxml={xml}", *args],
        check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )
    results = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                outcome, message = tag, (el.get("message") or "") + (el.text or "")
        results[case.get("name") or ""] = (outcome, message)
    return proc.returncode, results, proc.stdout + proc.stderr


def test_helpers_skip_outside_ci_and_fail_in_ci(tmp_path: Path) -> None:
    """require_module / shared_data / a plain skip: skipped outside CI (naming what is missing), failed with CI=true;
    optional skips stay skips; a required package missing at import fails the module's collection in CI."""
    (tmp_path / "conftest.py").write_text("from helpers import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401\n")
    (tmp_path / "test_generated.py").write_text(GENERATED)
    (tmp_path / "test_module_level.py").write_text(MODULE_LEVEL)
    (tmp_path / "test_importorskip.py").write_text(IMPORTORSKIP)  # a skip that bypasses the helpers
    shared = tmp_path / "shared"
    shared.mkdir()
    code, local, out = run_pytest(["test_generated.py", "test_module_level.py", "test_importorskip.py"], tmp_path, ci=False, shared=shared, out=tmp_path)
    assert code == 0, out
    assert local["test_package"][0] == "skipped" and "xai_ssl_absent_package" in local["test_package"][1], local
    assert local["test_data"][0] == "skipped" and str(shared / "absent-folder") in local["test_data"][1], local
    assert local["test_plain_skip"][0] == "skipped" and local["test_runs"][0] == "passed"
    assert local["test_optional"][0] == local["test_optional_mark"][0] == "skipped"
    assert "test_never_collected" not in local and any("xai_ssl_absent_package" in m for o, m in local.values() if o == "skipped")
    assert any("xai_ssl_other_absent_package" in m for o, m in local.values() if o == "skipped")

    code, ci, out = run_pytest(["test_generated.py", "test_module_level.py", "test_importorskip.py"], tmp_path, ci=True, shared=shared, out=tmp_path)
    assert code != 0
    assert ci["test_package"][0] == "failure" and "xai_ssl_absent_package" in ci["test_package"][1], ci
    assert ci["test_data"][0] == "failure" and "absent-folder" in ci["test_data"][1], ci
    assert ci["test_plain_skip"][0] == "failure" and "a reason that is not optional" in ci["test_plain_skip"][1], ci
    assert ci["test_optional"][0] == ci["test_optional_mark"][0] == "skipped" and ci["test_runs"][0] == "passed", ci
    assert any(o == "error" and "xai_ssl_absent_package" in m for o, m in ci.values()), ci  # the module's collection
    assert any(o == "error" and "xai_ssl_other_absent_package" in m for o, m in ci.values()), ci


def test_real_modules_fail_in_ci_without_captum_or_shared_data(tmp_path: Path) -> None:
    """The suite's own modules: with a broken Captum import and without ../shared/data they skip outside CI and fail in CI."""
    fake = tmp_path / "fake"
    (fake / "captum").mkdir(parents=True)
    (fake / "captum" / "__init__.py").write_text("raise ModuleNotFoundError('captum is broken (a test of the skip rule)', name='captum')\n")
    args = ["tests/unit/methods/test_survey_methods.py", "tests/unit/data/test_two4two.py"]
    code, local, out = run_pytest(args, REPO, ci=False, shared=tmp_path / "absent", out=tmp_path, extra_path=[fake])
    assert code == 0, out
    skipped = [m for o, m in local.values() if o == "skipped"]
    assert any("captum" in m for m in skipped) and any(str(tmp_path / "absent" / "two4two-mini") in m for m in skipped), local
    assert {o for o, _ in local.values()} <= {"skipped", "passed"}
    code, ci, out = run_pytest(args, REPO, ci=True, shared=tmp_path / "absent", out=tmp_path, extra_path=[fake])
    assert code != 0
    assert any(o == "error" and "captum is broken" in m for o, m in ci.values()), ci
    assert any(o in ("failure", "error") and "two4two-mini" in m for o, m in ci.values()), ci
    assert not [n for n, (o, _) in ci.items() if o == "skipped"], ci
