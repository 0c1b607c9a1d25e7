"""Attribution files: extra per-image arrays (``extra/<name>``) beside the maps."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from xai_ssl.io.maps_file import load_attributions, load_extra, save_attributions

IDS = ["a", "b", "c"]


def test_extras_are_written_as_extra_datasets_and_read_back(tmp_path: Path) -> None:
    heads = torch.arange(3 * 2 * 4 * 4, dtype=torch.float64).reshape(3, 2, 4, 4)
    map1 = heads.mean(1).float()
    save_attributions(tmp_path / "m.h5", IDS, np.arange(3), map1, None, {"method": "vit_attention"}, extras={"heads": heads})
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert f["extra/heads"].dtype == np.float32 and f["extra/heads"].shape == (3, 2, 4, 4)
        np.testing.assert_array_equal(f["extra/heads"][()], heads.numpy().astype(np.float32))
    torch.testing.assert_close(load_extra(tmp_path / "m.h5", "heads"), heads.float())
    assert load_extra(tmp_path / "m.h5", "other") is None
    assert load_attributions(tmp_path / "m.h5").map1.shape == (3, 4, 4)


def test_an_extra_array_of_other_length_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"extra array 'heads' has 2 rows for 3 images"):
        save_attributions(tmp_path / "m.h5", IDS, np.arange(3), torch.zeros(3, 4, 4), None, {}, extras={"heads": torch.zeros(2, 1, 4, 4)})
    assert list(tmp_path.iterdir()) == []  # no half-written file, no temporary left behind


def test_files_without_extras_have_no_extra_group(tmp_path: Path) -> None:
    save_attributions(tmp_path / "m.h5", IDS, np.arange(3), torch.zeros(3, 4, 4), torch.zeros(3, 4, 4), {})
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert "extra" not in f
    assert load_extra(tmp_path / "m.h5", "heads") is None
