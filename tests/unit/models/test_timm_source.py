"""Model source ``timm``: checkpoint files in the DINO, DINO full-checkpoint, DINOv2 and timm layouts, loaded
through the real loader and checked against a plain re-implementation of the published models' forward pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vit_layouts import (
    HEAD,
    TIMM_KW,
    TINY,
    dino_head_forward,
    dino_vit_shapes,
    dinov2_vit_shapes,
    random_state,
    resnet_shapes,
    torchvision_backbone,
    vit_forward,
    write_dino_full,
)
from xai_ssl.models.checkpoints import CheckpointError
from xai_ssl.models.dino_head import head_spec
from xai_ssl.models.encoder import IMAGENET_MEAN, IMAGENET_STD
from xai_ssl.models.registry import load_encoder, load_pretrained, save_encoder
from xai_ssl.models.vit import VitEncoder

P, HEADS, DEPTH, SIDE = TINY["patch"], TINY["heads"], TINY["depth"], TINY["side"]
VIT = "vit_small_patch16_224.dino"  # the DINO ViT-S/16 architecture; TIMM_KW shrinks it (dims, depth, patch 8)
DINOV2 = "vit_small_patch14_dinov2.lvd142m"
DINOV2_REG = "vit_small_patch14_reg4_dinov2.lvd142m"
RESNET_KW = {"layers": [1, 1, 1, 1], "base_width": 16}  # timm's resnet50 cut like vit_layouts.resnet_shapes
X = torch.rand(3, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(0))


def vit_kwargs(**extra: object) -> dict:
    return {"model_kwargs": dict(TIMM_KW), "input_size": SIDE, **extra}


def normalised(x: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One file per layout, with the states written into it."""
    d = tmp_path_factory.mktemp("vit_ckpt")
    out: dict = {}
    vit = random_state(dino_vit_shapes(**{k: TINY[k] for k in ("dim", "depth", "patch", "side", "mlp")}), seed=1)
    torch.save(vit, d / "dino_deitsmall16_pretrain.pth")
    out["dino_vit"] = (d / "dino_deitsmall16_pretrain.pth", vit)
    out["dino_full_vit"] = (d / "dino_deitsmall16_pretrain_full_checkpoint.pth",
                            write_dino_full(d / "dino_deitsmall16_pretrain_full_checkpoint.pth", dino_vit_shapes(), TINY["dim"], seed=2, teacher_ddp=False))
    rn = random_state(resnet_shapes(), seed=3)
    torch.save(rn, d / "dino_resnet50_pretrain.pth")
    out["dino_resnet"] = (d / "dino_resnet50_pretrain.pth", rn)
    out["dino_full_resnet"] = (d / "dino_resnet50_full_checkpoint.pth",
                               write_dino_full(d / "dino_resnet50_full_checkpoint.pth", resnet_shapes(), 2048, seed=4, teacher_ddp=True, bn_head=True))
    v2 = random_state(dinov2_vit_shapes(), seed=5)
    torch.save(v2, d / "dinov2_vits14_pretrain.pth")
    out["dinov2"] = (d / "dinov2_vits14_pretrain.pth", v2)
    v2r = random_state(dinov2_vit_shapes(registers=4), seed=6)
    torch.save(v2r, d / "dinov2_vits14_reg4_pretrain.pth")
    out["dinov2_reg"] = (d / "dinov2_vits14_reg4_pretrain.pth", v2r)
    import timm

    torch.manual_seed(7)
    net = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=10, img_size=SIDE, **TIMM_KW).eval()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(d / "model.safetensors"))
    out["timm_safetensors"] = (d / "model.safetensors", net)
    return out


# --------------------------------------------------------------------------------------------
# each layout loads and computes the published model's embedding
# --------------------------------------------------------------------------------------------


