"""The results explorer in a real browser: Debian's chromium, driven by Selenium through the system chromedriver, from file://.

Skips (with the apt-get line) when chromium or chromedriver are missing, except under CI=true, where it fails.
A screenshot is saved to test-artifacts/explorer.png.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from explorer_helpers import (
    browser_missing,
    chromium_driver,
    fake_data,
    full_page_screenshot,
    real_explorer_files,
    requested_urls,
    wait_rendered,
)
from PIL import Image

from helpers import REPO, missing
from xai_ssl.explorer import ExplorerData, explorer_data_from_files, write_explorer

pytestmark = pytest.mark.xdist_group("browser")  # one Chromium per module, on one worker

ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory):
    why = browser_missing()
    if why:
        missing(f"the browser tests cannot run: {why}")
    d = chromium_driver(tmp_path_factory.mktemp("chromium-profile"))
    yield d
    d.quit()


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExplorerData, Path]:
    """An explorer of fake data, copied to another folder after writing (the original is deleted)."""
    data = fake_data(n_images=6, n_methods=5)
    root = tmp_path_factory.mktemp("explorer")
    written = write_explorer(root / "written", data).parent
    copied = root / "elsewhere" / "copied"
    shutil.copytree(written, copied)
    shutil.rmtree(written)
    return data, copied / "index.html"


def severe(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def open_page(driver, index: Path, fragment: str = "") -> None:
    driver.get_log("browser")  # drop older entries
    driver.get("about:blank")  # a fresh document even when only the #fragment differs
    driver.get_log("performance")
    driver.get(index.as_uri() + fragment)
    wait_rendered(driver)


def act(driver, action: Callable[[], None]) -> None:
    """Do something that re-renders the page and wait until the new state is drawn."""
    before = driver.execute_script("return document.body.dataset.rendered")
    action()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: d.execute_script(
        "return document.body.dataset.rendered !== arguments[0] && XaiSslExplorer.idle()", before))


def js_state(driver) -> dict:
    return driver.execute_script("return XaiSslExplorer.state()")


def canvases(driver) -> dict[str, str]:
    """method/view -> PNG data URL of each map panel (toDataURL also proves the canvas is not tainted)."""
    return driver.execute_script(
        "const o = {}; for (const c of document.querySelectorAll('#maps canvas[data-method]')) o[c.dataset.method + '/' + c.dataset.view] = c.toDataURL(); return o;")


def pixels(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")).astype(int)


def table_cells(driver) -> dict[tuple[str, str], dict]:
    return driver.execute_script(
        "const o = []; for (const td of document.querySelectorAll('#metric-table tbody td.cell'))"
        " o.push([td.parentElement.dataset.method, td.dataset.column, {...td.dataset}]); return o;")


def expected_cells(data: ExplorerData, image: int) -> dict[tuple[str, str], tuple[float, float, int, int]]:
    """(method, column) -> (value, mean, rank, n) computed with pandas: rank 1 = best per the column's direction."""
    df = data.metrics[data.metrics["column"].isin(list(data.directions))]
    out = {}
    for (method, column), g in df.groupby(["method", "column"]):
        ranks = g["value"].rank(method="min", ascending=data.directions[column] == "↓")
        row = g["image_id"] == data.image_ids[image]
        out[(method, column)] = (float(g.loc[row, "value"].iloc[0]), float(g["value"].mean()), int(ranks[row].fillna(0).iloc[0]), int(g["value"].count()))
    return out


def check_table(driver, data: ExplorerData, image: int) -> int:
    cells = {(m, c): d for m, c, d in table_cells(driver)}
    expected = expected_cells(data, image)
    checked = 0
    for (method, column), d in cells.items():
        value, mean, rank, n = expected[(method, column)]
        assert (d["value"] == "NA") == np.isnan(value), (method, column)
        if not np.isnan(value):
            assert float(d["value"]) == pytest.approx(value, rel=1e-12)
        assert float(d["mean"]) == pytest.approx(mean, rel=1e-12)
        assert (int(d["rank"]), int(d["n"])) == (rank, n), (method, column)
        checked += 1
    return checked


def list_ids(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('#image-list li')].map(li => li.dataset.imageId)")


