"""The live demo in a real browser: Debian's chromium, driven by Selenium through the system chromedriver.

The demo is served in this process on a free loopback port with a tiny random encoder; a shared real Two4Two render
is uploaded and explained with Grad-CAM, and the page's numbers and the downloaded maps must equal explain() / score()
on the same pair. Bad uploads get a message; slow methods ask before running; no request leaves 127.0.0.1; the
server listens on loopback only. Skips (with the apt-get line) when chromium or chromedriver are missing, except under
CI=true, where it fails. A screenshot is saved to test-artifacts/demo.png.
"""

from __future__ import annotations

import re
import socket
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
from explorer_helpers import browser_missing, chromium_driver, requested_urls

from helpers import DEMO_ARCH, REPO, demo_config, missing, png_bomb, shared_data
from xai_ssl import api
from xai_ssl.io.maps_file import load_attributions
from xai_ssl.models.registry import build_architecture, save_encoder

pytestmark = pytest.mark.xdist_group("browser")  # one Chromium per module, on one worker

ARTIFACTS = REPO / "test-artifacts"
TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory):
    why = browser_missing()
    if why:
        missing(f"the browser tests cannot run: {why}")
    d = chromium_driver(tmp_path_factory.mktemp("chromium-profile"), 1400, 1700)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, driver):
    """The demo served in this process (default host), with a tiny random encoder prepared as the config's model."""
    from xai_ssl.demo import DemoCore, launch

    root = tmp_path_factory.mktemp("demo")
    torch.manual_seed(0)
    model = root / "results" / "models" / "simclr_small" / "encoder.pt"
    save_encoder(build_architecture("small_resnet", **DEMO_ARCH).eval(), model, "small_resnet", DEMO_ARCH)
    config = demo_config(cpu_budget_s=1000, max_pixels=1_000_000, n_examples=2)
    config["models"]["not_yet"] = dict(config["models"]["simclr_small"])  # a model without encoder.pt
    core = DemoCore(config, results=root / "results", device="cpu", work_dir=root / "work")
    port = free_port()
    app, url = launch(core, port=port, block=False, examples_dirs=sorted({p.parent for p in core.example_images()}))
    yield core, url, port, model
    app.close()


def wait_for(driver, condition, timeout: float = TIMEOUT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: condition(d))


def text_of(driver, elem_id: str) -> str:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.ID, elem_id)
    return found[0].text if found else ""


def open_demo(driver, url: str) -> None:
    driver.get("about:blank")
    driver.get_log("performance")
    driver.get(url)
    wait_for(driver, lambda d: "estimated time" in text_of(d, "estimate"))


def upload(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(path))
    wait_for(driver, lambda d: path.stem[:8] in text_of(d, "upload"))


