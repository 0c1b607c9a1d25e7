"""Explorer test helpers: fake ExplorerData, an explorer from real maps of a tiny encoder, a headless Chromium.

``python tests/explorer_helpers.py docs/images/explorer.png ../shared/data/two4two-mini`` writes the README
screenshot (needs the shared Two4Two renders, Debian's chromium and chromedriver).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from xai_ssl.explorer import ExplorerData, MethodMaps

DIRECTIONS = {"SI": "↑", "SD": "↓", "CI": "↑", "CD": "↓", "SAD": "↓", "SIC": "↑", "CAD": "↓", "CID": "↑", "MS": "↓", "RAND": "↓"}
EXTRA_COLUMNS = ("CI_1", "CI_2", "CD_1", "CD_2", "CAD_1", "CAD_2", "CID_1", "CID_2", "ADI_B", "ADI_M_S", "ADI_M_1", "ADI_M_2", "MS_1", "MS_2", "RAND_L1", "RAND_L2")
CURVES = ("SI", "SD", "CI_1", "CI_2", "CD_1", "CD_2")


def fake_views(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Smooth colourful images uint8 [n, 3, size, size] (compress like real renders, not like noise)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, 3, size, size), np.uint8)
    for i in range(n):
        f = rng.uniform(1, 4, size=(3, 2))
        ph = rng.uniform(0, 6.3, size=3)
        for c in range(3):
            out[i, c] = np.round(127.5 + 127.5 * np.sin(f[c, 0] * 3 * xx + f[c, 1] * 2 * yy + ph[c])).astype(np.uint8)
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
        out[i, :, max(0, cy - 5) : cy + 5, max(0, cx - 5) : cx + 5] = rng.integers(0, 255, (3, 1, 1))
    return out


def fake_data(n_images: int = 6, n_methods: int = 5, size: int = 48, seed: int = 0, noise_maps: bool = False, extra_columns: bool = True) -> ExplorerData:
    """An ExplorerData with maps of several shapes and signs, NA metric values, NaN curve rows and a baseline.

    ``noise_maps``: every map is [size, size] uniform noise (the largest PNGs: the size bound's worst case).
    """
    rng = np.random.default_rng(seed)
    ids = [f"img-{i:03d}-{rng.integers(1e6):06d}" for i in range(n_images)]
    x1, x2, xt = (fake_views(rng, n_images, size) for _ in range(3))
    views = {"crop_aug": (x1, x2), "interpolation": (x1, xt)}
    base = {"crop_aug": rng.uniform(0.2, 0.95, n_images), "interpolation": rng.uniform(0.6, 0.99, n_images)}
    shapes = [(6, 6), (18, 18), (size, size), (4, 6)]  # (4, 6): not square, so a transposed map shows
    methods: dict[str, MethodMaps] = {}
    for k in range(n_methods):
        baseline = k == n_methods - 1 and n_methods > 1
        name = "random_baseline" if baseline else f"method_{k}"
        h, w = (size, size) if noise_maps else shapes[k % len(shapes)]
        family = "interpolation" if k % 3 == 2 else "crop_aug"
        signed = k % 2 == 1
        m1 = rng.uniform(-0.4 if signed else 0, 1, (n_images, h, w)).astype(np.float32) * np.float32(10.0 ** (k % 3 - 1))
        m2 = None if k % 4 == 3 else rng.uniform(-0.5 if signed else 0, 2, (n_images, h, w)).astype(np.float32)
        methods[name] = MethodMaps(family, m1, m2, baseline)
    first = next(iter(methods.values()))
    first.map1[0] = 0.25  # a constant map
    if n_images > 1:
        first.map1[1, 0, 0] = np.nan  # a map with a non-finite pixel
    cols = list(DIRECTIONS) + (list(EXTRA_COLUMNS) if extra_columns else [])
    rows = []
    for name, m in methods.items():
        for i, image_id in enumerate(ids):
            for c in cols:
                v = float(rng.normal(0.5, 0.2))
                if c in ("SI", "SD", "SAD", "SIC") and m.map2 is None:
                    v = np.nan  # single-map methods have no simultaneous metrics
                elif c == "SIC":
                    v = float(rng.integers(0, 2))  # an indicator: many ties
                elif rng.uniform() < 0.1:
                    v = np.nan
                rows.append((name, image_id, c, v))
    metrics = pd.DataFrame(rows, columns=["method", "image_id", "column", "value"])
    t1 = size + 1
    curves = {}
    for name, m in methods.items():
        names = CURVES if m.map2 is not None else CURVES[2:]
        per = {}
        for c in names:
            steps = np.cumsum(rng.normal(0, 0.03, (n_images, t1)), axis=1) + rng.uniform(0.2, 0.9, (n_images, 1))
            per[c] = steps
        per[names[-1]][n_images - 1] = np.nan  # an excluded image
        curves[name] = per
    return ExplorerData(
        title="fake dataset · fake model",
        image_ids=ids,
        views=views,
        base_cosine=base,
        methods=methods,
        metrics=metrics,
        directions=dict(DIRECTIONS),
        curves=curves,
        subtitle="test data",
    )


# ---------- real maps of a tiny, randomly initialised encoder on real Two4Two renders ----------

REAL_METHODS = {
    "conditional_occlusion": {},
    "pairwise_occlusion": {"n_erases": 50},
    "gradcam": {},
    "interaction_cam_mean": {},
    "input_x_gradient": {},
    "smooth_grad": {"n_samples": 8},
}
REAL_METRICS = {"insertion_deletion": {"blur_kernel": 11, "blur_sigma": 5.0}, "average_drop_increase": {}, "localisation": {}}


def centre_baseline(n: int, size: int) -> np.ndarray:
    """A Gaussian bump in the middle of the image [n, size, size]: the 'centre' reference map."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    g = np.exp(-(((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (2 * (size / 5) ** 2)))
    return np.repeat(g[None], n, 0).astype(np.float32)


def real_explorer_files(work: Path, split_dir: Path, n_images: int = 6, size: int = 48, width: int = 4, methods: dict | None = None,
                        metrics: dict | None = None, train_dir: Path | None = None, epochs: int = 0) -> dict:
    """Write the workflow's files (pairs, attribution shards, per-image CSVs, curves) for real maps of a tiny encoder.

    Uses the library's own steps: the pairs writer, the method registry
    (``get_method(name).fn`` via engine.explain_pairs), score_attributions and save_scores. The encoder is
    randomly initialised, or trained with SimCLR for ``epochs`` on the renders of ``train_dir``.
    Returns the keyword arguments of :func:`xai_ssl.explorer.explorer_data_from_files`.
    """
    import torch

    from helpers import write_pairs
    from xai_ssl.data.two4two import read_two4two_split
    from xai_ssl.engine import explain_pairs
    from xai_ssl.explorer import base_cosines
    from xai_ssl.io.maps_file import Attributions, save_attributions
    from xai_ssl.io.pairs_file import read_pairs
    from xai_ssl.io.scores_file import save_scores
    from xai_ssl.methods import get_method
    from xai_ssl.metrics import get_metric
    from xai_ssl.models.small_resnet import build_small_resnet
    from xai_ssl.scoring import score_attributions

    torch.manual_seed(0)
    encoder = build_small_resnet(width=width, embedding_dim=32, hidden_dim=64)
    if epochs:
        import torchvision.transforms.v2.functional as TF

        from xai_ssl.data.images import load_rgb
        from xai_ssl.models.simclr_training import SimCLRParams, train_simclr

        images = torch.stack([TF.resize(load_rgb(r.path), [size, size], antialias=True) for r in read_two4two_split(train_dir)])
        train_simclr(encoder, images, SimCLRParams(epochs=epochs, batch_size=64, lr=2e-3, crop_scale=(0.3, 1.0)), 0, torch.device("cpu"), progress=False)
    encoder = encoder.eval()
    records = read_two4two_split(split_dir)[:n_images]
    pairs_h5 = work / "pairs.h5"
    write_pairs(records, pairs_h5, size=size, seed=0, progress=False, crop_scale=(0.3, 1.0))
    pairs = read_pairs(pairs_h5)
    device = torch.device("cpu")
    specs = [(get_metric(k), get_metric(k).resolve_params(p, size)) for k, p in (metrics or REAL_METRICS).items()]
    files: dict = {"attribution_files": {}, "score_csvs": {}, "curve_files": {}}
    entries = [(name, get_method(name), params) for name, params in (methods or REAL_METHODS).items()]
    entries.append(("centre_baseline", None, {}))
    for name, spec, params in entries:
        if spec is None:  # a reference map computed here (registered baselines live in another branch)
            family, resolved = "crop_aug", {}
            m1 = torch.from_numpy(centre_baseline(len(records), size))
            m2 = m1.clone()
        else:
            family, resolved = spec.pair_family, spec.resolve_params(params, size)
            m1, m2 = explain_pairs(encoder, pairs, spec, resolved, 0, device, 32, name, progress=False)
        h5 = work / "attributions" / name / "shard-0.h5"
        attrs = {"method": name, "registry_method": name, "pair_family": family, "params": resolved, "seed": 0}
        save_attributions(h5, pairs.image_ids, pairs.indices, m1, m2, attrs)
        table, curves = score_attributions(encoder, pairs, Attributions(pairs.image_ids, pairs.indices, m1, m2, attrs), family, specs, device, 32,
                                           progress=False, method=spec, method_params=resolved, method_key=name)
        csv = work / "metrics" / name / "shard-0.csv"
        save_scores(table, curves, csv, csv.with_name("shard-0.curves.h5"), {"method": name})
        files["attribution_files"][name] = [h5]
        files["score_csvs"][name] = [csv]
        files["curve_files"][name] = [csv.with_name("shard-0.curves.h5")]
    families = sorted({spec.pair_family for _, spec, _ in entries if spec is not None} | {"crop_aug"})
    files["base_cosine"] = base_cosines(encoder, pairs, families)
    files["pairs_h5"] = pairs_h5
    return files


# ---------- headless Chromium (Debian's chromium + chromedriver; nothing is downloaded) ----------

CHROMIUM = os.environ.get("XAI_SSL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("XAI_SSL_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install chromium chromium-driver"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    if missing:
        return f"{' and '.join(missing)} not found: install Debian's chromium and its driver with `{INSTALL_HINT}`"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]'"
    return None


def chromium_driver(profile_dir: Path, width: int = 1400, height: int = 1000):
    """A headless Chromium driven by the system chromedriver (Selenium Manager stays offline)."""
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never try to download a browser or driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={profile_dir}",
                f"--window-size={width},{height}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})  # performance: the network requests
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


def requested_urls(driver) -> list[str]:
    """URLs the page requested since the last call (Chrome's performance log, Network.requestWillBeSent)."""
    import json

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def wait_rendered(driver, timeout: float = 20.0) -> None:
    """Wait until the explorer has drawn everything of its latest state."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(
        "return !!(window.XaiSslExplorer && XaiSslExplorer.idle() && document.body.dataset.rendered)"))


def full_page_screenshot(driver, path: Path, width: int = 1400) -> None:
    """Screenshot of the whole page: the window is made as tall as the document first."""
    height = driver.execute_script("return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
    driver.set_window_size(width, min(int(height) + 140, 6000))  # + browser frame
    driver.execute_script("window.scrollTo(0, 0)")
    wait_rendered(driver)
    driver.save_screenshot(str(path))


def docs_screenshot(out_png: Path, split_dir: Path) -> None:
    """The README screenshot: an explorer of real maps of a tiny random encoder on real Two4Two renders."""
    from PIL import Image

    from xai_ssl.explorer import explorer_data_from_files, write_explorer

    with tempfile.TemporaryDirectory(prefix="explorer-docs-") as tmp:
        tmp = Path(tmp)
        files = real_explorer_files(tmp / "work", split_dir / "test", n_images=8, width=16, train_dir=split_dir / "train", epochs=40)
        data = explorer_data_from_files(**files, title="two4two-mini · small_resnet (SimCLR, 40 epochs on 48 renders)",
                                        subtitle="8 real Two4Two renders at 48 px")
        index = write_explorer(tmp / "explorer", data)
        driver = chromium_driver(tmp / "profile", 1440, 900)
        try:
            driver.get(index.as_uri() + "#image=" + data.image_ids[2] + "&methods=conditional_occlusion,gradcam,input_x_gradient,centre_baseline"
                       + "&sort=gradcam|SD|worst")
            wait_rendered(driver)
            full_page_screenshot(driver, tmp / "shot.png", 1440)
        finally:
            driver.quit()
        img = Image.open(tmp / "shot.png").convert("RGB")
        out_png.parent.mkdir(parents=True, exist_ok=True)
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out_png, optimize=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python tests/explorer_helpers.py OUT.png TWO4TWO_DIR  (with test/ and train/, e.g. ../shared/data/two4two-mini)")
    docs_screenshot(Path(sys.argv[1]), Path(sys.argv[2]))
