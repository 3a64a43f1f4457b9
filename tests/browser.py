"""Headless Chromium for the page tests: where it is, whether it can run, and a driver.

Needs Debian's `chromium` and `chromium-driver` (`scripts/ensure-chromium.sh`, which `make test`
runs) and Python's `selenium`; without them the tests using `needs_chromium` are skipped and
say why.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=420,900")  # a phone-sized window: the pages are mobile first

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:  # pragma: no cover - the lock pins selenium
    webdriver = None

needs_chromium = pytest.mark.skipif(
    webdriver is None or not CHROMIUM or not DRIVER,
    reason="headless Chromium unavailable: install Debian's chromium and chromium-driver "
           "(scripts/ensure-chromium.sh does it as root) and selenium (requirements.lock)")


@contextmanager
def chromium_driver() -> Iterator:
    """A headless Chromium with a fresh profile, quit and removed on leaving."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="acikkapi-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
