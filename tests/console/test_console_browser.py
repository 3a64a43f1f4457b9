"""In headless Chromium: an expert signs in through the form, opens the unit's inbox (read
from routing's real API over HTTP), and signs out; the console is closed to them afterwards.
An expert works a case from the inbox to its resolution with the keyboard, and the supervisor
approves it from the approval queue.

The console's and routing's apps are served over HTTP in this process on the real database
server. Skipped, saying why, without Chromium or selenium."""
from __future__ import annotations

import pytest

from tests.browser import chromium_driver, needs_chromium
from tests.support import serve

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the lock pins selenium; needs_chromium skips then
    pass


@pytest.fixture
def console_config(routed_console_config) -> dict:
    return routed_console_config


@pytest.fixture
def site(app):
    with serve(app) as base:
        yield base


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


def sign_in(driver, wait, site: str, user: str, password: str) -> None:
    driver.get(f"{site}/console/giris")
    wait.until(lambda d: d.find_elements(By.ID, "user"))
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "sign-in").click()
    wait.until(lambda d: d.find_elements(By.ID, "who"))


def press(driver, wait, button_id: str, done: str) -> None:
    """Activate a form's button from the keyboard; wait for the case page's notice."""
    driver.find_element(By.ID, button_id).send_keys(Keys.ENTER)
    wait.until(lambda d: d.current_url.endswith(f"?tamam={done}")
               and d.find_elements(By.ID, "notice"))


@needs_chromium
def test_an_expert_acknowledges_and_resolves_a_case_and_the_supervisor_approves_it(
        site, pages, routing, open_application):
    app_id = open_application("K7M4QX2B4")
    with chromium_driver() as driver:
        wait = WebDriverWait(driver, 15)
        sign_in(driver, wait, site, "mez-0008", pages.PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "a[href='/console/gelen']").click()
        wait.until(lambda d: d.find_elements(By.ID, "inbox"))
        driver.find_element(By.LINK_TEXT, "K7M-4QX-2B4").click()
        wait.until(lambda d: d.find_elements(By.ID, "do-acknowledge"))
        press(driver, wait, "do-acknowledge", "acknowledge")
        assert driver.find_element(By.ID, "case-state").text == "okundu"
        press(driver, wait, "do-start", "start")
        result = driver.find_element(By.ID, "resolve-result")
        assert driver.find_element(By.CSS_SELECTOR, "label[for='resolve-result']")
        result.send_keys("Çukur asfaltla kapatıldı / the pothole was filled")
        press(driver, wait, "do-resolve", "resolve")
        assert driver.find_element(By.ID, "case-result").text.startswith("Çukur asfaltla")
        assert not driver.find_elements(By.ID, "actions")  # nothing left for the expert
        driver.find_element(By.ID, "logout").click()
        wait.until(lambda d: d.find_elements(By.ID, "user"))

        sign_in(driver, wait, site, "mez-0010", pages.PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "a[href='/console/onay']").click()
        wait.until(lambda d: d.find_elements(By.ID, "approvals"))
        driver.find_element(By.LINK_TEXT, "K7M-4QX-2B4").click()
        wait.until(lambda d: d.find_elements(By.ID, "do-approve"))
        assert driver.find_element(By.ID, "case-approval").text.startswith("Onay bekliyor")
        press(driver, wait, "do-approve", "approve")
        assert driver.find_element(By.ID, "case-approval").text.startswith("Onaylandı")
    case = routing.store.get_case(app_id)
    assert (case["state"], case["approved"], case["approved_by"], case["resolved_by"]) == (
        "resolved", True, "mez-0010", "mez-0008")
