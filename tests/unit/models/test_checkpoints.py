"""Pretrained checkpoint loaders (real key layouts, real file formats), digests, downloads and the TF conversion.

Width-1 SimCLRv2, SimSiam and torchvision files here; SimCLRv2 2x and Barlow Twins (8192-d projector) have
their own modules (test_checkpoints_large.py) so that each big file is built once.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from checkpoint_layouts import (
    dummy_optimizer,
    simclrv2_shapes,
    write_simclrv2,
    write_simsiam,
    write_torchvision,
)
from helpers import skip_optional
from xai_ssl.io.download import (
    ChecksumError,
    DownloadError,
    fetch,
    read_record,
    record_path,
    sha256_file,
    verify_file,
)
from xai_ssl.models.checkpoints import read_torch_file
from xai_ssl.models.encoder import IMAGENET_MEAN, IMAGENET_STD
from xai_ssl.models.registry import (
    PRETRAINED_SOURCES,
    CheckpointError,
    load_encoder,
    load_pretrained,
)
from xai_ssl.models.simclrv2 import (
    Bottleneck,
    convert_tf_checkpoint,
    read_tf_variables,
    tf_layer_order,
    tf_variables_to_state_dicts,
)
from xai_ssl.stages.models import prepare_model

X = torch.rand((2, 3, 64, 64), generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    paths = {
        "simclrv2": root / "r50_1x_sk0_ema.pth",
        "simsiam": root / "checkpoint_0099.pth.tar",
        "resnet18": root / "resnet18.pth",
        "resnet50_nofc": root / "resnet50.pth",
    }
    write_simclrv2(paths["simclrv2"], 1)
    write_simsiam(paths["simsiam"])
    write_torchvision(paths["resnet18"], "resnet18")
    write_torchvision(paths["resnet50_nofc"], "resnet50", fc=False)
    return paths


def embed(encoder: nn.Module, x: torch.Tensor = X) -> torch.Tensor:
    with torch.no_grad():
        return encoder(x)


# --------------------------------------------------------------------------------------------
# loaders
# --------------------------------------------------------------------------------------------


def test_simclrv2_layout_matches_the_spec() -> None:
    resnet, head = simclrv2_shapes(1)
    assert len(resnet) == 320 and len(head) == 18  # 320 'resnet' keys including fc (methods-sammani.md §1.2)


def test_simclrv2_1x(files: dict[str, Path]) -> None:
    enc, arch, params = load_pretrained("simclrv2", files["simclrv2"], width=1)
    assert (arch, params) == ("simclrv2_resnet50", {"width": 1})
    assert not enc.training and not enc.normalised
    assert enc.normalise(X) is X  # inputs in [0, 1], no mean/std
    assert enc.features(X).shape == (2, 2048, 2, 2)
    z = embed(enc)
    assert z.shape == (2, 128) and torch.isfinite(z).all()
    raw = torch.load(files["simclrv2"], weights_only=True)
    sd = enc.state_dict()
    torch.testing.assert_close(sd["trunk.0.0.weight"], raw["resnet"]["net.0.0.weight"])
    torch.testing.assert_close(sd["trunk.4.blocks.2.net.4.weight"], raw["resnet"]["net.4.blocks.2.net.4.weight"])
    torch.testing.assert_close(sd["head.6.weight"], raw["head"]["layers.6.weight"])
    assert not any(k.startswith("fc") or ".fc." in k for k in sd)  # the supervised head is dropped
    # z = head(mean over h, w of the last stage), computed by hand from the file's head tensors
    h = enc.features(X).mean(dim=(2, 3))
    with torch.no_grad():
        for i in (0, 3):
            w, bn = raw["head"][f"layers.{i}.weight"], f"layers.{i + 1}"
            h = torch.relu(nn.functional.batch_norm(h @ w.t(), raw["head"][f"{bn}.running_mean"], raw["head"][f"{bn}.running_var"], raw["head"][f"{bn}.weight"], raw["head"][f"{bn}.bias"], eps=1e-5))
        z_ref = nn.functional.batch_norm(h @ raw["head"]["layers.6.weight"].t(), raw["head"]["layers.7.running_mean"], raw["head"]["layers.7.running_var"], raw["head"]["layers.7.weight"], raw["head"]["layers.7.bias"], eps=1e-5)
    torch.testing.assert_close(z, z_ref, rtol=1e-4, atol=1e-5)


def test_simclrv2_block_output_relu_is_functional() -> None:
    block = Bottleneck(64, 64, 1, project=True)
    assert sum(isinstance(m, nn.ReLU) for m in block.modules()) == 2  # the two inside the branch only


def test_simsiam_embeds_the_predictor_output(files: dict[str, Path]) -> None:
    enc, arch, _ = load_pretrained("simsiam", files["simsiam"])
    assert arch == "simsiam_resnet50" and enc.normalised
    torch.testing.assert_close(enc.input_mean.flatten(), torch.tensor(IMAGENET_MEAN))
    torch.testing.assert_close(enc.input_std.flatten(), torch.tensor(IMAGENET_STD))
    torch.testing.assert_close(enc.normalise(X), (X - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
    z = embed(enc)
    assert z.shape == (2, 2048)
    with torch.no_grad():
        pooled = enc.features(X).mean(dim=(2, 3))
        p = enc.head.predictor(enc.head.projector(pooled))
    torch.testing.assert_close(z, p)
    raw = torch.load(files["simsiam"], weights_only=True)["state_dict"]
    torch.testing.assert_close(enc.head.predictor[3].bias, raw["module.predictor.3.bias"])
    torch.testing.assert_close(enc.head.projector[7].running_var, raw["module.encoder.fc.7.running_var"])
    assert not enc.head.projector[7].affine  # the BN1d(affine=False) that ends the projector


@pytest.mark.parametrize(("key", "variant", "dim"), [("resnet18", "resnet18", 512), ("resnet50_nofc", "resnet50", 2048)])
def test_torchvision_resnet(files: dict[str, Path], key: str, variant: str, dim: int) -> None:
    enc, arch, params = load_pretrained("torchvision_resnet", files[key], variant=variant)
    assert arch == "torchvision_resnet" and params == {"variant": variant}
    assert isinstance(enc.head, nn.Identity) and enc.normalised
    assert embed(enc).shape == (2, dim)
    enc_raw, _, params = load_pretrained("torchvision_resnet", files[key], variant=variant, normalise=False)
    assert enc_raw.normalise(X) is X and params == {"variant": variant, "normalise": False}


def test_registry_lists_every_source() -> None:
    assert set(PRETRAINED_SOURCES) == {"simclrv2", "barlow_twins", "simsiam", "torchvision_resnet", "timm", "python"}


# --------------------------------------------------------------------------------------------
# strict loading: clear errors naming the file, the format and the differing keys
# --------------------------------------------------------------------------------------------


def _rewrite(src: Path, dst: Path, edit) -> Path:
    payload = torch.load(src, weights_only=True)
    edit(payload)
    torch.save(payload, dst)
    return dst


def test_simclrv2_renamed_key_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    def rename(p: dict) -> None:
        p["resnet"]["net.2.blocks.1.net.2.weightx"] = p["resnet"].pop("net.2.blocks.1.net.2.weight")

    bad = _rewrite(files["simclrv2"], tmp_path / "renamed.pth", rename)
    with pytest.raises(CheckpointError) as err:
        load_pretrained("simclrv2", bad, width=1)
    msg = str(err.value)
    assert str(bad) in msg and "simclrv2" in msg and "'resnet'" in msg
    assert "missing key(s) ['net.2.blocks.1.net.2.weight']" in msg and "unexpected key(s) ['net.2.blocks.1.net.2.weightx']" in msg


def test_simclrv2_wrong_width_is_refused(files: dict[str, Path]) -> None:
    with pytest.raises(CheckpointError) as err:
        load_pretrained("simclrv2", files["simclrv2"], width=2)
    assert str(files["simclrv2"]) in str(err.value) and "wrong shape" in str(err.value) and "net.0.0.weight: file [64, 3, 7, 7] vs expected [128, 3, 7, 7]" in str(err.value)


def test_simclrv2_missing_head_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    bad = _rewrite(files["simclrv2"], tmp_path / "nohead.pth", lambda p: p.pop("head"))
    with pytest.raises(CheckpointError, match=r"top-level key\(s\) \['head'\] missing"):
        load_pretrained("simclrv2", bad, width=1)


def test_simsiam_wrong_shape_and_prefix_are_refused(files: dict[str, Path], tmp_path: Path) -> None:
    def shrink(p: dict) -> None:
        p["state_dict"]["module.predictor.0.weight"] = torch.zeros(256, 2048)

    bad = _rewrite(files["simsiam"], tmp_path / "shape.pth.tar", shrink)
    with pytest.raises(CheckpointError) as err:
        load_pretrained("simsiam", bad)
    assert str(bad) in str(err.value) and "simsiam" in str(err.value) and "predictor.0.weight: file [256, 2048] vs expected [512, 2048]" in str(err.value)

    def unprefix(p: dict) -> None:
        p["state_dict"] = {k.removeprefix("module."): v for k, v in p["state_dict"].items()}

    bad = _rewrite(files["simsiam"], tmp_path / "prefix.pth.tar", unprefix)
    with pytest.raises(CheckpointError, match="expected every key to start with 'module.'"):
        load_pretrained("simsiam", bad)


def test_torchvision_wrong_variant_and_half_fc_are_refused(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        load_pretrained("torchvision_resnet", files["resnet18"], variant="resnet34")
    assert str(files["resnet18"]) in str(err.value) and "missing key(s) ['layer1.2.conv1.weight'" in str(err.value)
    bad = _rewrite(files["resnet18"], tmp_path / "halffc.pth", lambda p: p.pop("fc.bias"))
    with pytest.raises(CheckpointError, match=r"missing key\(s\) \['fc.bias'\]"):
        load_pretrained("torchvision_resnet", bad, variant="resnet18")


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        load_pretrained("barlow_twins", tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk.pth \(format simsiam.*not a readable torch checkpoint"):
        load_pretrained("simsiam", junk)


def test_training_script_globals_in_the_optimizer_are_tolerated(tmp_path: Path) -> None:
    """A checkpoint whose optimizer state pickles a __main__ helper (e.g. exclude_bias_and_norm) still loads."""
    import __main__

    def exclude_bias_and_norm(p: torch.Tensor) -> bool:
        return p.ndim == 1

    exclude_bias_and_norm.__module__ = "__main__"
    exclude_bias_and_norm.__qualname__ = "exclude_bias_and_norm"
    path = tmp_path / "with_global.pth"
    optimizer = dummy_optimizer()
    optimizer["param_groups"][0]["weight_decay_filter"] = exclude_bias_and_norm
    __main__.exclude_bias_and_norm = exclude_bias_and_norm
    try:
        torch.save({"state_dict": {"module.w": torch.ones(1)}, "optimizer": optimizer}, path)
    finally:
        del __main__.exclude_bias_and_norm
    with pytest.raises(Exception, match="exclude_bias_and_norm"):
        torch.load(path, weights_only=True)
    payload = read_torch_file(path, "test")
    torch.testing.assert_close(payload["state_dict"]["module.w"], torch.ones(1))


# --------------------------------------------------------------------------------------------
# digests and preparation into encoder.pt
# --------------------------------------------------------------------------------------------


def test_prepare_model_round_trip_and_trust_on_first_use(files: dict[str, Path], tmp_path: Path) -> None:
    ckpt = tmp_path / "resnet18.pth"
    ckpt.write_bytes(files["resnet18"].read_bytes())
    cfg = {"source": "torchvision_resnet", "checkpoint": str(ckpt), "variant": "resnet18", "training": {"epochs": 3}}
    info = prepare_model(ckpt, tmp_path / "m" / "encoder.pt", tmp_path / "m" / "source.json", cfg)
    digest = sha256_file(ckpt)
    assert info["sha256"] == digest and not info["sha256_pinned"] and read_record(ckpt) == digest  # recorded on first use
    assert json.loads((tmp_path / "m" / "source.json").read_text())["embedding_dim"] == 512
    enc = load_encoder(tmp_path / "m" / "encoder.pt")
    ref, _, _ = load_pretrained("torchvision_resnet", ckpt, variant="resnet18")
    torch.testing.assert_close(embed(enc), embed(ref))
    # a later use verifies the record: a changed file is refused
    payload = torch.load(ckpt, weights_only=True)
    payload["fc.bias"] += 1
    torch.save(payload, ckpt)
    with pytest.raises(ChecksumError, match="recorded on first use"):
        prepare_model(ckpt, tmp_path / "m2" / "encoder.pt", tmp_path / "m2" / "source.json", cfg)


def test_wrong_pinned_sha256_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    cfg = {"source": "simsiam", "checkpoint": str(files["simsiam"])}
    with pytest.raises(ChecksumError) as err:
        prepare_model(files["simsiam"], tmp_path / "encoder.pt", tmp_path / "source.json", cfg, sha256="0" * 64)
    assert str(files["simsiam"]) in str(err.value) and "pinned" in str(err.value)
    assert not (tmp_path / "encoder.pt").exists()
    info = prepare_model(files["simsiam"], tmp_path / "encoder.pt", tmp_path / "source.json", cfg, sha256=sha256_file(files["simsiam"]).upper())
    assert info["sha256_pinned"] and info["embedding_dim"] == 2048 and info["licence"].startswith("CC BY-NC 4.0")


def test_missing_checkpoint_names_url_and_path(tmp_path: Path) -> None:
    url = "https://example.invalid/checkpoint.pth"
    with pytest.raises(CheckpointError) as err:
        prepare_model(tmp_path / "ckpt.pth", tmp_path / "e.pt", tmp_path / "s.json", {"source": "barlow_twins"}, url=url)
    assert url in str(err.value) and str((tmp_path / "ckpt.pth").resolve()) in str(err.value)


def test_fetch_records_verifies_and_refuses(tmp_path: Path) -> None:
    """Downloads through urllib, on file:// URLs (no network in tests)."""
    src = tmp_path / "remote.bin"
    src.write_bytes(b"weights" * 1000)
    digest = sha256_file(src)
    dest = tmp_path / "resources" / "ckpt.bin"
    assert fetch(src.as_uri(), dest) == digest and dest.read_bytes() == src.read_bytes()
    assert record_path(dest).read_text().split() == [digest, "ckpt.bin"]  # sha256sum format
    # the file changed upstream: a re-download is refused against the record, nothing is written
    dest.unlink()
    src.write_bytes(b"other weights")
    with pytest.raises(ChecksumError, match="recorded on first use"):
        fetch(src.as_uri(), dest)
    assert [p.name for p in dest.parent.iterdir()] == ["ckpt.bin.sha256"]  # nothing half-written, under any name
    # a wrong pinned digest is refused
    other = tmp_path / "other.bin"
    with pytest.raises(ChecksumError, match="pinned"):
        fetch(src.as_uri(), other, pinned="f" * 64)
    assert not other.exists()
    # an unreachable URL names the URL and where to put the file by hand
    url = (tmp_path / "absent.bin").as_uri()
    with pytest.raises(DownloadError) as err:
        fetch(url, tmp_path / "x" / "absent.bin")
    assert url in str(err.value) and str((tmp_path / "x" / "absent.bin").resolve()) in str(err.value) and "by hand" in str(err.value)