def test_lists_every_image_and_method_offline(driver, explorer: tuple[ExplorerData, Path]) -> None:
    data, index = explorer
    open_page(driver, index)
    assert list_ids(driver) == data.image_ids
    methods = driver.execute_script("return [...document.querySelectorAll('#method-picker input[data-method]')].map(e => e.dataset.method)")
    assert methods == list(data.methods)
    baselines = driver.execute_script("return [...document.querySelectorAll('#method-picker .baselines input')].map(e => e.dataset.method)")
    assert baselines == [n for n, m in data.methods.items() if m.is_baseline] == ["random_baseline"]
    assert driver.find_element("id", "image-id").text == data.image_ids[0]
    shown = {e.get_attribute("data-family"): e.find_element("css selector", ".base-cosine").text for e in driver.find_elements("css selector", "#views .family")}
    assert shown == {f: f"{c[0]:.4f}" for f, c in data.base_cosine.items()}
    assert [c.get_attribute("data-method") for c in driver.find_elements("css selector", "#maps .method-card")] == ["method_0", "method_1", "method_2"]
    assert check_table(driver, data, 0) > 20
    urls = requested_urls(driver)
    assert any(u.endswith("/copied/data.js") for u in urls), urls
    assert [u for u in urls if u.startswith(("http:", "https:", "ws:", "wss:", "ftp:", "//"))] == []  # nothing from the network
    assert not driver.find_element("id", "error").is_displayed()
    assert severe(driver) == []


def test_maps_decode_to_the_stored_levels(driver, explorer: tuple[ExplorerData, Path]) -> None:
    """The browser's decoded 8-bit levels equal the raw map quantised independently here."""
    data, index = explorer
    open_page(driver, index)
    for name, image, view in (("method_1", 2, 1), ("method_2", 4, 2), ("method_3", 0, 1)):
        raw = getattr(data.methods[name], f"map{view}")[image].astype(np.float64)
        expected = np.round((raw - raw.min()) / (raw.max() - raw.min()) * 255).astype(int)
        got = driver.execute_async_script("XaiSslExplorer.decodeMap(arguments[0], arguments[1], arguments[2]).then(arguments[3])", name, image, view)
        np.testing.assert_array_equal(np.array(got).reshape(raw.shape), expected)
    assert severe(driver) == []


def test_switch_methods_images_and_opacity(driver, explorer: tuple[ExplorerData, Path]) -> None:
    data, index = explorer
    open_page(driver, index)
    first = canvases(driver)
    assert set(first) == {f"method_{k}/{v}" for k in range(3) for v in (1, 2)}
    assert len(set(first.values())) == len(first)  # every map panel shows something different

    # methods: drop method_0, add the baseline
    act(driver, lambda: driver.find_element("css selector", "#method-picker input[data-method='method_0']").click())
    act(driver, lambda: driver.find_element("css selector", "#method-picker input[data-method='random_baseline']").click())
    cards = driver.find_elements("css selector", "#maps .method-card")
    assert [c.get_attribute("data-method") for c in cards] == ["method_1", "method_2", "random_baseline"]
    assert "baseline" in cards[-1].get_attribute("class").split()
    assert js_state(driver)["selected"] == ["method_1", "method_2", "random_baseline"]
    second = canvases(driver)
    assert second["method_1/1"] == first["method_1/1"] and "method_0/1" not in second
    legend = driver.find_element("css selector", "#maps .method-card[data-method='random_baseline'] .legend")
    raw = data.methods["random_baseline"].map1[0]
    assert (float(legend.get_attribute("data-lo")), float(legend.get_attribute("data-hi"))) == (float(raw.min()), float(raw.max()))
    assert {m for m, _, _ in table_cells(driver)} == {"method_1", "method_2", "random_baseline"}

    # image: next, keyboard, jump by id prefix
    act(driver, lambda: driver.find_element("id", "next").click())
    assert driver.find_element("id", "image-id").text == data.image_ids[1]
    third = canvases(driver)
    assert all(third[k] != second[k] for k in ("method_1/1", "method_2/2", "random_baseline/1"))
    assert check_table(driver, data, 1) > 10
    from selenium.webdriver.common.keys import Keys

    act(driver, lambda: driver.find_element("tag name", "body").send_keys(Keys.ARROW_RIGHT))
    assert js_state(driver)["imageId"] == data.image_ids[2]
    jump = driver.find_element("id", "jump")
    jump.clear()
    jump.send_keys(data.image_ids[4][:7])
    act(driver, lambda: jump.send_keys(Keys.ENTER))
    assert driver.find_element("id", "image-id").text == data.image_ids[4]
    assert driver.execute_script("return window.scrollY") == 0  # the list scrolls to the current image, never the page
    current = driver.find_elements("css selector", "#image-list li.current")
    assert [li.get_attribute("data-image-id") for li in current] == [data.image_ids[4]]
    assert check_table(driver, data, 4) > 10

    # opacity 0: the overlay is gone, both crop_aug methods show the same plain view 1
    def set_opacity(v: float) -> None:
        driver.execute_script("const s = document.getElementById('opacity'); s.value = arguments[0]; s.dispatchEvent(new Event('input'));", v)

    act(driver, lambda: set_opacity(0))
    plain = canvases(driver)
    assert plain["method_1/1"] == plain["random_baseline/1"]
    act(driver, lambda: set_opacity(1))
    full = canvases(driver)
    assert full["method_1/1"] != full["random_baseline/1"]
    assert np.abs(pixels(full["method_1/1"]) - pixels(plain["method_1/1"])).mean() > 10
    # colour scale: method_1's maps are signed; forcing sequential changes the picture, auto = diverging
    from selenium.webdriver.support.ui import Select

    act(driver, lambda: Select(driver.find_element("id", "colour-scale")).select_by_value("sequential"))
    assert canvases(driver)["method_1/1"] != full["method_1/1"]
    # opacity 1, no smoothing: every map cell shows the colour of its level (viridis; coolwarm centred at 0)
    act(driver, lambda: driver.find_element("id", "native-pixels").click())
    check_overlay_colours(driver, data, "method_1", image=4)
    act(driver, lambda: Select(driver.find_element("id", "colour-scale")).select_by_value("auto"))
    check_overlay_colours(driver, data, "method_1", image=4, diverging=True)  # signed map: auto = diverging
    act(driver, lambda: Select(driver.find_element("id", "colour-scale")).select_by_value("sequential"))
    act(driver, lambda: driver.find_element("id", "prev").click())
    check_overlay_colours(driver, data, "method_1", image=3)
    act(driver, lambda: driver.find_element("css selector", "#method-picker input[data-method='method_3']").click())
    check_overlay_colours(driver, data, "method_3", image=3)
    assert severe(driver) == []