def test_dino_vit_pretrain_file(files: dict) -> None:
    path, state = files["dino_vit"]
    enc, arch, params = load_pretrained("timm", path, arch=VIT, **vit_kwargs())
    assert isinstance(enc, VitEncoder) and arch == "timm" and enc.source_facts["layout"] == "timm"
    torch.testing.assert_close(enc.input_mean.flatten(), torch.tensor(IMAGENET_MEAN))  # timm's .dino cfg
    torch.testing.assert_close(enc.input_std.flatten(), torch.tensor(IMAGENET_STD))
    with torch.no_grad():
        z = enc(X)
        ref = vit_forward(normalised(X), state, P, HEADS, DEPTH)  # [B, 1 + 16, C]
    assert z.shape == (3, TINY["dim"])
    torch.testing.assert_close(z, ref[:, 0], atol=2e-5, rtol=1e-4)  # class token after the final norm
    pooled, _, _ = load_pretrained("timm", path, arch=VIT, embedding="pooled", **vit_kwargs())
    with torch.no_grad():
        torch.testing.assert_close(pooled(X), ref[:, 1:].mean(1), atol=2e-5, rtol=1e-4)
    assert params["readout"] == "cls" and params["num_classes"] == 0 and params["dino_head"] is None


def test_normalisation_from_timm_config_and_override(files: dict) -> None:
    path, _ = files["dino_vit"]
    untagged, _, _ = load_pretrained("timm", path, arch="vit_small_patch16_224", **vit_kwargs())
    torch.testing.assert_close(untagged.input_mean.flatten(), torch.tensor([0.5, 0.5, 0.5]))  # augreg default tag: Inception
    mine, _, params = load_pretrained("timm", path, arch=VIT, mean=[0.1, 0.2, 0.3], std=[1.0, 2.0, 3.0], **vit_kwargs())
    torch.testing.assert_close(mine.input_std.flatten(), torch.tensor([1.0, 2.0, 3.0]))
    assert params["mean"] == [0.1, 0.2, 0.3]


