"""Atomic writes: every output is written to a temporary file beside it and renamed into place."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def temporary_path(path: Path) -> Path:
    """The temporary file beside ``path`` (same suffix, so writers that infer the format from it still work)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_paths(paths: Sequence[Path | str]) -> Iterator[list[Path]]:
    """Yield temporary paths for ``paths``; rename all of them into place only if the block succeeds.

    Every file is written before any is renamed, so a failure leaves none of the new files behind
    (and never a half-written one under its final name).
    """
    finals = [Path(p) for p in paths]
    tmps = [temporary_path(p) for p in finals]
    for p in finals:
        p.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmps
        for tmp, final in zip(tmps, finals):
            os.replace(tmp, final)
    finally:
        for tmp in tmps:
            if tmp.exists():
                tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path for ``path``; it is renamed to ``path`` only if the block succeeds."""
    with atomic_paths([path]) as (tmp,):
        yield tmp


def write_text(path: Path | str, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path | str, obj: Any) -> None:
    """Write an indented JSON file atomically (keys in insertion order, trailing newline)."""
    write_text(path, json.dumps(obj, indent=2) + "\n")