def check_overlay_colours(driver, data: ExplorerData, method: str, image: int, diverging: bool = False) -> None:
    """Pixels at the map cells' centres equal matplotlib's colour map of the map's 8-bit level (independent colour table).

    Sequential: viridis from min to max; diverging: coolwarm with 0 in the middle and ±max |value| at the ends.
    """
    import matplotlib

    assert js_state(driver)["image"] == image
    shot = pixels(canvases(driver)[f"{method}/1"])  # [S, S, 3]
    raw = data.methods[method].map1[image].astype(np.float64)
    lo, hi = raw.min(), raw.max()
    level = np.round((raw - lo) / (hi - lo) * 255) / 255
    if diverging:
        value = lo + level * (hi - lo)
        expected = np.asarray(matplotlib.colormaps["coolwarm"](0.5 + 0.5 * value / max(abs(lo), abs(hi))))[..., :3] * 255
    else:
        expected = np.asarray(matplotlib.colormaps["viridis"](level))[..., :3] * 255  # [h, w, 3]
    h, w = raw.shape
    size = shot.shape[0]
    centres = shot[((np.arange(h) + 0.5) * size / h).astype(int)][:, ((np.arange(w) + 0.5) * size / w).astype(int)]
    assert np.abs(centres - expected).max() <= 6  # the page interpolates 33 samples of viridis


