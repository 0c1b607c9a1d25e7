"""Damaged outputs (issue 20, item 7): every reader of our files names the file and the command that rebuilds it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from xai_ssl.data.index import read_index, write_index
from xai_ssl.data.records import ImageRecord
from xai_ssl.io.maps_file import DreamedImages, load_attributions, load_dreamed, save_attributions, save_dreamed
from xai_ssl.io.pairs_file import read_pairs, write_pairs
from xai_ssl.io.scores_file import read_curves, read_curves_attrs, read_scores, save_scores
from xai_ssl.models.registry import build_architecture, read_encoder, save_encoder

N, S = 3, 8


def make_pairs_file(path: Path) -> None:
    views = [({k: torch.full((3, S, S), i, dtype=torch.uint8) for k in ("x1", "x2", "xt")}, None) for i in range(N)]
    write_pairs(path, [f"i{i}" for i in range(N)], S, views, False, {"seed": 0})


def make_maps(path: Path) -> None:
    save_attributions(path, [f"i{i}" for i in range(N)], np.arange(N), torch.rand(N, 4, 4), None, {"method": "m", "params": {}})


def make_dreamed(path: Path) -> None:
    save_dreamed(path, DreamedImages([f"i{i}" for i in range(N)], np.arange(N), torch.rand(N, 3, S, S), torch.rand(N, 3, S, S), {"pair_family": "crop_aug"}))


def make_scores(path: Path) -> None:
    table = pd.DataFrame({"image_id": [f"i{i}" for i in range(N)], "SI": [0.1, 0.2, 0.3]})
    save_scores(table, {"SI": np.zeros((N, 5))}, path, path.with_suffix(".curves.h5"), {"diagnostics": {}, "seed": 0})


def make_curves(path: Path) -> None:
    make_scores(path.with_name("shard-0.csv"))


def make_index(path: Path) -> None:
    write_index([ImageRecord(f"i{i}", Path(f"/data/i{i}.png")) for i in range(N)], path)


def make_encoder(path: Path) -> None:
    save_encoder(build_architecture("small_resnet", width=4, embedding_dim=8, hidden_dim=16), path, "small_resnet", {"width": 4, "embedding_dim": 8, "hidden_dim": 16})


def make_per_image(path: Path) -> None:
    pd.DataFrame({"method": ["m"] * N, "image_id": [f"i{i}" for i in range(N)], "SI": [0.1, 0.2, 0.3]}).to_csv(path, index=False)


def make_history(path: Path) -> None:
    pd.DataFrame({"epoch": [1, 2], "loss": [2.0, 1.5]}).to_csv(path, index=False)


def make_summary(path: Path) -> None:
    pd.DataFrame({"method": ["m"], "SI": [0.2], "n_images": [N]}).to_csv(path, index=False)


def read_per_image_csv(path: Path) -> object:
    from xai_ssl.io.tables_file import read_per_image_table

    return read_per_image_table(path)


def read_history(path: Path) -> object:
    from xai_ssl.io.tables_file import read_training_history

    return read_training_history(path)


def read_summary(path: Path) -> object:
    from xai_ssl.reference import read_scores as read_summary_scores

    return read_summary_scores(path)


FILES: dict[str, tuple[str, Callable[[Path], None], Callable[[Path], object]]] = {
    "pairs": ("results/pairs/ds.h5", make_pairs_file, read_pairs),
    "attributions": ("results/attributions/ds/m/gradcam/shard-0.h5", make_maps, load_attributions),
    "dreamed": ("results/feature_visualisation/ds/m/fv.h5", make_dreamed, load_dreamed),
    "curves": ("results/metrics/ds/m/gradcam/shard-0.curves.h5", make_curves, lambda p: read_curves([p])),
    "curves_attrs": ("results/metrics/ds/m/gradcam/shard-0.curves.h5", make_curves, read_curves_attrs),
    "scores": ("results/metrics/ds/m/gradcam/shard-0.csv", make_scores, read_scores),
    "index": ("results/data/ds/index.csv", make_index, read_index),
    "encoder": ("results/models/m/encoder.pt", make_encoder, lambda p: read_encoder(p)),
    "per_image": ("results/tables/ds/m/per_image.csv", make_per_image, read_per_image_csv),
    "history": ("results/models/m/training.csv", make_history, read_history),
    "summary": ("results/tables/ds/m/scores.csv", make_summary, read_summary),
}


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2 + 1])
    elif how == "zeroed":
        path.write_bytes(b"\x00" * len(data))
    elif how == "empty":
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["truncated", "zeroed", "empty"])
@pytest.mark.parametrize("kind", sorted(FILES))
def test_damaged_file_is_named_with_the_rebuild_command(kind: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rel, make, read = FILES[kind]
    monkeypatch.chdir(tmp_path)
    path = Path(rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    make(path)
    read(path)  # intact: reads
    damage(path, how)
    with pytest.raises(Exception) as err:
        read(path)
    msg = str(err.value)
    assert rel in msg, msg
    assert f"snakemake --forcerun {rel}" in msg, msg
    if kind in CSV_OUTPUTS:  # the reason says what happened to the file
        assert {"truncated": "truncated", "zeroed": "NUL bytes", "empty": "empty"}[how] in msg, msg


CSV_OUTPUTS = ("scores", "per_image", "history", "summary")


def test_missing_output_names_the_rebuild_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"results/attributions/x\.h5.*snakemake"):
        load_attributions("results/attributions/x.h5")
