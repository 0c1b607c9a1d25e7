"""``python -m xai_ssl.verify --config``: the run's config files merged as Snakemake merges ``--configfile``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from xai_ssl import verify


def write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_configfiles_merge_over_the_workflow_config_in_order(tmp_path: Path) -> None:
    write(tmp_path / "config" / "config.yaml", {"seed": 0, "run": {"methods": ["a", "b"], "models": ["m"]}, "methods": {"a": {"params": {"k": 1}}}})
    one = write(tmp_path / "one.yaml", {"run": {"methods": ["a", "b", "c"]}, "methods": {"c": {}}})
    two = write(tmp_path / "two.yaml", {"seed": 5, "methods": {"a": {"params": {"j": 2}}}})
    # by hand: mappings merged key by key, lists and scalars replaced, later files win
    assert verify.run_config(tmp_path, [one, two]) == {
        "seed": 5, "run": {"methods": ["a", "b", "c"], "models": ["m"]}, "methods": {"a": {"params": {"k": 1, "j": 2}}, "c": {}},
    }
    assert verify.run_config(tmp_path, [])["run"]["methods"] == ["a", "b"]


def test_main_verifies_the_merged_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "config" / "config.yaml", {"seed": 0, "run": {"methods": ["a"], "models": ["m"]}})
    overlay = write(tmp_path / "all.yaml", {"run": {"methods": ["a", "z"]}})
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(verify, "verify_run", lambda root, config: seen.append(config) or verify.Problems(root))
    assert verify.main(["--directory", str(tmp_path), "--config", str(overlay)]) == 0
    assert seen == [{"seed": 0, "run": {"methods": ["a", "z"], "models": ["m"]}}]


def test_no_config_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"config/config.yaml: no config"):
        verify.run_config(tmp_path, [])
