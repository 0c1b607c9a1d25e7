"""The results explorer written by the workflow (tiny config): opened from file:// in Debian's Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from explorer_helpers import browser_missing, chromium_driver, full_page_screenshot, wait_rendered

from helpers import REPO
from workflow_runner import TINY_CONFIG
from xai_ssl.io.pairs_file import read_pairs

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("tiny_run")]


def click_and_wait(driver, element) -> None:
    """Click and wait until the page has drawn its new state."""
    from selenium.webdriver.support.ui import WebDriverWait

    before = driver.execute_script("return document.body.dataset.rendered")
    element.click()
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.body.dataset.rendered !== arguments[0] && XaiSslExplorer.idle()", before))


def test_explorer_of_the_tiny_run(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    """Every image and method is listed; switching method and image changes what is shown; no JavaScript error."""
    work, _ = tiny_run
    folder = work / "results" / "explorer" / "tiny" / "tiny_simclr"
    assert (folder / "index.html").is_file()
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) < 20 * 2**20
    why = browser_missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the browser test cannot run: {why}")
        pytest.skip(why)
    copied = tmp_path / "copied-off-the-cluster"
    shutil.copytree(folder, copied)  # works after copying the results elsewhere
    driver = chromium_driver(tmp_path / "profile")
    try:
        driver.get((copied / "index.html").as_uri())
        wait_rendered(driver)
        ids = read_pairs(work / "results" / "pairs" / "tiny.h5").image_ids
        listed = [li.get_attribute("data-image-id") for li in driver.find_elements("css selector", "#image-list li")]
        assert sorted(listed) == sorted(ids)
        methods = {i.get_attribute("data-method") for i in driver.find_elements("css selector", "#method-picker input[data-method]")}
        assert methods == set(TINY_CONFIG["run"]["methods"])
        shown = driver.find_element("id", "image-id").text
        before = driver.execute_script("return [...document.querySelectorAll('#maps canvas[data-method]')].map(c => c.toDataURL())")
        click_and_wait(driver, driver.find_element("id", "next"))
        assert driver.find_element("id", "image-id").text != shown
        after = driver.execute_script("return [...document.querySelectorAll('#maps canvas[data-method]')].map(c => c.toDataURL())")
        assert before != after
        box = driver.find_element("css selector", "#method-picker input[data-method='gradcam']")
        if not box.is_selected():
            click_and_wait(driver, box)
        cards = [c.get_attribute("data-method") for c in driver.find_elements("css selector", "#maps .method-card")]
        assert "gradcam" in cards
        full_page_screenshot(driver, REPO / "test-artifacts" / "explorer-workflow.png")
        assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
