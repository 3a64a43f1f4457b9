"""Acceptance, in a real browser: file through the web form, get the codes, look the application
up, watch the timeline change as staff act, reopen it — headless Chromium against
`python -m services.all`, as `make run` starts it.

Needs Debian's `chromium` and `chromium-driver` (`scripts/ensure-chromium.sh`, which `make test`
runs) and Python's `selenium`; without them the test is skipped and says why.
"""
from __future__ import annotations

import pytest
import requests

from services.common.auth import mint_token
from services.common.config import DEV_SECRET
from tests.browser import chromium_driver, needs_chromium
from tests.support import all_in_one, poll

try:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - the lock pins selenium; needs_chromium skips then
    pass

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def system(module_amqp_uri, module_databases, tmp_path_factory):
    with all_in_one(module_amqp_uri, module_databases, tmp_path_factory.mktemp("browser")) as base:
        yield base


@pytest.fixture
def browser():
    with chromium_driver() as driver:
        yield driver


def staff(role: str = "admin", unit: str | None = None, user: str = "browser-test") -> dict:
    # the all-in-one process runs with the local run's dev secret
    return {"Authorization": f"Bearer {mint_token(DEV_SECRET, user, role, unit)}"}


def fill(driver, field_id: str, text: str) -> None:
    element = driver.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(text)


def status_of(driver) -> str | None:
    try:
        return driver.find_element(By.ID, "durum").get_attribute("data-status")
    except (NoSuchElementException, StaleElementReferenceException):
        return None  # the page is being replaced: ask again


def timeline(driver) -> list[str]:
    try:
        return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#hareketler li")]
    except StaleElementReferenceException:
        return []


def test_a_citizen_files_follows_the_timeline_and_reopens_in_a_real_browser(system, browser):
    # Pages are replaced under the driver after each POST (303 → GET): retry stale reads.
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,
                                                         NoSuchElementException))
    # 1. File through the web form (intake's /basvuru).
    browser.get(f"{system}/basvuru")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "tr"
    Select(browser.find_element(By.ID, "kind")).select_by_value("complaint")
    Select(browser.find_element(By.ID, "category")).select_by_value("road_damage")
    fill(browser, "description", "Sokağımızın ortasında büyük bir çukur var.")
    fill(browser, "location-district", "Mezitli")
    fill(browser, "location-neighbourhood", "Tece")
    fill(browser, "citizen-first_name", "Ayşe")
    fill(browser, "citizen-last_name", "Demir")
    fill(browser, "citizen-phone", "0555 111 22 33")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    # 2. The codes, shown once.
    tracking_code = wait.until(lambda d: d.find_element(By.ID, "tracking-code")).text.strip()
    security_code = browser.find_element(By.ID, "security-code").text.strip()
    assert tracking_code and security_code

    # 3. Look it up on /takip: assigned once routing has decided.
    def look_up():
        browser.get(f"{system}/takip")
        fill(browser, "tracking_code", tracking_code)
        fill(browser, "security_code", security_code)
        browser.find_element(By.ID, "sorgula").click()
        wait.until(lambda d: d.find_elements(By.ID, "durum") or d.find_elements(By.ID, "hata"))
        return status_of(browser) if browser.find_elements(By.ID, "durum") else None

    assert poll(look_up, lambda status: status == "assigned", 20) == "assigned"
    assert "/takip/basvuru" in browser.current_url and security_code not in browser.current_url
    assert any("Mezitli Belediyesi" in step for step in timeline(browser))

    # 4. Staff act through routing's case API; the citizen's page follows each step.
    inbox = requests.get(f"{system}/api/v1/cases", headers=staff(), timeout=10).json()["items"]
    [case] = [c for c in inbox if (c.get("tracking_code") or "").replace("-", "")
              == tracking_code.replace("-", "")]
    cases = f"{system}/api/v1/cases/{case['application_id']}"
    supervisor = staff("supervisor", case["unit"], user="mez-0010")  # the unit's amir
    for action, body, state, who in (
            ("acknowledge", {}, "acknowledged", staff()),
            ("start", {}, "in_progress", staff()),
            ("resolve", {"result": "Çukur asfaltla kapatıldı."}, "resolved", staff()),
            ("approve", {}, "resolved", supervisor),
            ("close", {}, "closed", staff())):
        answer = requests.post(f"{cases}/{action}", json=body, headers=who, timeout=10)
        assert answer.status_code == 200, answer.text

        def current():
            browser.refresh()
            return status_of(browser)

        assert poll(current, lambda status, state=state: status == state, 20) == state
    steps = timeline(browser)
    assert any("incelemeye aldı" in step for step in steps)
    assert "Çukur asfaltla kapatıldı." in browser.find_element(By.ID, "sonuc").text
    assert "browser-test" not in browser.page_source  # who acted is never shown
    assert "mez-0010" not in browser.page_source

    # 5. Not satisfied: reopen it with a reason.
    fill(browser, "reason", "Çukur bir hafta sonra yeniden açıldı.")
    browser.find_element(By.ID, "yeniden-ac").click()
    wait.until(lambda d: d.find_elements(By.ID, "yeniden-acma-durumu")
               or d.find_elements(By.CSS_SELECTOR, "#durum:not([data-status=closed])"))

    def reopened():
        browser.refresh()
        return timeline(browser)

    steps = poll(reopened, lambda steps: any("yeniden açıldı" in s.lower() for s in steps), 20)
    assert any("Yeniden açma talebiniz alındı" in s for s in steps)
    assert any("Başvurunuz yeniden açıldı" in s for s in steps), steps
    assert status_of(browser) not in ("closed", "resolved")