def test_dino_full_checkpoint_teacher_default_student_and_head(files: dict) -> None:
    path, parts = files["dino_full_vit"]
    teacher, _, _ = load_pretrained("timm", path, arch=VIT, **vit_kwargs())
    student, _, _ = load_pretrained("timm", path, arch=VIT, network="student", **vit_kwargs())
    head, _, params = load_pretrained("timm", path, arch=VIT, embedding="head", **vit_kwargs())
    assert teacher.source_facts["layout"] == "dino_full" and teacher.source_facts["network"] == "teacher"
    xn = normalised(X)
    with torch.no_grad():
        ref_t = vit_forward(xn, parts["teacher"][0], P, HEADS, DEPTH)[:, 0]
        ref_s = vit_forward(xn, parts["student"][0], P, HEADS, DEPTH)[:, 0]
        torch.testing.assert_close(teacher(X), ref_t, atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(student(X), ref_s, atol=2e-5, rtol=1e-4)
        assert (ref_t - ref_s).abs().max() > 0.1  # the two networks differ: the test can tell them apart
        z = head(X)
        torch.testing.assert_close(z, dino_head_forward(ref_t, parts["teacher"][1]), atol=2e-5, rtol=1e-4)
    assert z.shape == (3, HEAD["out"]) and params["readout"] == "cls"
    assert params["dino_head"] == head_spec(parts["teacher"][1])
    assert "DINO's projection head" in head.source_facts["embedding"]


def test_dino_resnet50_pretrain_and_full_checkpoint(files: dict) -> None:
    path, state = files["dino_resnet"]
    enc, _, params = load_pretrained("timm", path, arch="resnet50", model_kwargs=RESNET_KW)
    ref_net = torchvision_backbone(state)  # torchvision's own ResNet: an independent implementation
    with torch.no_grad():
        torch.testing.assert_close(enc(X), ref_net(normalised(X)), atol=2e-5, rtol=1e-4)
        assert enc.features(X).shape == (3, 2048, 1, 1)
    assert params["readout"] == "pooled" and enc.source_facts["layout"] == "timm"
    full, parts = files["dino_full_resnet"]  # teacher DDP-wrapped (batch norm), head with BatchNorm1d
    enc_t, _, _ = load_pretrained("timm", full, arch="resnet50", model_kwargs=RESNET_KW)
    enc_h, _, params_h = load_pretrained("timm", full, arch="resnet50", embedding="head", model_kwargs=RESNET_KW)
    with torch.no_grad():
        pooled_ref = torchvision_backbone(parts["teacher"][0])(normalised(X))
        torch.testing.assert_close(enc_t(X), pooled_ref, atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(enc_h(X), dino_head_forward(pooled_ref, parts["teacher"][1]), atol=2e-5, rtol=1e-4)
    assert ["bn", HEAD["hidden"]] in params_h["dino_head"]


@pytest.mark.parametrize(("key", "arch", "registers"), [("dinov2", DINOV2, 0), ("dinov2_reg", DINOV2_REG, 4)])
def test_dinov2_layout(files: dict, key: str, arch: str, registers: int) -> None:
    path, state = files[key]
    enc, _, _ = load_pretrained("timm", path, arch=arch, **vit_kwargs())
    assert enc.source_facts["layout"] == "dinov2" and enc.num_prefix == 1 + registers
    with torch.no_grad():
        ref = vit_forward(normalised(X), state, P, HEADS, DEPTH)  # DINOv2's own forward (layer scale, registers)
        torch.testing.assert_close(enc(X), ref[:, 0], atol=2e-5, rtol=1e-4)
        pooled, _, _ = load_pretrained("timm", path, arch=arch, embedding="pooled", **vit_kwargs())
        torch.testing.assert_close(pooled(X), ref[:, 1 + registers:].mean(1), atol=2e-5, rtol=1e-4)
        assert enc.features(X).shape == (3, TINY["dim"], 4, 4)


def test_timm_safetensors_file(files: dict) -> None:
    path, net = files["timm_safetensors"]
    cls, _, _ = load_pretrained("timm", path, arch="vit_small_patch16_224", **vit_kwargs())
    head, _, params = load_pretrained("timm", path, arch="vit_small_patch16_224", embedding="head", **vit_kwargs())
    assert params["num_classes"] == 10 and params["readout"] == "classifier"
    xn = normalised(X, (0.5,) * 3, (0.5,) * 3)
    with torch.no_grad():
        torch.testing.assert_close(cls(X), net.forward_head(net.forward_features(xn), pre_logits=True), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(head(X), net(xn), atol=1e-5, rtol=1e-5)  # timm's own forward: the logits
        assert head(X).shape == (3, 10)


def test_layout_can_be_forced_and_wrong_layout_is_refused(files: dict) -> None:
    path, _ = files["dino_vit"]
    with pytest.raises(CheckpointError, match=r"dinov2.*no 'mask_token'"):
        load_pretrained("timm", path, arch=VIT, layout="dinov2", **vit_kwargs())
    with pytest.raises(CheckpointError, match=r"dino_full.*'teacher'"):
        load_pretrained("timm", path, arch=VIT, layout="dino_full", **vit_kwargs())


# --------------------------------------------------------------------------------------------
# strict loading: renamed keys, wrong shapes, missing heads
# --------------------------------------------------------------------------------------------


def _edited(files: dict, key: str, tmp_path: Path, edit) -> Path:
    path, _ = files[key]
    payload = torch.load(path, weights_only=False)
    edit(payload)
    out = tmp_path / path.name
    torch.save(payload, out)
    return out


def test_renamed_key_is_refused_with_a_clear_message(files: dict, tmp_path: Path) -> None:
    def rename(s: dict) -> None:
        s["blocks.1.attn.qkv.w"] = s.pop("blocks.1.attn.qkv.weight")

    path = _edited(files, "dino_vit", tmp_path, rename)
    with pytest.raises(CheckpointError) as err:
        load_pretrained("timm", path, arch=VIT, **vit_kwargs())
    msg = str(err.value)
    assert str(path) in msg and "timm (state dict in timm's layout)" in msg
    assert "missing key(s) ['blocks.1.attn.qkv.weight']" in msg and "unexpected key(s) ['blocks.1.attn.qkv.w']" in msg


def test_wrong_shape_is_refused(files: dict, tmp_path: Path) -> None:
    def shrink(p: dict) -> None:
        p["teacher"]["backbone.pos_embed"] = p["teacher"]["backbone.pos_embed"][:, :10]

    path = _edited(files, "dino_full_vit", tmp_path, shrink)
    with pytest.raises(CheckpointError, match=r"dino_full.*backbone.*wrong shape.*pos_embed: file \[1, 10, 32\] vs expected \[1, 17, 32\]"):
        load_pretrained("timm", path, arch=VIT, **vit_kwargs())


def test_dinov2_renamed_layer_scale_and_dino_head_key_are_refused(files: dict, tmp_path: Path) -> None:
    def rename_ls(s: dict) -> None:
        s["blocks.0.ls1.scale"] = s.pop("blocks.0.ls1.gamma")

    path = _edited(files, "dinov2", tmp_path, rename_ls)
    with pytest.raises(CheckpointError, match=r"missing key\(s\) \['blocks.0.ls1.gamma'\]"):
        load_pretrained("timm", path, arch=DINOV2, **vit_kwargs())

    def rename_head(p: dict) -> None:
        p["teacher"]["head.last_layer.weight"] = p["teacher"].pop("head.last_layer.weight_v")

    path = _edited(files, "dino_full_vit", tmp_path, rename_head)
    with pytest.raises(CheckpointError, match=r"not a DINO head.*last_layer.weight_v"):
        load_pretrained("timm", path, arch=VIT, embedding="head", **vit_kwargs())


def test_embedding_choices_that_the_file_cannot_serve_are_refused(files: dict) -> None:
    with pytest.raises(CheckpointError, match=r"embedding 'head'.*no projection head"):
        load_pretrained("timm", files["dino_vit"][0], arch=VIT, embedding="head", **vit_kwargs())
    with pytest.raises(CheckpointError, match=r"embedding 'cls' needs a class token"):
        load_pretrained("timm", files["dino_resnet"][0], arch="resnet50", embedding="cls", model_kwargs=RESNET_KW)


def test_argparse_namespace_is_read_but_other_objects_are_not(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"teacher": {"backbone.x": torch.ones(1)}, "args": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_pretrained("timm", tmp_path / "evil.pth", arch=VIT, **vit_kwargs())


# --------------------------------------------------------------------------------------------
# the prepared encoder: saved and rebuilt from its arch params
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "arch", "extra"), [
    ("dino_full_vit", VIT, {"embedding": "head"}),
    ("dinov2_reg", DINOV2_REG, {}),
    ("dino_full_resnet", "resnet50", {"embedding": "head"}),
])
def test_prepared_encoder_round_trip(files: dict, tmp_path: Path, key: str, arch: str, extra: dict) -> None:
    import json

    kw = vit_kwargs(**extra) if arch != "resnet50" else {"model_kwargs": RESNET_KW, **extra}
    enc, name, params = load_pretrained("timm", files[key][0], arch=arch, **kw)
    json.dumps(params)  # recorded in source.json and encoder.pt
    save_encoder(enc, tmp_path / "encoder.pt", name, params)
    back = load_encoder(tmp_path / "encoder.pt")
    assert type(back) is type(enc)
    with torch.no_grad():
        torch.testing.assert_close(back(X), enc(X), atol=0, rtol=0)


def test_head_spec_reads_the_structure_from_the_keys() -> None:
    from vit_layouts import dino_head_shapes

    spec = head_spec(random_state(dino_head_shapes(8, 12, 4, 6, nlayers=3, bn=True), 0))
    assert spec == [["linear", 8, 12], ["bn", 12], ["gelu"], ["linear", 12, 12], ["bn", 12], ["gelu"], ["linear", 12, 4], ["last_layer", 4, 6]]
    assert head_spec(random_state(dino_head_shapes(8, 12, 4, 6, nlayers=2), 0)) == [["linear", 8, 12], ["gelu"], ["linear", 12, 4], ["last_layer", 4, 6]]


def test_unknown_or_unsupported_timm_models_are_refused() -> None:
    from xai_ssl.models.timm_source import check_arch, model_family

    with pytest.raises(ValueError, match="timm has no model 'vit_smol_patch16_224'"):
        check_arch("vit_smol_patch16_224")
    with pytest.raises(ValueError, match="not supported"):
        model_family("swin_tiny_patch4_window7_224")  # NHWC feature maps
    assert model_family("resnet50") == "cnn" and model_family(VIT) == "vit"
