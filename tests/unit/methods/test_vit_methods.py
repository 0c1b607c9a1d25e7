"""Methods on Vision Transformers: the feature map contract, Grad-CAM, the attention maps and rollout against
hand computations from the state dict, feature visualisation in blocks, randomisation layers, and the refusal
of methods that are not defined for a model (guided backpropagation on GELU networks, attention on CNNs)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vit_layouts import TIMM_KW, TINY, attention_probs, block_forward, dino_vit_shapes, dinov2_vit_shapes, random_state, vit_forward
from workflow_runner import TINY_CONFIG
from xai_ssl.config import ConfigError, validate_config
from xai_ssl.methods import MethodContext, get_method
from xai_ssl.methods.feature_visualisation import default_up_until, truncated_trunk
from xai_ssl.metrics.randomisation import randomisation_layers, randomised_encoder
from xai_ssl.models.encoder import IMAGENET_MEAN, IMAGENET_STD
from xai_ssl.models.registry import load_pretrained

P, HEADS, DEPTH, SIDE, DIM = TINY["patch"], TINY["heads"], TINY["depth"], TINY["side"], TINY["dim"]
G = SIDE // P  # patch grid side
CTX = MethodContext(torch.device("cpu"), 8, seeds=[1, 2, 3])
X1 = torch.rand(3, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(10))
X2 = torch.rand(3, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(11))


def xn(x: torch.Tensor) -> torch.Tensor:
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def vit(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """(encoder, state) of a tiny DINO ViT loaded through the real loader."""
    d = tmp_path_factory.mktemp("vit")
    state = random_state(dino_vit_shapes(), seed=21)
    torch.save(state, d / "dino.pth")
    enc, _, _ = load_pretrained("timm", d / "dino.pth", arch="vit_small_patch16_224.dino", model_kwargs=TIMM_KW, input_size=SIDE)
    return enc, state


@pytest.fixture(scope="module")
def vit_reg(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """(encoder, state) of a tiny DINOv2 ViT with 4 registers."""
    d = tmp_path_factory.mktemp("vitreg")
    state = random_state(dinov2_vit_shapes(registers=4), seed=22)
    torch.save(state, d / "dinov2.pth")
    enc, _, _ = load_pretrained("timm", d / "dinov2.pth", arch="vit_small_patch14_reg4_dinov2.lvd142m", model_kwargs=TIMM_KW, input_size=SIDE)
    return enc, state


def grid_of(tokens: torch.Tensor, prefix: int) -> torch.Tensor:
    """Hand reshape: patch tokens [B, N, C] (row-major) -> [B, C, G, G]."""
    patches = tokens[:, prefix:]
    out = torch.empty(patches.shape[0], patches.shape[2], G, G)
    for r in range(G):
        for c in range(G):
            out[:, :, r, c] = patches[:, r * G + c]
    return out


# --------------------------------------------------------------------------------------------
# the feature map contract
# --------------------------------------------------------------------------------------------


def test_feature_map_is_the_patch_grid_entering_the_last_block(vit: tuple) -> None:
    enc, state = vit
    with torch.no_grad():
        a = enc.features(X1)
        ref = vit_forward(xn(X1), state, P, HEADS, DEPTH, upto=DEPTH - 1)  # tokens entering the last block
    assert a.shape == (3, DIM, G, G)
    torch.testing.assert_close(a, grid_of(ref, 1), atol=2e-5, rtol=1e-4)


def test_embedding_from_the_feature_map_equals_the_forward_pass(vit: tuple) -> None:
    enc, _ = vit
    with torch.no_grad():
        a = enc.features(X1)
        z = enc(X1)
        torch.testing.assert_close(enc.embed_features(a), z, atol=0, rtol=0)
        torch.testing.assert_close(enc.embed_features(a.detach().requires_grad_(False)), z, atol=0, rtol=0)
        with pytest.raises(ValueError, match="was not returned by this encoder's features"):
            enc.embed_features(a.clone())  # a grid without the image's class token


def test_trunk_output_keeps_the_gradient_through_the_class_token(vit: tuple) -> None:
    """LFFI embeds ``trunk(xn)``: its gradient reaches the image through the patch AND the class tokens."""
    enc, _ = vit
    x = xn(X1).requires_grad_(True)
    (g_trunk,) = torch.autograd.grad(enc.embed_features(enc.trunk(x)).sum(), [x])
    (g_full,) = torch.autograd.grad(enc.embed_tokens(enc.trunk.tokens_before_last(x)[0]).sum(), [x])
    torch.testing.assert_close(g_trunk, g_full, atol=1e-6, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# CAM methods on the patch grid
# --------------------------------------------------------------------------------------------


def test_gradcam_equals_hand_gradient_with_respect_to_the_patch_tokens(vit: tuple) -> None:
    enc, state = vit
    m1, m2 = get_method("gradcam").fn(enc, X1, X2, {}, CTX)
    assert m1.shape == (3, G, G) and m2.shape == (3, G, G)
    refs = []
    for x in (X1, X2):
        t = vit_forward(xn(x), state, P, HEADS, DEPTH, upto=DEPTH - 1).detach()
        refs.append((t[:, :1], t[:, 1:].clone().requires_grad_(True)))
    z = [F.layer_norm(block_forward(torch.cat([c, p], 1), state, f"blocks.{DEPTH - 1}", HEADS), (DIM,), state["norm.weight"], state["norm.bias"], eps=1e-6)[:, 0] for c, p in refs]
    g1, g2 = torch.autograd.grad(F.cosine_similarity(z[0], z[1], dim=-1, eps=1e-8).sum(), [refs[0][1], refs[1][1]])
    for m, (_, p), g in ((m1, refs[0], g1), (m2, refs[1], g2)):
        hand = grid_of((p.detach() * g.clamp(min=0)), 0).sum(1)
        torch.testing.assert_close(m, hand, atol=1e-5, rtol=1e-4)
    assert float(m1.abs().sum()) > 0  # the class token's gradient reaches the patch tokens


@pytest.mark.parametrize("name", ["interaction_cam_mean", "interaction_cam_max", "interaction_cam_sa", "embedded_gradcam", "vdsn"])
def test_other_cam_methods_give_patch_grid_maps(vit: tuple, name: str) -> None:
    from xai_ssl.methods.corpus import Corpus

    enc, _ = vit
    spec = get_method(name)
    params = spec.resolve_params({"corpus_size": 4} if spec.needs_corpus else {}, SIDE)
    imgs = (torch.rand(4, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(3)) * 255).to(torch.uint8)
    corpus = Corpus(imgs, [f"c{i}" for i in range(4)], ["a"] * 4, "train", 0, {}) if spec.needs_corpus else None
    ctx = MethodContext(torch.device("cpu"), 8, seeds=[1, 2, 3], image_ids=["i0", "i1", "i2"], corpus=corpus)
    m1, m2 = spec.fn(enc, X1, X2, params, ctx)
    assert m1.shape == (3, G, G) and torch.isfinite(m1).all()
    assert m2 is None or m2.shape == (3, G, G)


# --------------------------------------------------------------------------------------------
# attention maps and rollout
# --------------------------------------------------------------------------------------------


def test_vit_attention_equals_hand_softmax_of_q_and_k(vit: tuple) -> None:
    enc, state = vit
    ctx = MethodContext(torch.device("cpu"), 8, seeds=[1, 2, 3])
    m1, m2 = get_method("vit_attention").fn(enc, X1, X2, {}, ctx)
    t = vit_forward(xn(X1), state, P, HEADS, DEPTH, upto=DEPTH - 1)
    # q, k of the last block by hand: LN1, the qkv projection, split into heads
    h = F.layer_norm(t, (DIM,), state[f"blocks.{DEPTH - 1}.norm1.weight"], state[f"blocks.{DEPTH - 1}.norm1.bias"], eps=1e-6)
    qkv = h @ state[f"blocks.{DEPTH - 1}.attn.qkv.weight"].t() + state[f"blocks.{DEPTH - 1}.attn.qkv.bias"]
    d = DIM // HEADS
    heads = torch.empty(3, HEADS, G, G)
    for b in range(3):
        for hd in range(HEADS):
            q = qkv[b, 0, hd * d:(hd + 1) * d]  # the class token's query
            keys = qkv[b, :, DIM + hd * d:DIM + (hd + 1) * d]  # every token's key [T, d]
            scores = keys @ q / d ** 0.5
            probs = torch.exp(scores - scores.max()) / torch.exp(scores - scores.max()).sum()  # softmax over the keys
            heads[b, hd] = probs[1:].view(G, G)  # patch keys, row-major
    assert m2 is None and m1.shape == (3, G, G)
    torch.testing.assert_close(ctx.extras["heads"], heads, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(m1, heads.mean(1), atol=1e-5, rtol=1e-4)
    assert float(heads.std()) > 1e-3  # not a uniform attention: the check has teeth


def test_vit_attention_drops_register_columns(vit_reg: tuple) -> None:
    enc, state = vit_reg
    ctx = MethodContext(torch.device("cpu"), 8)
    m1, _ = get_method("vit_attention").fn(enc, X1, X2, {}, ctx)
    att = attention_probs(vit_forward(xn(X1), state, P, HEADS, DEPTH, upto=DEPTH - 1), state, f"blocks.{DEPTH - 1}", HEADS)
    ref = att[:, :, 0, 5:].reshape(3, HEADS, G, G)  # class token, 4 registers, then the patches
    torch.testing.assert_close(ctx.extras["heads"], ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(m1, ref.mean(1), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("fusion", ["mean", "max"])
def test_attention_rollout_equals_hand_product(vit: tuple, fusion: str) -> None:
    enc, state = vit
    spec = get_method("attention_rollout")
    m1, m2 = spec.fn(enc, X1, X2, spec.resolve_params({"head_fusion": fusion}, SIDE), CTX)
    x = vit_forward(xn(X1), state, P, HEADS, DEPTH, upto=0)
    per_block = []
    for i in range(DEPTH):
        per_block.append(attention_probs(x, state, f"blocks.{i}", HEADS).detach().double().numpy())
        x = block_forward(x, state, f"blocks.{i}", HEADS)
    for b in range(3):
        r = np.eye(per_block[0].shape[-1])
        for att in per_block:  # Abnar & Zuidema: A = 0.5 W + 0.5 I, rows renormalised, R = A_L ... A_1
            w = att[b].mean(0) if fusion == "mean" else att[b].max(0)
            a = 0.5 * w + 0.5 * np.eye(w.shape[0])
            a = a / a.sum(1, keepdims=True)
            r = a @ r
        np.testing.assert_allclose(m1[b].double().numpy(), r[0, 1:].reshape(G, G), atol=1e-5, rtol=1e-4)
    assert m2 is None


# --------------------------------------------------------------------------------------------
# methods not defined for a model: refused at validation (and at run time)
# --------------------------------------------------------------------------------------------


def vit_config(methods: dict) -> dict:
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["models"]["tiny_vit"] = {"source": "timm", "arch": "vit_small_patch16_224.dino", "checkpoint": "resources/vit.pth",
                                 "model_kwargs": dict(TIMM_KW), "input_size": SIDE}
    cfg["methods"].update(methods)
    cfg["run"]["models"] = ["tiny_simclr", "tiny_vit"]
    cfg["run"]["methods"] = ["gradcam", *methods]
    return cfg


@pytest.mark.parametrize("name", ["input_x_gradient_g", "smooth_grad_g", "avg_transforms_g", "avg_transforms_gn"])
def test_guided_methods_are_refused_for_a_gelu_model(name: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_config(vit_config({name: {}}), check_paths=False)
    msg = str(err.value)
    assert f"method {name!r} is not defined for model 'tiny_vit'" in msg and "GELU" in msg and "guided backpropagation" in msg
    assert f"methods.{name}.models: ['tiny_simclr']" in msg  # how to leave the model out
    cfg = vit_config({name: {"models": ["tiny_simclr"]}})
    validate_config(cfg, check_paths=False)  # left out: accepted
    guided_param = vit_config({"input_x_gradient": {"params": {"guided": True}}})
    with pytest.raises(ConfigError, match="'input_x_gradient' is not defined for model 'tiny_vit'"):
        validate_config(guided_param, check_paths=False)  # the parameter decides, not the name


def test_guided_backprop_is_refused_at_run_time_too(vit: tuple) -> None:
    enc, _ = vit
    with pytest.raises(ValueError, match="guided backpropagation is not defined.*GELU"):
        get_method("input_x_gradient_g").fn(enc, X1, X2, {"guided": True}, CTX)
    m1, _ = get_method("input_x_gradient").fn(enc, X1, X2, {"guided": False}, CTX)
    assert m1.shape == (3, SIDE, SIDE)


@pytest.mark.parametrize("name", ["vit_attention", "attention_rollout"])
def test_attention_methods_are_refused_for_a_cnn(name: str) -> None:
    cfg = vit_config({name: {}})
    with pytest.raises(ConfigError, match=rf"method {name!r} is not defined for model 'tiny_simclr': .*is a CNN"):
        validate_config(cfg, check_paths=False)
    cfg["methods"][name]["models"] = ["tiny_vit"]
    validate_config(cfg, check_paths=False)
    from xai_ssl.models.small_resnet import build_small_resnet

    with pytest.raises(ValueError, match="defined for Vision Transformers"):
        get_method(name).fn(build_small_resnet(width=4).eval(), X1, X2, get_method(name).resolve_params({}, SIDE), CTX)


def test_image_size_must_be_a_multiple_of_the_patch() -> None:
    cfg = vit_config({})
    cfg["datasets"]["tiny"]["image_size"] = 36
    with pytest.raises(ConfigError, match=r"'datasets.tiny.image_size': 36 px is not a multiple of the patch size 8 of model 'tiny_vit'.*32 or 40"):
        validate_config(cfg, check_paths=False)


def test_method_models_must_name_models() -> None:
    cfg = vit_config({"vit_attention": {"models": ["tiny_vti"]}})
    with pytest.raises(ConfigError, match=r"'methods.vit_attention.models': 'tiny_vti' is not a model"):
        validate_config(cfg, check_paths=False)


# --------------------------------------------------------------------------------------------
# feature visualisation counts blocks; randomisation layers
# --------------------------------------------------------------------------------------------


def test_feature_visualisation_counts_blocks(vit: tuple) -> None:
    enc, state = vit
    assert default_up_until(enc) == max(1, DEPTH // 4)
    with torch.no_grad():
        for k in (1, 2):
            torch.testing.assert_close(truncated_trunk(enc, k)(xn(X1)), grid_of(vit_forward(xn(X1), state, P, HEADS, DEPTH, upto=k), 1), atol=2e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="up_until counts blocks.*1..2"):
        truncated_trunk(enc, 3)
    spec = get_method("feature_visualisation")
    params = spec.resolve_params({"octaves": 2, "iterations": 2, "min_octave_size": 8}, SIDE)
    img, detail = spec.fn(enc, X1, X2, params, CTX)  # octave 23 px: padded to the patch by timm
    assert img.shape == detail.shape == X1.shape and torch.isfinite(img).all()


def test_randomisation_layers_of_a_vit(vit: tuple) -> None:
    enc, _ = vit
    names = [n for n, _ in randomisation_layers(enc)]
    assert names == ["head", "trunk.model.norm", "trunk.model.blocks.1", "trunk.model.blocks.0", "trunk.model.patch_embed"]
    rnd = randomised_encoder(enc, 3, seed=0)  # head, final norm, last block
    before, after = enc.vit.state_dict(), rnd.vit.state_dict()
    assert not torch.equal(before["blocks.1.attn.qkv.weight"], after["blocks.1.attn.qkv.weight"])
    assert torch.equal(before["blocks.0.attn.qkv.weight"], after["blocks.0.attn.qkv.weight"])
    with torch.no_grad():
        assert not torch.allclose(rnd(X1), enc(X1))


def test_attention_heads_are_stored_beside_the_map(vit: tuple, tmp_path: Path) -> None:
    """explain_pairs collects ctx.extras over chunks (in image order); the writer stores them as extra/<name>."""
    from xai_ssl.engine import explain_pairs
    from xai_ssl.io.maps_file import load_attributions, load_extra, save_attributions
    from xai_ssl.io.pairs_file import Pairs

    enc, _ = vit
    x = torch.cat([X1, X2])  # 6 images, chunks of 4 + 2
    pairs = Pairs([f"i{k}" for k in range(6)], np.arange(6), x, x.flip(0), x, None)
    extras: dict = {}
    spec = get_method("vit_attention")
    m1, m2 = explain_pairs(enc, pairs, spec, {}, 0, torch.device("cpu"), 4, progress=False, extras=extras)
    assert m2 is None and tuple(extras["heads"].shape) == (6, HEADS, G, G)
    torch.testing.assert_close(extras["heads"].mean(1), m1)
    save_attributions(tmp_path / "a.h5", pairs.image_ids, pairs.indices, m1, m2, {"method": "vit_attention"}, extras=extras)
    torch.testing.assert_close(load_extra(tmp_path / "a.h5", "heads"), extras["heads"])
    assert load_attributions(tmp_path / "a.h5").map1.shape == (6, G, G)
