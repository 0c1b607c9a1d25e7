"""Running a stage function as a Snakemake job: arguments from the rule's names, refused mismatches, the log file."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from xai_ssl.stages.job import rule_arguments, run_rule


class Named(dict):
    """Stand-in for Snakemake's named lists (``.items()`` of the named entries)."""


def job(tmp_path: Path, **sections: dict) -> SimpleNamespace:
    base = {"input": Named(), "output": Named(), "params": Named(), "wildcards": Named()}
    base.update({k: Named(v) for k, v in sections.items()})
    return SimpleNamespace(rule="r", log=[str(tmp_path / "logs" / "r.log")], threads=3, **base)


def stage(pairs: str, maps: str, seed: int, method: str, progress: bool = True) -> dict:
    return {"pairs": pairs, "maps": maps, "seed": seed, "method": method, "progress": progress}


def test_arguments_from_names(tmp_path: Path) -> None:
    smk = job(tmp_path, input={"pairs": "p.h5"}, output={"maps": "m.h5"}, params={"seed": 3, "code": "abc"}, wildcards={"method": "gradcam", "shard": "0"})
    assert rule_arguments(smk, stage) == {"pairs": "p.h5", "maps": "m.h5", "seed": 3, "method": "gradcam"}  # code and unused wildcards dropped


def test_lists_of_files_become_lists_of_str(tmp_path: Path) -> None:
    def f(files: list[str]) -> None: ...

    class IOFile(str):
        pass

    assert rule_arguments(job(tmp_path, input={"files": [IOFile("a"), IOFile("b")]}), f) == {"files": ["a", "b"]}


def test_mismatches_are_refused_naming_the_rule(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="rule r: .*takes no argument 'extra'"):
        rule_arguments(job(tmp_path, input={"pairs": "p", "extra": "x"}, output={"maps": "m"}, params={"seed": 1}, wildcards={"method": "g"}), stage)
    with pytest.raises(TypeError, match=r"rule r: .*needs \['seed'\]"):
        rule_arguments(job(tmp_path, input={"pairs": "p"}, output={"maps": "m"}, wildcards={"method": "g"}), stage)
    with pytest.raises(TypeError, match="'pairs' is used twice"):
        rule_arguments(job(tmp_path, input={"pairs": "p"}, output={"pairs": "m"}), stage)


def test_run_rule_logs_and_reraises(tmp_path: Path) -> None:
    def failing(x: int) -> None:
        print("about to fail")
        raise ValueError("bad input x")

    smk = job(tmp_path, params={"x": 1})
    with pytest.raises(ValueError, match="bad input x"):
        run_rule(smk, failing)
    text = Path(smk.log[0]).read_text()
    assert "about to fail" in text and "ValueError: bad input x" in text
