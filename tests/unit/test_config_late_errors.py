"""Config errors that used to surface only inside jobs (issue 20, item 10): refused at validation or start-up."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from helpers import REPO
from helpers import config_refused as refused
from workflow_runner import TINY_CONFIG
from xai_ssl.config import validate_config


def tiny() -> dict[str, Any]:
    return copy.deepcopy(TINY_CONFIG)


def two4two_folder(root: Path, splits: dict[str, int]) -> Path:
    """A minimal Two4Two folder: ``splits`` = {name: number of images}."""
    k = 0
    for split, n in splits.items():
        folder = root / split
        folder.mkdir(parents=True)
        rows = []
        for _ in range(n):
            rows.append(json.dumps({"id": f"i{k}", "obj_name": "peaky"}))
            Image.new("RGB", (8, 8)).save(folder / f"i{k}.png")
            Image.new("L", (8, 8), 1).save(folder / f"i{k}_mask.png")
            k += 1
        (folder / "parameters.jsonl").write_text("\n".join(rows) + "\n\n")  # a blank line is not an image
    return root


def user_dataset(cfg: dict[str, Any], source: str, path: Path, **keys: Any) -> dict[str, Any]:
    cfg["datasets"]["user"] = {"source": source, "path": str(path), "image_size": 32, **keys}
    cfg["run"]["datasets"] = ["user"]
    return cfg


# --- n_shards and n_images against the size of the split ---------------------------------------------------


def test_more_shards_than_generated_images_with_n_images_null() -> None:
    cfg = tiny()
    cfg["datasets"]["tiny"].update(n_images=None, n_shards=7)  # 6 test images generated
    refused(cfg, "config key 'datasets.tiny.n_shards'", "7", "6")


def test_n_images_above_the_generated_split() -> None:
    cfg = tiny()
    cfg["datasets"]["tiny"].update(n_images=10, n_shards=1)
    refused(cfg, "config key 'datasets.tiny.n_images'", "10", "6 images", "'test'")


def test_user_two4two_split_sizes_are_counted(tmp_path: Path) -> None:
    ds = two4two_folder(tmp_path / "ds", {"train": 2, "test": 3})
    refused(user_dataset(tiny(), "two4two", ds, split="test", n_images=None, n_shards=4), "config key 'datasets.user.n_shards'", "3")
    refused(user_dataset(tiny(), "two4two", ds, split="test", n_images=5, n_shards=1), "config key 'datasets.user.n_images'", "3 images")
    validate_config(user_dataset(tiny(), "two4two", ds, split="test", n_images=None, n_shards=3))


def test_user_image_folder_is_counted(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / f"{i}.png")
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    refused(user_dataset(tiny(), "image_folder", tmp_path / "imgs", split=None, n_images=None, n_shards=4), "datasets.user.n_shards", "3")
    validate_config(user_dataset(tiny(), "image_folder", tmp_path / "imgs", split=None, n_images=None, n_shards=3))


def test_split_that_does_not_exist_in_a_two4two_folder(tmp_path: Path) -> None:
    ds = two4two_folder(tmp_path / "ds", {"train": 2, "test": 3})
    refused(user_dataset(tiny(), "two4two", ds, split="validation", n_images=None), "config key 'datasets.user.split'", "'validation'", "['test', 'train']")


def test_train_split_that_does_not_exist(tmp_path: Path) -> None:
    ds = two4two_folder(tmp_path / "ds", {"test": 3})
    cfg = user_dataset(tiny(), "two4two", ds, split="test", n_images=None)
    cfg["models"]["tiny_simclr"]["train_dataset"] = "user"
    refused(cfg, "config key 'models.tiny_simclr.train_split'", "'train'", "['test']")


# --- values the jobs could not handle ------------------------------------------------------------------------


def test_even_blur_kernel() -> None:
    cfg = tiny()
    cfg["metrics"]["insertion_deletion"]["params"]["blur_kernel"] = 4
    refused(cfg, "config key 'metrics.insertion_deletion.params'", "blur_kernel", "odd")


@pytest.mark.parametrize("seed", [2**63, 2**70])
def test_seed_outside_63_bits(seed: int) -> None:
    cfg = tiny()
    cfg["seed"] = seed
    refused(cfg, "config key 'seed'", "maximum")


def test_largest_seed_is_accepted() -> None:
    cfg = tiny()
    cfg["seed"] = 2**63 - 1
    validate_config(cfg)


# --- start-up checks (real runs, not dry runs) ---------------------------------------------------------------


def test_cuda_on_a_machine_without_cuda_is_refused_at_start_up_when_local() -> None:
    from xai_ssl.config import startup_problems

    cfg = validate_config(dict(tiny(), device="cuda"))
    problems = startup_problems(cfg, local=True, cuda_available=lambda: False)
    assert len(problems) == 1 and "config key 'device'" in problems[0] and "'cuda'" in problems[0] and "cpu" in problems[0]
    assert startup_problems(cfg, local=False, cuda_available=lambda: False) == []  # a cluster: the job says it
    assert startup_problems(cfg, local=True, cuda_available=lambda: True) == []
    auto = validate_config(tiny())
    assert startup_problems(auto, local=True, cuda_available=lambda: False) == []


def test_imagenet_path_missing_is_refused_at_start_up(tmp_path: Path) -> None:
    from xai_ssl.config import startup_problems

    cfg = tiny()
    cfg["datasets"]["val"] = {"source": "imagenet_val", "path": str(tmp_path / "absent"), "n_images": 4}
    cfg["run"]["datasets"] = ["val"]
    cfg = validate_config(cfg)  # a dry run may show the DAG before the data is in place
    problems = startup_problems(cfg, local=True, cuda_available=lambda: False)
    assert any("config key 'datasets.val.path'" in p and "absent" in p for p in problems)


def test_archive_without_url_missing_is_refused(tmp_path: Path) -> None:
    """Snakemake cannot plan the extraction without the tar: refused at validation, naming the key (dry runs too)."""
    cfg = tiny()
    cfg["datasets"]["arch"] = {"source": "two4two_archive", "archive": str(tmp_path / "none.tar"), "url": None, "split": "test", "n_images": 2}
    cfg["run"]["datasets"] = ["arch"]
    refused(cfg, "config key 'datasets.arch.archive'", "none.tar")


# --- a YAML alias bomb -------------------------------------------------------------------------------------


BOMB = textwrap.dedent(
    """
    a: &a ["x","x","x","x","x","x","x","x","x","x"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]
    """
)


@pytest.mark.parametrize("where", ["seed", "datasets.tiny.n_images", "methods.gradcam.params"])
def test_alias_bomb_is_not_rendered(tmp_path: Path, where: str) -> None:
    """``seed: *i`` (10^9 strings once expanded) is refused quickly with a bounded message, in a process given 1 GB more."""
    script = textwrap.dedent(
        f"""
        import copy, resource, sys, yaml
        sys.path[:0] = [{str(REPO / 'tests')!r}, {str(REPO / 'src')!r}]
        from workflow_runner import TINY_CONFIG
        from xai_ssl.config import ConfigError, validate_config
        vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), vm + (1 << 30)))  # 1 GB more than after the imports
        bomb = yaml.safe_load({BOMB!r})["i"]
        cfg = copy.deepcopy(TINY_CONFIG)
        *path, last = {where!r}.split(".")
        node = cfg
        for key in path:
            node = node[key]
        node[last] = bomb
        try:
            validate_config(cfg)
        except ConfigError as exc:
            print("REFUSED", len(str(exc)), str(exc)[:300])
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.startswith("REFUSED"), out
    length = int(out.split()[1])
    assert length < 2000 and f"config key '{where}'" in out
