"""Drive the page in a headless system Chromium (the page test and the screenshot script).

Uses selenium with Debian's ``chromium`` and ``chromium-driver`` given by path, so that nothing
downloads a browser or a driver. The flags keep Chromium off the network and away from the
user's profile.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["CHROMIUM_FLAGS", "headless_chromium", "run_query", "wait_for_status"]

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


@contextmanager
def headless_chromium(
    profile: str | os.PathLike,
    chromium: str = "/usr/bin/chromium",
    chromedriver: str = "/usr/bin/chromedriver",
    size: tuple[int, int] = (1280, 900),
) -> Iterator[Any]:
    """A selenium ``WebDriver`` on headless Chromium with a fresh profile folder ``profile``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={os.fspath(profile)}")
    options.add_argument(f"--window-size={size[0]},{size[1]}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_status(driver: Any, text: str, timeout: float = 60) -> None:
    """Wait until the page's status line contains ``text``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: text in d.find_element(By.ID, "status").text)


def run_query(driver: Any, url: str, item: int, k: int, timeout: float = 60) -> None:
    """Open the page, search for database item ``item`` with ``k``, wait for the rows."""
    from selenium.webdriver.common.by import By

    driver.get(url.rstrip("/") + "/")
    wait_for_status(driver, "pick a query", timeout)
    for field, value in (("item-id", item), ("k", k)):
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(str(value))
    driver.find_element(By.ID, "search").click()
    wait_for_status(driver, f"top {k} of item {item}", timeout)
