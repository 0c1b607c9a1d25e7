"""Writing the explorer folder atomically: index.html, explorer.js, explorer.css and data.js."""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from xai_ssl.explorer.data import ExplorerData
from xai_ssl.explorer.payload import build_payload

STATIC_FILES = ("explorer.js", "explorer.css")
DATA_FILE = "data.js"
DATA_VARIABLE = "XAI_SSL_EXPLORER"


def _static(name: str) -> str:
    return resources.files("xai_ssl.explorer").joinpath("static", name).read_text(encoding="utf-8")


def data_script(payload: dict) -> str:
    """The data file: one assignment of the payload (a <script src> works on file://, fetch does not)."""
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return f"window.{DATA_VARIABLE} = {text};\n"


def write_files(folder: Path, data: ExplorerData) -> None:
    """Write every file of the page into an existing, empty ``folder``."""
    payload = build_payload(data)
    page = _static("index.html").replace("{{TITLE}}", html.escape(data.title))
    (folder / "index.html").write_text(page, encoding="utf-8")
    for name in STATIC_FILES:
        (folder / name).write_text(_static(name), encoding="utf-8")
    (folder / DATA_FILE).write_text(data_script(payload), encoding="utf-8")


def write_explorer(out_dir: Path, data: ExplorerData) -> Path:
    """Write the self-contained explorer of ``data`` to ``out_dir`` (replaced as a whole); return its index.html.

    Everything is written into a temporary sibling folder first and renamed into place, so a failure
    midway leaves neither a half-written ``out_dir`` nor the temporary folder.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"write_explorer: {out_dir} exists and is not a folder; remove it or choose another output folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    old: Path | None = None
    try:
        write_files(tmp, data)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; the page is meant to be shared
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, old / out_dir.name)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and (old / out_dir.name).exists() and not out_dir.exists():
            os.replace(old / out_dir.name, out_dir)  # put the previous explorer back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return out_dir / "index.html"
