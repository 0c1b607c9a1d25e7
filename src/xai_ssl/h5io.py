"""HDF5 helpers: atomic writes, string datasets, JSON attributes."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np


@contextlib.contextmanager
def atomic_h5(path: Path) -> Iterator[h5py.File]:
    """Open ``<path>.tmp`` for writing and rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_strings(f: h5py.Group, name: str, values: list[str]) -> None:
    """Store a list of str as a UTF-8 variable-length string dataset."""
    f.create_dataset(name, data=np.array(values, dtype=object), dtype=h5py.string_dtype("utf-8"))


def read_strings(f: h5py.Group, name: str) -> list[str]:
    """Read a string dataset written by :func:`write_strings`."""
    return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in f[name][()]]


def set_attrs(obj: h5py.HLObject, attrs: dict[str, Any]) -> None:
    """Write scalars/strings as attributes; dicts and lists as JSON strings."""
    for key, value in attrs.items():
        if isinstance(value, (dict, list, tuple)):
            obj.attrs[key] = json.dumps(value, sort_keys=True, default=str)
        elif value is None:
            obj.attrs[key] = "null"
        else:
            obj.attrs[key] = value


def get_json_attr(obj: h5py.HLObject, key: str) -> Any:
    """Read an attribute written as JSON by :func:`set_attrs`."""
    return json.loads(obj.attrs[key])