def click_and_wait(driver, button: str, expect: str) -> str:
    """Click a button and wait until the status line holds ``expect``; returns the status."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, button).click()
    wait_for(driver, lambda d: expect in text_of(d, "status"))
    return text_of(driver, "status")


def set_number(driver, elem_id: str, value: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.TAB)


def page_values(driver) -> dict[tuple[str, str], float]:
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.CSS_SELECTOR, "#metrics td[data-value]")
    return {(c.get_attribute("data-method"), c.get_attribute("data-column")): float(c.get_attribute("data-value")) for c in cells}


def leaving_loopback(urls: list[str]) -> list[str]:
    """Requests of the page to any host other than 127.0.0.1 (the browser's own chrome:// pages aside)."""
    return [u for u in urls if urlparse(u).scheme in ("http", "https", "ws", "wss") and urlparse(u).hostname != "127.0.0.1"]


def real_image() -> Path:
    return next(p for p in sorted((shared_data("two4two-mini") / "test").glob("*.png")) if not p.name.endswith("_mask.png"))


def test_server_listens_on_loopback_only(served) -> None:
    import psutil

    _, url, port, _ = served
    assert urlparse(url).hostname == "127.0.0.1"
    listening = [c.laddr.ip for c in psutil.Process().net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    assert listening == ["127.0.0.1"], f"the demo listens on {listening}"


def test_gradcam_in_the_page_equals_the_api(driver, served) -> None:
    from selenium.webdriver.common.by import By

    core, url, _, model = served
    image = real_image()
    open_demo(driver, url)
    missing = " ".join(text_of(driver, "missing-models").split())  # code spans render on lines of their own
    assert f"not_yet : snakemake --cores all {core.results}/models/not_yet/encoder.pt" in missing
    upload(driver, image)
    set_number(driver, "seed", 3)  # the seed is editable; the page's numbers must be those of seed 3
    status = click_and_wait(driver, "run", "✓ done")
    assert status.startswith("✓"), status
    summary = text_of(driver, "summary")
    assert f"{image.stem}" in summary and "seed 3" in summary.replace("\n", " ")
    # the same pair through the API, in the test
    config = core.config
    enc = api.load_encoder(model, config=config, device="cpu")
    v = api.views(image, core.size, seed=3, crop_scale=core.crop_scale)
    m1, m2 = api.explain(enc, v, **api.configured_method(config, "gradcam"), seed=3, batch_size=core.batch_size)
    values, _ = api.score(enc, v, maps=(m1, m2), metrics=core.metrics_for(v.mask1 is not None), method="gradcam", seed=3, batch_size=core.batch_size)
    cos = re.search(r"cos\(f\(x1\), f\(x2\)\)\s*=\s*([0-9.]+)", summary.replace("\n", " "))
    assert cos and float(cos.group(1)) == pytest.approx(float(api.similarity(enc, v)), abs=5e-5)
    shown = page_values(driver)
    assert {c for (m, c) in shown if m == "gradcam"} >= {"SI", "SD", "CI", "CD", "SAD", "SIC", "CAD", "CID"}
    for (method, column), value in shown.items():
        assert method == "gradcam"
        assert value == pytest.approx(values[column], rel=1e-12, abs=1e-15, nan_ok=True), column
    assert len(driver.find_elements(By.CSS_SELECTOR, "#views img")) >= 3 and len(driver.find_elements(By.CSS_SELECTOR, "#maps img")) >= 2
    assert driver.find_elements(By.CSS_SELECTOR, "#curves img")
    # the maps, downloaded from the page's link, in the layout of results/attributions
    links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "#download a") if a.get_attribute("href")]
    assert len(links) == 1 and urlparse(links[0]).hostname == "127.0.0.1" and links[0].endswith("gradcam.h5")
    downloaded = Path(core.work) / "downloaded.h5"
    with urllib.request.urlopen(links[0], timeout=30) as response:
        downloaded.write_bytes(response.read())
    stored = load_attributions(downloaded)
    assert stored.image_ids == [image.stem] and list(stored.indices) == [0]
    assert torch.equal(stored.map1[0], m1) and torch.equal(stored.map2[0], m2)
    assert stored.attrs["method"] == "gradcam" and int(stored.attrs["seed"]) == 3
    ARTIFACTS.mkdir(exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(ARTIFACTS / "demo.png"))
    assert not leaving_loopback(requested_urls(driver))
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.parametrize("kind", ["not_an_image", "truncated", "bomb"])
def test_bad_uploads_show_a_message(driver, served, tmp_path: Path, kind: str) -> None:
    _, url, _, _ = served
    if kind == "not_an_image":
        path = tmp_path / "notes.png"
        path.write_text("these are notes, not pixels", encoding="utf-8")
        expect = "cannot read image (UnidentifiedImageError"
    elif kind == "truncated":
        image = real_image()
        path = tmp_path / "cut-short.png"
        path.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
        expect = "cannot read image"
    else:
        path = png_bomb(tmp_path / "bomb.png", 3000)  # 9 MP > the 1 MP limit of this config
        expect = "more than the limit of 1000000 (demo.max_pixels)"
    open_demo(driver, url)
    upload(driver, path)
    status = click_and_wait(driver, "run", expect)
    assert status.startswith("⚠") and path.name in status and "Traceback" not in driver.page_source
    assert not leaving_loopback(requested_urls(driver))


def test_slow_methods_ask_before_running(driver, served) -> None:
    from selenium.webdriver.common.by import By

    core, url, _, _ = served
    core.budget_s = 0.0  # everything is slow now
    try:
        open_demo(driver, url)
        assert "above the" in text_of(driver, "estimate")
        upload(driver, real_image())
        status = click_and_wait(driver, "run", "Run anyway")
        assert "gradcam" in status and not page_values(driver)  # nothing ran
        wait_for(driver, lambda d: d.find_element(By.ID, "confirm").is_displayed())
        assert click_and_wait(driver, "confirm", "✓ done").startswith("✓")
        assert page_values(driver)
    finally:
        core.budget_s = 1000.0


def test_demo_screenshot_is_an_image() -> None:
    """The artefact the gradcam test saved (run after it in this module)."""
    shot = ARTIFACTS / "demo.png"
    if not shot.is_file():
        missing("no screenshot: the browser test of this module did not run")
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size[0] >= 1000 and np.asarray(im.convert("L")).std() > 5
