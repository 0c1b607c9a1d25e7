"""Code fingerprints and provenance: stable, per-module, limited to the package."""

from __future__ import annotations

import pytest

from xai_ssl.provenance import code_fingerprint, config_hash, environment


def test_fingerprints_are_per_module_and_stable() -> None:
    a = code_fingerprint("methods.gradcam", "methods.base")
    assert a == code_fingerprint("methods.base", "methods.gradcam")  # order does not matter
    assert a != code_fingerprint("methods.input_x_gradient", "methods.base")
    assert len(code_fingerprint(".")) == 16
    assert code_fingerprint(".") != code_fingerprint("methods")


def test_unknown_module_is_refused() -> None:
    with pytest.raises(FileNotFoundError, match="xai_ssl.no_such_module"):
        code_fingerprint("no_such_module")


def test_config_hash_and_environment() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    env = environment()
    assert isinstance(env["torch"], str) and type(env["torch"]) is str  # plain str: safe in weights_only checkpoints
