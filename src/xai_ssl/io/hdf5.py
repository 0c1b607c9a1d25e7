"""HDF5 helpers: atomic files, string datasets, JSON attributes, and opening a file with a clear error."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from xai_ssl.io.atomic import atomic_path
from xai_ssl.io.damaged import DamagedFileError, rebuild_hint

__all__ = ["DamagedFileError", "atomic_h5", "get_json_attr", "open_h5", "plain_attrs", "read_strings", "rebuild_hint", "set_attrs", "write_strings"]


@contextlib.contextmanager
def atomic_h5(path: Path | str) -> Iterator[h5py.File]:
    """Open a temporary HDF5 file for writing; it becomes ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        yield f


@contextlib.contextmanager
def open_h5(path: Path | str, what: str = "HDF5 file") -> Iterator[h5py.File]:
    """Open ``path`` read-only; a missing, truncated or corrupt file raises :class:`DamagedFileError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found; {rebuild_hint(path)}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DamagedFileError(f"{path}: {what} cannot be opened ({exc}); {rebuild_hint(path)}") from exc
    try:
        yield f
    except (KeyError, OSError) as exc:  # a dataset or attribute missing, or unreadable data
        if isinstance(exc, DamagedFileError):
            raise
        raise DamagedFileError(f"{path}: {what} is incomplete or damaged ({type(exc).__name__}: {exc}); {rebuild_hint(path)}") from exc
    finally:
        f.close()


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


def plain_attrs(obj: h5py.HLObject) -> dict[str, Any]:
    """All attributes as Python scalars/strings (numpy scalars unwrapped), sorted by name."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in sorted(obj.attrs.items())}