def test_sort_images_by_a_metric(driver, explorer: tuple[ExplorerData, Path]) -> None:
    from selenium.webdriver.support.ui import Select

    data, index = explorer
    open_page(driver, index)
    df = data.metrics

    def expected_order(method: str, column: str, ascending: bool) -> list[str]:
        g = df[(df["method"] == method) & (df["column"] == column)].set_index("image_id")["value"].reindex(data.image_ids)
        g = pd.DataFrame({"v": g.to_numpy(), "i": range(len(g))}, index=g.index)
        finite = g[g["v"].notna()].sort_values(["v", "i"], ascending=[ascending, True])
        return list(finite.index) + list(g[g["v"].isna()].index)

    act(driver, lambda: Select(driver.find_element("id", "sort-method")).select_by_value("method_0"))
    act(driver, lambda: Select(driver.find_element("id", "sort-column")).select_by_value("SD"))
    assert Select(driver.find_element("id", "sort-dir")).first_selected_option.get_attribute("value") == "worst"
    order = expected_order("method_0", "SD", ascending=False)  # ↓: worst = largest first
    assert list_ids(driver) == order
    assert np.isnan(df[(df.method == "method_0") & (df.column == "SD") & (df.image_id == order[-1])]["value"].iloc[0]) or True
    act(driver, lambda: Select(driver.find_element("id", "sort-dir")).select_by_value("best"))
    assert list_ids(driver) == expected_order("method_0", "SD", ascending=True)
    act(driver, lambda: Select(driver.find_element("id", "sort-column")).select_by_value("CI"))
    assert list_ids(driver) == expected_order("method_0", "CI", ascending=False)  # ↑: best = largest first
    act(driver, lambda: Select(driver.find_element("id", "sort-dir")).select_by_value("worst"))
    order = expected_order("method_0", "CI", ascending=True)
    assert list_ids(driver) == order

    # prev/next walk the sorted list
    act(driver, lambda: driver.find_element("css selector", "#image-list li:first-child").click())
    assert js_state(driver)["imageId"] == order[0]
    act(driver, lambda: driver.find_element("id", "next").click())
    assert js_state(driver)["imageId"] == order[1]
    assert driver.find_element("id", "position").text == f"2 / {len(order)}"

    # clicking a table cell sorts by that method's column
    act(driver, lambda: driver.find_element("css selector", "#metric-table tr[data-method='method_1'] td[data-column='CAD']").click())
    st = js_state(driver)
    assert (st["sortMethod"], st["sortColumn"]) == ("method_1", "CAD")
    assert list_ids(driver) == expected_order("method_1", "CAD", ascending=st["sortDir"] != "worst")
    assert Select(driver.find_element("id", "sort-method")).first_selected_option.get_attribute("value") == "method_1"

    # a column without direction sorts ascending / descending and has no rank
    act(driver, lambda: driver.find_element("id", "all-columns").click())
    act(driver, lambda: Select(driver.find_element("id", "sort-column")).select_by_value("ADI_B"))
    assert Select(driver.find_element("id", "sort-dir")).first_selected_option.text == "ascending"
    assert list_ids(driver) == expected_order("method_1", "ADI_B", ascending=True)
    ARTIFACTS.mkdir(exist_ok=True)
    act(driver, lambda: Select(driver.find_element("id", "sort-column")).select_by_value("SD"))
    full_page_screenshot(driver, ARTIFACTS / "explorer.png")
    driver.set_window_size(1400, 1000)
    assert severe(driver) == []


def test_state_in_the_address_survives_a_reload(driver, explorer: tuple[ExplorerData, Path]) -> None:
    data, index = explorer
    open_page(driver, index, "#" + "image=" + data.image_ids[3] + "&methods=method_2,method_4&sort=method_2|SI|best")
    st = js_state(driver)
    assert st["imageId"] == data.image_ids[3]
    assert st["selected"] == ["method_2"]  # unknown names are ignored
    assert (st["sortMethod"], st["sortColumn"], st["sortDir"]) == ("method_2", "SI", "best")
    assert severe(driver) == []


def test_missing_data_file_is_explained(driver, explorer: tuple[ExplorerData, Path], tmp_path: Path) -> None:
    _, index = explorer
    for copied, message in ((["index.html"], "data.js and explorer.js could not be read"), (["index.html", "explorer.js", "explorer.css"], "data.js could not be read")):
        folder = tmp_path / str(len(copied))
        folder.mkdir()
        for name in copied:
            shutil.copy(index.parent / name, folder / name)
        driver.get((folder / "index.html").as_uri())
        box = driver.find_element("id", "error")
        assert box.is_displayed() and message in box.text and "copy the whole explorer folder" in box.text
    driver.get_log("browser")  # the failed <script src> loads are expected here


def test_real_maps_in_the_browser(driver, tmp_path: Path, two4two_mini: Path) -> None:
    """Grad-CAM, occlusion and gradient maps of a tiny encoder on real renders, scored by the real metrics."""
    files = real_explorer_files(tmp_path / "w", two4two_mini / "test", n_images=3, methods={"gradcam": {}, "conditional_occlusion": {}, "input_x_gradient": {}},
                                metrics={"insertion_deletion": {"blur_kernel": 11, "blur_sigma": 5.0}, "average_drop_increase": {}})
    data = explorer_data_from_files(**files, title="two4two-mini · tiny encoder")
    index = write_explorer(tmp_path / "e", data)
    open_page(driver, index, "#methods=" + ",".join(data.methods))
    assert list_ids(driver) == data.image_ids
    shots = canvases(driver)
    assert set(shots) == {f"{m}/{v}" for m in data.methods for v in (1, 2)}
    curves = driver.execute_script("return [...document.querySelectorAll('#curves .curve-panel')].map(p => [p.dataset.curve, p.querySelectorAll('polyline').length])")
    assert dict(curves) == {c: 2 * len(data.methods) for c in ("SI", "SD", "CI_1", "CI_2", "CD_1", "CD_2")}  # image + mean per method
    assert check_table(driver, data, 0) >= 8 * len(data.methods) - 4
    payload = json.loads((index.parent / "data.js").read_text()[len("window.XAI_SSL_EXPLORER = ") : -2])
    assert len(payload["methods"]) == 4
    assert severe(driver) == []
