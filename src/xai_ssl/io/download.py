"""Downloading files (checkpoints, dataset archives) with urllib, and their sha256 digests (pinned, or trusted on first use).

No maintainer publishes digests for the SimCLRv2, Barlow Twins or SimSiam files
(``peers-and-checkpoints.md`` B.3), so a digest is either

* **pinned**: given in the model entry (``sha256:``) or in ``config/checksums.yaml`` (by URL) — a file
  with another digest is refused; or
* **trusted on first use (TOFU)**: the first download (or first use of a file placed by hand) records
  the digest in ``<file>.sha256`` (``sha256sum`` format); every later download or use of that file is
  verified against the record.

A failed download raises :class:`DownloadError` naming the URL and the exact path where the file can be
placed by hand instead.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from xai_ssl.io.atomic import atomic_path, write_text
from xai_ssl.models.checkpoints import CheckpointError

log = logging.getLogger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A file could not be downloaded (or its digest is wrong); the message says where to place it by hand."""


class ChecksumError(CheckpointError):
    """A file's sha256 differs from the pinned or recorded digest."""


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def record_path(path: Path | str) -> Path:
    """Where the trust-on-first-use digest of ``path`` is kept: ``<path>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def normalise_digest(digest: str | None) -> str | None:
    """Lower-case hex digest, or None; a malformed digest is an error."""
    if digest is None:
        return None
    d = str(digest).strip().lower().removeprefix("sha256:")
    if not _HEX64.match(d):
        raise ValueError(f"not a sha256 hex digest: {digest!r}")
    return d


def read_record(path: Path | str) -> str | None:
    """The recorded digest of ``path`` (first field of ``<path>.sha256``), or None when there is no record."""
    rec = record_path(path)
    if not rec.is_file():
        return None
    fields = rec.read_text(encoding="utf-8").split()
    return normalise_digest(fields[0]) if fields else None


def write_record(path: Path | str, digest: str) -> Path:
    """Record ``digest`` for ``path`` in ``sha256sum`` format (``sha256sum -c`` can check it)."""
    rec = record_path(path)
    write_text(rec, f"{digest}  {Path(path).name}\n")
    return rec


def expected_digest(path: Path | str, pinned: str | None = None) -> str | None:
    """The digest ``path`` must have: the pinned one, else the recorded one, else None (not known yet)."""
    return normalise_digest(pinned) or read_record(path)


def verify_file(path: Path | str, pinned: str | None = None, record: bool = True, digest: str | None = None) -> str:
    """Check ``path`` against its pinned or recorded digest; with no digest known, record it (TOFU).

    Returns the file's digest. Raises ChecksumError (naming the file, both digests and where the
    expected one comes from) on a mismatch. ``digest`` skips re-hashing when the caller already has it.
    A record that cannot be written (read-only folder) is logged, not fatal.
    """
    path = Path(path)
    actual = digest or sha256_file(path)
    pin = normalise_digest(pinned)
    recorded = read_record(path)
    if pin is not None and actual != pin:
        raise ChecksumError(f"{path}: sha256 {actual} differs from the pinned digest {pin} (model entry 'sha256' or config/checksums.yaml)")
    if recorded is not None and actual != recorded:
        raise ChecksumError(
            f"{path}: sha256 {actual} differs from the digest recorded on first use in {record_path(path)} ({recorded}); "
            f"if the file was replaced on purpose, delete that record"
        )
    if record and recorded is None:
        try:
            write_record(path, actual)
            log.info("%s: no digest known; recorded sha256 %s in %s (trust on first use)", path, actual, record_path(path))
        except OSError as exc:
            log.warning("%s: sha256 %s could not be recorded (%s)", path, actual, exc)
    return actual


def manual_hint(url: str, dest: Path | str) -> str:
    """The sentence that tells the user where to put a file they fetched by hand."""
    return f"download {url} by hand and place it at {Path(dest).resolve()} (the workflow then uses it and skips this download)"


def fetch(url: str, dest: Path | str, pinned: str | None = None, timeout: float = 60.0) -> str:
    """Download ``url`` to ``dest`` (via a temporary file beside it), verify its digest (pinned / recorded / TOFU); returns it.

    The file only appears at ``dest`` once it is complete and verified. Any failure raises DownloadError
    (or ChecksumError) naming the URL and the path where the file can be placed by hand.
    """
    dest = Path(dest)
    h = hashlib.sha256()
    t0, n, next_log = time.perf_counter(), 0, 0
    with atomic_path(dest) as part:  # the file appears at dest only once complete and verified
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "xai-ssl (python urllib)"})
            with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0)
                log.info("downloading %s (%s) to %s", url, f"{total / 2**20:.1f} MiB" if total else "size unknown", dest)
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    h.update(block)
                    n += len(block)
                    if n >= next_log:
                        log.info("%.0f MiB%s", n / 2**20, f" of {total / 2**20:.0f}" if total else "")
                        next_log += 256 * CHUNK
            if total and n != total:
                raise OSError(f"incomplete download: {n} of {total} bytes")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DownloadError(f"cannot download {url} ({type(exc).__name__}: {exc}); {manual_hint(url, dest)}") from exc
        digest = h.hexdigest()
        log.info("downloaded %.1f MiB in %.0f s; sha256 %s", n / 2**20, time.perf_counter() - t0, digest)
        pin = normalise_digest(pinned)
        recorded = read_record(dest)
        expected = pin or recorded
        if expected is not None and digest != expected:
            source = "pinned" if pin else f"recorded on first use in {record_path(dest)}"
            raise ChecksumError(
                f"{url}: downloaded file has sha256 {digest}, expected {expected} ({source}); refused, nothing written to {dest}. "
                f"If the file changed upstream on purpose, update the digest; or {manual_hint(url, dest)}"
            )
    verify_file(dest, pin, record=True, digest=digest)
    return digest
