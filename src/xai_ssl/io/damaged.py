"""Damaged workflow outputs: the error every reader raises, naming the file and the command that rebuilds it."""

from __future__ import annotations

from pathlib import Path


class DamagedFileError(OSError):
    """A workflow file cannot be read (truncated, zeroed, or not what it should be); the message says how to rebuild it."""


def rebuild_hint(path: Path | str) -> str:
    """What to do about a damaged or missing workflow output (``path`` as the workflow names it)."""
    return (f"rebuild it with `snakemake --forcerun {path}` (reruns the job that writes it and everything that depends on it), "
            f"or delete it and run snakemake again")


def damaged(path: Path | str, what: str, reason: str) -> DamagedFileError:
    """The error for a damaged output: ``<path>: <what> <reason>; rebuild it with ...``."""
    return DamagedFileError(f"{path}: {what} {reason}; {rebuild_hint(path)}")
