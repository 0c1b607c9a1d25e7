"""notebooks/quickstart.ipynb: executed with nbclient on a tiny random encoder and a real Two4Two render (offline);
the committed file carries no outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from helpers import REPO
from xai_ssl import api
from xai_ssl.io.maps_file import save_attributions
from xai_ssl.models.registry import build_architecture, save_encoder

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"
METHODS = ["gradcam", "input_x_gradient", "pairwise_occlusion", "pixel_invariance"]


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"cells {dirty} of {NOTEBOOK.name} have outputs or execution counts: strip them before committing"
    assert [c for c in code if "parameters" in c.metadata.get("tags", [])] == [code[0]], "the first code cell (only) is tagged 'parameters'"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert set(nb.metadata) <= {"kernelspec", "language_info"}, f"editor metadata left in the notebook: {sorted(nb.metadata)}"


def python3_kernel() -> str:
    """The 'python3' kernel of this interpreter (ipykernel's spec, installed into sys.prefix when absent; offline)."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix)
    return "python3"


def test_notebook_runs_on_a_tiny_model_and_a_real_image(two4two_mini: Path, tmp_path: Path) -> None:
    from nbclient import NotebookClient

    image = min(p for p in (two4two_mini / "test").glob("*.png") if not p.name.endswith("_mask.png"))
    torch.manual_seed(0)
    arch = {"width": 4, "embedding_dim": 8, "hidden_dim": 16}
    encoder_file = tmp_path / "encoder.pt"
    save_encoder(build_architecture("small_resnet", **arch), encoder_file, "small_resnet", arch)
    # the maps of this image as a workflow run stores them (the real writer), to be opened by the notebook
    config = api.read_config(REPO / "config" / "config.yaml")
    ds = config["datasets"][config["run"]["datasets"][0]]
    enc = api.load_encoder(encoder_file, config=config, device="cpu")
    v = api.views(image, ds["image_size"], seed=config["seed"], crop_scale=ds["view_crop_scale"])
    m1, m2 = api.explain(enc, v, **api.configured_method(config, "gradcam"), seed=config["seed"])
    h5 = tmp_path / "gradcam" / "shard-0.h5"
    save_attributions(h5, [v.image_id], np.array([0]), m1[None], m2[None], {"method": "gradcam", "registry_method": "gradcam",
                                                                               "pair_family": "crop_aug", "seed": config["seed"]})

    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = "\n".join([
        f"ROOT = {str(REPO)!r}",
        f"CONFIG = {str(REPO / 'config' / 'config.yaml')!r}",
        f"MODEL = {str(encoder_file)!r}",
        f"IMAGE = {str(image)!r}",
        f"METHODS = {METHODS!r}",
        f"ATTRIBUTIONS = {str(h5)!r}",
    ])
    # read back what the notebook computed
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json\nprint('RESULT ' + json.dumps({'image_id': v.image_id, 'base': base, 'table': table.to_dict(), "
        "'maps': {k: [m.tolist() for m in maps[k] if m is not None] for k in maps}}))"))
    NotebookClient(nb, timeout=600, kernel_name=python3_kernel(), resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    texts = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) == 4, "the views, the overlays, the curves and the stored map are drawn"
    assert "largest difference to the map computed above: 0" in texts  # the stored workflow map equals the notebook's
    result = json.loads(texts.split("RESULT ", 1)[1].splitlines()[0])
    assert result["image_id"] == v.image_id == image.stem
    assert result["base"] == pytest.approx(float(api.similarity(enc, v)), rel=1e-6)
    for name in METHODS:  # the notebook's maps and scores equal the API's, called here with the same settings
        kwargs = api.configured_method(config, name)
        e1, e2 = api.explain(enc, v, **kwargs, seed=config["seed"])
        np.testing.assert_allclose(np.asarray(result["maps"][name][0]), e1.numpy(), rtol=1e-5, atol=1e-7)
        method, key = kwargs.pop("method"), kwargs.pop("key")
        values, _ = api.score(enc, v, maps=(e1, e2), metrics={m: config["metrics"][m]["params"] for m in ("insertion_deletion", "average_drop_increase")},
                              method=method, key=key, method_params=kwargs, seed=config["seed"])
        for column, by_method in result["table"].items():
            expected = values[column]
            got = by_method[name]
            assert got == pytest.approx(expected, rel=1e-5, abs=1e-7, nan_ok=True), (name, column)
