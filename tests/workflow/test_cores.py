"""Issue 20.4: the trained encoder (and so every map and score) does not depend on --cores.

Training sets torch's threads to ``training.threads`` from the config; two runs of the tiny config's training,
one with ``--cores 1`` and one with ``--cores 2``, give identical weights, and the checkpoint records the count.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from workflow_runner import TINY_CONFIG, copy_code, snakemake, write_config

pytestmark = [pytest.mark.integration]

ENCODER = "results/models/tiny_simclr/encoder.pt"


def test_encoder_is_the_same_with_one_and_two_cores(tmp_path: Path) -> None:
    code = copy_code(tmp_path / "code")
    config = copy.deepcopy(TINY_CONFIG)
    config["models"]["tiny_simclr"]["training"] = {"epochs": 2, "batch_size": 16, "threads": 2}
    weights = {}
    for cores in (1, 2):
        work = tmp_path / f"cores{cores}"
        write_config(work, config)
        snakemake(work, code, ENCODER, "--cores", str(cores))
        payload = torch.load(work / ENCODER, map_location="cpu", weights_only=True)
        assert payload["extra"]["threads"] == 2
        weights[cores] = payload["state_dict"]
    one, two = weights[1], weights[2]
    assert one.keys() == two.keys()
    assert all(torch.equal(one[k], two[k]) for k in one)
