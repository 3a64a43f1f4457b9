"""In headless Chromium: an expert signs in through the form, opens the unit's inbox (read
from routing's real API over HTTP), and signs out; the console is closed to them afterwards.

The console's and routing's apps are served over HTTP in this process on the real database
server. Skipped, saying why, without Chromium or selenium."""
from __future__ import annotations

import eventlet
import pytest
from eventlet import wsgi

from tests.browser import chromium_driver, needs_chromium

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the lock pins selenium; needs_chromium skips then
    pass

@pytest.fixture
def console_config(routed_console_config) -> dict:
    return routed_console_config


@pytest.fixture
def site(app):
    listener = eventlet.listen(("127.0.0.1", 0))
    server = eventlet.spawn(wsgi.server, listener, app, log_output=False)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    server.kill()
    listener.close()


@needs_chromium
def test_an_expert_signs_in_sees_the_inbox_and_signs_out(site, pages, open_application):
    first = open_application("K7M4QX2B1", minutes=1)
    open_application("K7M4QX2B2", minutes=2)
    open_application("K7M4QX2B3", "road_damage", "Yenişehir")
    with chromium_driver() as driver:
        wait = WebDriverWait(driver, 15)
        driver.get(f"{site}/console/")
        wait.until(lambda d: d.find_elements(By.ID, "user"))
        assert driver.current_url.endswith("/console/giris")
        driver.find_element(By.ID, "user").send_keys("mez-0008")
        driver.find_element(By.ID, "password").send_keys(pages.PASSWORD)
        driver.find_element(By.ID, "sign-in").click()
        wait.until(lambda d: d.find_elements(By.ID, "who"))
        assert driver.find_element(By.ID, "who-role").text == "expert"
        assert driver.find_element(By.ID, "who-unit").text == "mezitli_bld.works"
        cookie = driver.get_cookie("acikkapi_console")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert driver.execute_script("return document.cookie") == ""  # out of scripts' reach
        driver.find_element(By.CSS_SELECTOR, "a[href='/console/gelen']").click()
        wait.until(lambda d: d.find_elements(By.ID, "inbox"))
        codes = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#inbox tbody th a")]
        assert codes == ["K7M-4QX-2B1", "K7M-4QX-2B2"]
        driver.find_element(By.LINK_TEXT, "K7M-4QX-2B1").click()
        wait.until(lambda d: d.find_elements(By.ID, "case-code"))
        assert driver.current_url.endswith(f"/console/vaka/{first}")
        driver.find_element(By.ID, "logout").click()
        wait.until(lambda d: d.find_elements(By.ID, "user"))
        assert driver.current_url.endswith("/console/giris")
        assert driver.get_cookie("acikkapi_console") is None
        driver.get(f"{site}/console/gelen")
        wait.until(lambda d: d.find_elements(By.ID, "user"))
        assert driver.current_url.endswith("/console/giris")