def test_verify_file_with_unwritable_record_still_verifies(tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    assert verify_file(f, record=False) == sha256_file(f) and read_record(f) is None
    with pytest.raises(ValueError, match="not a sha256"):
        verify_file(f, pinned="xyz")


# --------------------------------------------------------------------------------------------
# SimCLRv2 TF -> PyTorch conversion, on a synthetic variable dict (no TensorFlow needed)
# --------------------------------------------------------------------------------------------


def _tf_variables(width: int = 1, ema: bool = True) -> dict[str, np.ndarray]:
    """TF variable names of a SimCLRv2 r50 sk0 checkpoint, in creation order; conv N is filled with N."""
    root = "ema_model/" if ema else ""
    resnet, head = simclrv2_shapes(width)
    # TF creation order = the spec's key order: stem, then per block the projection (first block), then the branch
    order = [k for k in resnet if k.endswith(".weight") and len(resnet[k]) == 4]
    variables: dict[str, np.ndarray] = {}
    for n, key in enumerate(order):
        o, i, h, w = resnet[key]
        sfx = "" if n == 0 else f"_{n}"
        kernel = np.full((h, w, i, o), float(n), dtype=np.float32)
        kernel[0, 0, 0, :] = np.arange(o, dtype=np.float32)  # distinguishes the axes (HWIO -> OIHW)
        variables[f"{root}base_model/conv2d{sfx}/kernel"] = kernel
        variables[f"{root}base_model/conv2d{sfx}/kernel/Momentum"] = np.zeros((1,), np.float32)
        for name, value in (("gamma", 1.0 + n), ("beta", -n), ("moving_mean", 0.5 * n), ("moving_variance", 2.0 + n)):
            variables[f"{root}base_model/batch_normalization{sfx}/{name}"] = np.full((o,), value, np.float32)
    c = 2048 * width
    variables[f"{root}head_supervised/linear_layer/dense/kernel"] = np.arange(c * 1000, dtype=np.float32).reshape(c, 1000)
    variables[f"{root}head_supervised/linear_layer/dense/bias"] = np.ones(1000, np.float32)
    for i, (d_in, d_out) in enumerate(((c, c), (c, c), (c, 128))):
        nl = f"{root}head_contrastive/nl_{i}"
        variables[f"{nl}/dense/kernel"] = np.arange(d_in * d_out, dtype=np.float32).reshape(d_in, d_out) / (d_in * d_out)
        variables[f"{nl}/batch_normalization/gamma"] = np.full(d_out, 1.0 + i, np.float32)
        if i < 2:
            variables[f"{nl}/batch_normalization/beta"] = np.full(d_out, 0.1 * (i + 1), np.float32)
        variables[f"{nl}/batch_normalization/moving_mean"] = np.zeros(d_out, np.float32)
        variables[f"{nl}/batch_normalization/moving_variance"] = np.ones(d_out, np.float32)
    variables["global_step"] = np.array(250228)
    return variables


@pytest.fixture(scope="module")
def tf_variables() -> dict[str, np.ndarray]:
    return _tf_variables()


def test_tf_layer_order_follows_creation_order() -> None:
    order = tf_layer_order(1)
    assert len(order) == 53  # 1 stem + 16 blocks x 3 + 4 projections
    assert order[:3] == [("net.0.0.weight", "net.0.1.0"), ("net.1.blocks.0.projection.shortcut.weight", "net.1.blocks.0.projection.bn.0"), ("net.1.blocks.0.net.0.weight", "net.1.blocks.0.net.1.0")]
    assert order[11] == ("net.2.blocks.0.projection.shortcut.weight", "net.2.blocks.0.projection.bn.0")


def test_tf_conversion_maps_every_variable(tf_variables: dict[str, np.ndarray], tmp_path: Path) -> None:
    state = tf_variables_to_state_dicts(tf_variables, width=1, ema=True)
    resnet, head = simclrv2_shapes(1)
    assert list(state["resnet"]) != [] and set(state["resnet"]) == set(resnet) and set(state["head"]) == set(head)
    r = state["resnet"]
    assert float(r["net.0.0.weight"][0, 0, 3, 3]) == 0.0  # conv2d (no suffix) -> stem
    assert float(r["net.1.blocks.0.projection.shortcut.weight"].flatten()[-1]) == 1.0  # conv2d_1 -> first shortcut
    assert float(r["net.1.blocks.0.net.0.weight"].flatten()[-1]) == 2.0  # conv2d_2 -> branch conv 1
    assert float(r["net.2.blocks.0.projection.shortcut.weight"].flatten()[-1]) == 11.0  # numeric, not lexicographic order
    assert float(r["net.4.blocks.2.net.4.weight"].flatten()[-1]) == 52.0
    # HWIO -> OIHW: kernel[0, 0, 0, o] = o lands at weight[o, 0, 0, 0]
    torch.testing.assert_close(r["net.0.0.weight"][:, 0, 0, 0], torch.arange(64, dtype=torch.float32))
    assert float(r["net.1.blocks.0.projection.bn.0.weight"][0]) == 2.0 and float(r["net.1.blocks.0.projection.bn.0.bias"][0]) == -1.0
    assert float(r["net.1.blocks.0.projection.bn.0.running_mean"][0]) == 0.5 and float(r["net.1.blocks.0.projection.bn.0.running_var"][0]) == 3.0
    torch.testing.assert_close(r["fc.weight"], torch.from_numpy(tf_variables["ema_model/head_supervised/linear_layer/dense/kernel"]).t())
    h = state["head"]
    torch.testing.assert_close(h["layers.6.weight"], torch.from_numpy(tf_variables["ema_model/head_contrastive/nl_2/dense/kernel"]).t())
    assert float(h["layers.4.bias"][0]) == pytest.approx(0.2) and float(h["layers.7.weight"][0]) == 3.0
    assert torch.count_nonzero(h["layers.7.bias"]) == 0  # no beta in TF (center=False)
    # the converted dicts load strictly through the real loader
    torch.save(state, tmp_path / "converted.pth")
    enc, _, _ = load_pretrained("simclrv2", tmp_path / "converted.pth", width=1)
    assert embed(enc).shape == (2, 128)


def test_tf_conversion_without_ema_and_errors(tf_variables: dict[str, np.ndarray]) -> None:
    plain = {k.removeprefix("ema_model/"): v for k, v in tf_variables.items()}
    assert set(tf_variables_to_state_dicts(plain, ema=False)["head"]) == set(simclrv2_shapes(1)[1])
    with pytest.raises(CheckpointError, match="expected conv2d and batch_normalization 0..52"):
        tf_variables_to_state_dicts(plain, ema=True)
    missing = dict(tf_variables)
    del missing["ema_model/base_model/batch_normalization_7/moving_variance"]
    with pytest.raises(CheckpointError, match="batch_normalization_7 lacks"):
        tf_variables_to_state_dicts(missing)
    sk = dict(tf_variables)
    sk["ema_model/base_model/selective_kernel/conv2d/kernel"] = np.zeros(1, np.float32)
    with pytest.raises(CheckpointError, match="selective-kernel"):
        tf_variables_to_state_dicts(sk)
    with pytest.raises(CheckpointError, match="does not fit"):
        tf_variables_to_state_dicts(tf_variables, width=2)


def test_convert_tf_checkpoint_writes_a_loadable_file(tf_variables: dict[str, np.ndarray], tmp_path: Path) -> None:
    out = tmp_path / "simclrv2" / "r50_1x_sk0_ema.pth"
    convert_tf_checkpoint(tmp_path / "model.ckpt-250228", out, width=1, reader=lambda prefix: tf_variables)
    payload = torch.load(out, weights_only=True)
    assert set(payload) == {"resnet", "head"} and not list(out.parent.glob("*.tmp*"))


def test_reading_tf_needs_the_tf_extra(tmp_path: Path) -> None:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pip install -e '\.\[tf\]'"):
            read_tf_variables(tmp_path / "model.ckpt-250228")
    else:
        skip_optional("TensorFlow is installed (this test checks the message without it)")
