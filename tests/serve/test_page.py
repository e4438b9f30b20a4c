"""The page at / in a real headless Chromium (Debian's chromium and chromium-driver).

Runs whenever selenium and the system Chromium are installed (``scripts/setup.sh --test``
installs both); nothing downloads a browser.
"""

from __future__ import annotations

import json
import shutil
import urllib.request

import numpy as np
import pytest

webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (scripts/setup.sh --test)",
)


@pytest.fixture
def browser(tmp_path):
    from h2q.serve.browser import headless_chromium

    with headless_chromium(tmp_path / "profile", CHROMIUM, CHROMEDRIVER) as driver:
        yield driver


def _indexes(url: str) -> list[dict]:
    with urllib.request.urlopen(url + "/api/indexes", timeout=30) as response:
        return json.loads(response.read())["indexes"]


def test_page_shows_k_results_per_index_and_a_screenshot(demo_server, browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from h2q.serve.browser import run_query

    k = 7
    names = [ix["name"] for ix in _indexes(demo_server.url)]
    run_query(browser, demo_server.url, item=5, k=k)
    rows = browser.find_elements(By.CSS_SELECTOR, ".row")
    assert [r.get_attribute("data-index") for r in rows] == names and len(names) == 3
    for row in rows:
        cells = row.find_elements(By.CSS_SELECTOR, ".result")
        assert len(cells) == k
        assert cells[0].get_attribute("data-id") == "5"  # the query item comes first
        assert "precision@7" in row.find_element(By.CSS_SELECTOR, ".precision").text
        assert "ms (server)" in row.find_element(By.CSS_SELECTOR, ".latency").text
    # every picture loaded (a broken one has naturalWidth 0)
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script(
            "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"
        )
    )
    shot = tmp_path / "page.png"
    browser.save_screenshot(str(shot))
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.std() > 10 and len(np.unique(pixels)) > 50  # not blank


def test_page_frames_results_of_another_class(demo_server, browser):
    """Cells framed as "other" are exactly those whose label differs from the query's."""
    from selenium.webdriver.common.by import By

    from h2q.serve.browser import run_query
    from h2q.serve.launch import post_json

    item, k = 11, 20
    run_query(browser, demo_server.url, item=item, k=k)
    for row in browser.find_elements(By.CSS_SELECTOR, ".row"):
        name = row.get_attribute("data-index")
        body = post_json(demo_server.url + "/api/search", {"index": name, "id": item, "k": k})[1]
        labels = body["results"][0]["labels"]
        framed = [
            "other" in c.get_attribute("class").split()
            for c in row.find_elements(By.CSS_SELECTOR, ".result")
        ]
        assert framed == [lab != labels[0] for lab in labels]
        precision = sum(lab == labels[0] for lab in labels) / k
        assert f"precision@{k} {precision:.2f}" in row.text


def test_page_reports_a_bad_input_without_searching(demo_server, browser):
    from selenium.webdriver.common.by import By

    browser.get(demo_server.url + "/")
    from h2q.serve.browser import wait_for_status

    wait_for_status(browser, "pick a query")
    box = browser.find_element(By.ID, "item-id")
    box.clear()
    box.send_keys("100000")
    browser.find_element(By.ID, "search").click()
    status = browser.find_element(By.ID, "status")
    assert "item id must be an integer from 0 to" in status.text
    assert "error" in status.get_attribute("class")
