"""Time estimates: every method's declared passes (MethodSpec.passes) against the passes its code really makes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import CPU, images, tiny_encoder
from vit_layouts import TIMM_KW, dino_vit_shapes, random_state
from xai_ssl.cost import PassCounter, PassTimes, estimate, measure_pass_times
from xai_ssl.engine import explain_batches
from xai_ssl.methods import METHOD_REGISTRY, Passes, get_method
from xai_ssl.methods.corpus import Corpus
from xai_ssl.models.registry import load_pretrained
from xai_ssl.models.traits import encoder_traits

SIZE = 32
# small parameters for every registered method (the counts are checked, not the maps)
PARAMS = {
    "conditional_occlusion": {"window": 16, "stride": 8},
    "context_agnostic_occlusion": {"window": 16, "stride": 8},
    "pairwise_occlusion": {"n_erases": 5},
    "pixel_invariance": {"n_augmentations": 10, "epochs": 1},
    "smooth_grad": {"n_samples": 3},
    "smooth_grad_g": {"n_samples": 3},
    "relax": {"n_masks": 10},
    "lffi_ig": {"n_steps": 4},
    "lffi_gradshap": {"n_samples": 3},
    "cocoa_rise": {"corpus_size": 4, "foil_size": 3, "n_masks": 5},
    "cocoa_ig": {"corpus_size": 4, "foil": "other_class", "foil_size": 3, "n_steps": 4},  # the other foil: no noise images to embed
    "cocoa_gradshap": {"corpus_size": 4, "foil": "noise", "foil_size": 3, "n_samples": 3},
    "embedded_gradcam": {"corpus_size": 5, "k": 2},
    "vdsn": {"corpus_size": 5},
    "feature_visualisation": {"octaves": 3, "iterations": 2, "min_octave_size": 8},
}


def test_every_method_declares_its_passes() -> None:
    missing = sorted(name for name, spec in METHOD_REGISTRY.items() if spec.passes is None)
    assert not missing, f"methods without a passes estimator (register_method(..., passes=...)): {missing}"


@pytest.mark.parametrize("name", sorted(METHOD_REGISTRY))
def test_declared_passes_equal_the_counted_passes(name: str, tmp_path: Path) -> None:
    """Two images in one call: counted = 2 × per-pair passes + the once-per-job passes."""
    spec = get_method(name)
    params = spec.resolve_params(PARAMS.get(name, {}), SIZE)
    enc = tiny_encoder(fit_size=SIZE)
    if spec.not_defined_for(encoder_traits(enc), params):  # the attention methods: a tiny ViT (patch 8, side 32)
        torch.save(random_state(dino_vit_shapes(), seed=5), tmp_path / "vit.pth")
        enc, _, _ = load_pretrained("timm", tmp_path / "vit.pth", arch="vit_small_patch16_224.dino", model_kwargs=TIMM_KW, input_size=SIZE)
    x = images(4, SIZE, seed=3).to(next(enc.parameters()).dtype)
    corpus = None
    if spec.needs_corpus:
        n = int(params["corpus_size"])  # labelled, the explained ids "a" and "b" among them (the other_class foil)
        corpus = Corpus.from_images(images(n, SIZE, seed=9), ids=["a", "b"] + [f"c{i}" for i in range(n - 2)], labels=["cat", "dog"] * (n // 2) + ["cat"] * (n % 2))
    with PassCounter(enc, SIZE) as counted:
        explain_batches(enc, spec, x[:2], x[2:], params, [11, 12], ["a", "b"], CPU, 4, corpus)
    declared = spec.passes(params, SIZE)
    assert counted.forwards == pytest.approx(2 * declared.forwards + declared.setup_forwards, rel=1e-9), name
    assert counted.backwards == pytest.approx(2 * declared.backwards + declared.setup_backwards, rel=1e-9), name


def test_estimate_is_passes_times_measured_seconds() -> None:
    spec = get_method("smooth_grad")
    params = spec.resolve_params({"n_samples": 7}, SIZE)
    times = PassTimes(forward_s=0.5, backward_s=2.0, image_size=SIZE, device="cpu", batch_size=4)
    est = estimate(spec, params, SIZE, times, n_images=3)
    assert est.passes == Passes(14, 14)
    assert est.seconds == pytest.approx(3 * (14 * 0.5 + 14 * 2.0))
    corpus_spec = get_method("vdsn")
    est = estimate(corpus_spec, corpus_spec.resolve_params({"corpus_size": 100}, SIZE), SIZE, times)
    assert est.setup_seconds == pytest.approx(50.0) and est.seconds == pytest.approx(51.0)
    assert estimate(corpus_spec, corpus_spec.resolve_params({"corpus_size": 100}, SIZE), SIZE, times, setup=False).seconds == pytest.approx(1.0)


def test_measured_pass_times_and_progress_callback() -> None:
    enc = tiny_encoder(fit_size=SIZE)
    times = measure_pass_times(enc, SIZE, CPU, batch_size=2, repeats=1)
    assert times.forward_s > 0 and times.backward_s > 0 and times.image_size == SIZE
    seen: list[float] = []
    with PassCounter(enc, SIZE, on_pass=lambda c: seen.append(c.seconds(times))) as counter:
        x = images(3, SIZE).requires_grad_(True)
        enc(x).sum().backward()
        with torch.inference_mode():
            enc(images(2, SIZE // 2))  # a half-side image counts a quarter
    assert counter.forwards == pytest.approx(3 + 2 * 0.25) and counter.backwards == pytest.approx(3)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(3.5 * times.forward_s + 3 * times.backward_s)
    enc(images(1, SIZE))  # hooks are removed on exit
    assert counter.forwards == pytest.approx(3.5)
