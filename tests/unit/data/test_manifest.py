"""The content manifest of a dataset folder (issue 20, item 1): what changes it, what does not, what it costs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from workflow_runner import TINY_CONFIG
from xai_ssl.config import validate_config
from xai_ssl.data.manifest import dataset_content, split_sizes
from xai_ssl.plan import Plan


def two4two(root: Path) -> Path:
    for split, ids in {"train": ["a", "b"], "test": ["c", "d"]}.items():
        folder = root / split
        folder.mkdir(parents=True)
        (folder / "parameters.jsonl").write_text("".join(json.dumps({"id": i, "obj_name": "peaky"}) + "\n" for i in ids))
        for i in ids:
            Image.new("RGB", (8, 8), (ord(i), 0, 0)).save(folder / f"{i}.png")
            Image.new("L", (8, 8), 1).save(folder / f"{i}_mask.png")
    return root


def later(path: Path) -> None:
    """Move a file's mtime 2 s on (a real edit on a coarse-mtime file system)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


@pytest.mark.parametrize(
    "change",
    [
        lambda r: (Image.new("RGB", (8, 8), (1, 2, 3)).save(r / "test" / "c.png"), later(r / "test" / "c.png")),  # replaced
        lambda r: later(r / "test" / "c.png"),  # same bytes, a later time: a copy over it, or a touch
        lambda r: (r / "test" / "d_mask.png").unlink(),  # mask deleted
        lambda r: Image.new("RGB", (8, 8)).save(r / "train" / "new.png"),  # added
        lambda r: (r / "train" / "a.png").unlink(),  # removed
        lambda r: (r / "test" / "parameters.jsonl").write_text('{"id": "c", "obj_name": "stretchy"}\n{"id": "d", "obj_name": "peaky"}\n'),  # labels
        lambda r: (r / "loop").symlink_to(".", target_is_directory=True),  # a link the index will list as skipped
    ],
)
def test_changes_that_matter_change_the_manifest(tmp_path: Path, change) -> None:
    root = two4two(tmp_path / "ds")
    before = dataset_content("two4two", root)
    change(root)
    assert dataset_content("two4two", root) != before


def test_unrelated_files_and_reads_do_not(tmp_path: Path) -> None:
    root = two4two(tmp_path / "ds")
    before = dataset_content("two4two", root)
    (root / "README.txt").write_text("notes")
    (root / ".DS_Store").write_bytes(b"x")
    Image.open(root / "test" / "c.png").load()  # reading an image changes nothing
    assert dataset_content("two4two", root) == before
    assert before.startswith("10 files")  # 4 images, 4 masks and the two parameters.jsonl


def test_image_folder_counts_only_images(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / f"{i}.jpg")
    (tmp_path / "imgs" / "notes.txt").write_text("x")
    assert dataset_content("image_folder", tmp_path / "imgs").startswith("3 files")
    assert split_sizes("image_folder", tmp_path / "imgs") == {None: 3}
    assert split_sizes("two4two", two4two(tmp_path / "ds")) == {"test": 2, "train": 2}


def test_plan_gives_generated_datasets_a_constant_and_caches_user_folders(tmp_path: Path) -> None:
    root = two4two(tmp_path / "ds")
    cfg = json.loads(json.dumps(TINY_CONFIG))
    cfg["datasets"]["user"] = {"source": "two4two", "path": str(root), "split": "test", "n_images": 2, "image_size": 32}
    plan = Plan(validate_config(cfg))
    tiny, user = SimpleNamespace(dataset="tiny"), SimpleNamespace(dataset="user")
    assert plan.dataset_content(tiny) == "made by the workflow"
    first = plan.dataset_content(user)
    assert first == dataset_content("two4two", root)
    (root / "test" / "c.png").unlink()
    assert plan.dataset_content(user) == first  # computed once per snakemake start


def test_fifty_thousand_files_take_well_under_a_second(tmp_path: Path) -> None:
    """ImageNet's validation set has 50 000 files: the manifest stats them (no decoding). Measured, not asserted tight."""
    folder = tmp_path / "val"
    folder.mkdir()
    for i in range(50_000):
        (folder / f"ILSVRC2012_val_{i:08d}.JPEG").touch()
    t0 = time.process_time()
    text = dataset_content("imagenet_val", folder)
    cpu = time.process_time() - t0
    assert text.startswith("50000 files")
    assert cpu < 5.0, cpu  # ~0.3 s of CPU on a 2-core VM; generous for loaded CI machines
