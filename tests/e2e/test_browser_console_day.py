"""Acceptance of issue 13, in a real browser: one day's work across the console, the citizen's
tracking page and the SLA's escalation — headless Chromium against `python -m services.all`
with the sample staff list (README, "The staff console").

1. The call centre (the coordinator's desk) finds a citizen by TCKN and files their phone
   complaint with seed 004's simplified form; the tracking code is read out.
2. The unit's expert acknowledges it, asks the citizen for information, resumes and resolves.
3. The supervisor approves; the coordination centre concludes it (closed, the citizen told).
4. The citizen reopens it from the tracking page.
5. The mayor's office signs in with its second factor, sees a case that climbed to the top
   (an earlier application of the same citizen under a policy that sends an unread case to the
   mayor after a few seconds, round the clock — real time, no clock is faked), and records a
   call-back note for the concluded one on the list drawn from this week's conclusions.
"""
from __future__ import annotations

from datetime import date, timedelta

import pyotp
import pytest
import requests

from services.common.auth import mint_token
from services.common.config import DEV_SECRET
from tests.browser import chromium_driver, needs_chromium
from tests.support import SAMPLE_APPLICATION, all_in_one, poll

try:
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - the lock pins selenium; needs_chromium skips then
    pass

pytestmark = needs_chromium

PASSWORD = "yerel-parola-2026"  # the sample staff list's (README)
TOTP_SECRET = "ACIKKAPIYERELDEVTOTPSECRETLOCAL2"
TCKN = "10000000146"
ESCALATING = "cleaning"  # the category the short policy is put on


@pytest.fixture(scope="module")
def system(module_amqp_uri, module_databases, tmp_path_factory):
    with all_in_one(module_amqp_uri, module_databases,
                    tmp_path_factory.mktemp("console-day")) as base:
        yield base


@pytest.fixture
def browser():
    with chromium_driver() as driver:
        yield driver


def admin() -> dict:
    return {"Authorization": f"Bearer {mint_token(DEV_SECRET, 'day-test', 'admin', None)}"}


def fill(driver, field_id: str, text: str) -> None:
    element = driver.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(text)


class Console:
    """The browser as one member of staff after another."""

    def __init__(self, driver, base: str):
        self.driver, self.base = driver, base
        self.wait = WebDriverWait(driver, 20, ignored_exceptions=(
            StaleElementReferenceException, NoSuchElementException))

    def until(self, condition):
        """`wait.until(condition)`, failing with the page's text (what the browser showed)."""
        try:
            return self.wait.until(condition)
        except TimeoutException:
            text = self.driver.find_element(By.TAG_NAME, "body").text
            raise AssertionError(f"{self.driver.current_url}:\n{text[:2000]}") from None

    def open(self, path: str) -> None:
        self.driver.get(f"{self.base}/console{path}")

    def sign_in(self, user: str, totp: bool = False) -> None:
        self.open("/giris")
        fill(self.driver, "user", user)
        fill(self.driver, "password", PASSWORD)
        self.driver.find_element(By.ID, "sign-in").click()
        if totp:
            self.until(lambda d: d.find_elements(By.ID, "code"))
            fill(self.driver, "code", pyotp.TOTP(TOTP_SECRET).now())
            self.driver.find_element(By.ID, "verify").click()
        self.until(lambda d: d.find_elements(By.ID, "logout"))

    def sign_out(self) -> None:
        self.driver.find_element(By.ID, "logout").click()
        self.until(lambda d: d.find_elements(By.ID, "sign-in"))

    def act(self, application_id: str, action: str, **fields: str) -> None:
        """Open the case, fill the action's form and send it; wait for the notice."""
        self.open(f"/vaka/{application_id}")
        self.until(lambda d: d.find_elements(By.ID, f"do-{action}"))
        for field_id, text in fields.items():
            fill(self.driver, field_id, text)
        self.driver.find_element(By.ID, f"do-{action}").click()
        self.until(lambda d: d.find_elements(By.ID, "notice"))

    def state(self, application_id: str) -> str:
        self.open(f"/vaka/{application_id}")
        return self.until(lambda d: d.find_element(By.ID, "case-state")).text

    def linked(self, table_id: str) -> list[str]:
        """The application ids a list page links to."""
        rows = self.driver.find_elements(By.CSS_SELECTOR, f"#{table_id} a[href*='/vaka/']")
        return [row.get_attribute("href").rsplit("/", 1)[1] for row in rows]


def test_one_day_of_work_from_the_desk_to_the_mayors_call_back(system, browser):
    # Earlier today the citizen filed online; under this policy an unread case goes to the
    # mayor's profile within seconds.
    policy = requests.put(f"{system}/api/v1/sla/policies", headers=admin(), timeout=10, json={
        "scope": {"category": ESCALATING}, "settings": {
            "read_hours": 0.001, "unread_to_mayor": True, "calendar": "round_the_clock"}})
    assert policy.status_code in (200, 201), policy.text
    earlier = requests.post(f"{system}/api/v1/applications", timeout=10, json=dict(
        SAMPLE_APPLICATION, category=ESCALATING, description="Parkın yanında çöp birikti."))
    assert earlier.status_code == 201, earlier.text
    escalated_id = earlier.json()["application_id"]

    console = Console(browser, system)
    # 1. The call centre: the citizen found by TCKN, the phone complaint filed.
    console.sign_in("mez-0004")
    console.open("/masa")
    fill(browser, "find-tckn", TCKN)
    browser.find_element(By.ID, "find-tckn").submit()
    console.until(lambda d: d.find_elements(By.ID, "history") or d.find_elements(
        By.ID, "history-empty") or d.find_elements(By.ID, "refused")
        or d.find_elements(By.ID, "not-found"))
    assert browser.find_elements(By.ID, "history"), browser.find_element(By.TAG_NAME,
                                                                         "main").text[:1500]
    assert browser.find_element(By.ID, "first_name").get_attribute("value") == "Ayşe"
    Select(browser.find_element(By.ID, "channel")).select_by_value("call_centre")
    Select(browser.find_element(By.ID, "kind")).select_by_value("complaint")
    fill(browser, "category", "road_damage")
    fill(browser, "district", "Mezitli")
    fill(browser, "neighbourhood", "Tece")
    fill(browser, "description", "Telefonla bildirildi: Tece'de yolda derin bir çukur var.")
    browser.find_element(By.ID, "desk-form").submit()
    code = console.until(lambda d: d.find_element(By.ID, "filed-code")).text.strip()
    security = browser.find_element(By.ID, "filed-security").text.strip()
    assert code and security
    console.sign_out()

    # 2. The expert finds it in the unit's inbox and works it.
    console.sign_in("mez-0008")

    def in_inbox() -> list[str]:
        console.open("/gelen")
        console.until(lambda d: d.find_elements(By.ID, "inbox")
                           or d.find_elements(By.ID, "inbox-empty"))
        return [row.get_attribute("href").rsplit("/", 1)[1] for row in
                browser.find_elements(By.CSS_SELECTOR, "#inbox a[href*='/vaka/']")
                if row.text.replace("-", "") == code.replace("-", "")]

    found = poll(in_inbox, bool, 30)
    assert found, "the desk's complaint never reached the unit's inbox"
    case_id = found[0]
    console.act(case_id, "acknowledge")
    console.act(case_id, "start")
    console.act(case_id, "wait", **{"wait-reason": "Çukurun tam adresi ve bir fotoğraf."})
    console.act(case_id, "resume")
    console.act(case_id, "resolve", **{"resolve-result": "Çukur asfaltla kapatıldı."})
    assert console.state(case_id) == "çözüldü, onay bekliyor"
    console.sign_out()

    # 3. The supervisor approves from the approval queue; the coordination centre concludes.
    console.sign_in("mez-0010")
    console.open("/onay")
    assert case_id in console.linked("approvals")
    console.act(case_id, "approve")
    console.sign_out()
    console.sign_in("mez-0004")
    console.open("/sonuclandir")
    assert case_id in console.linked("approvals")
    console.act(case_id, "close")
    assert console.state(case_id) == "kapatıldı"
    console.sign_out()

    # 4. The citizen is not satisfied and reopens it from the tracking page.
    def tracked_status() -> str | None:
        browser.get(f"{system}/takip")
        fill(browser, "tracking_code", code)
        fill(browser, "security_code", security)
        browser.find_element(By.ID, "sorgula").click()
        console.until(lambda d: d.find_elements(By.ID, "durum")
                           or d.find_elements(By.ID, "hata"))
        found = browser.find_elements(By.ID, "durum")
        return found[0].get_attribute("data-status") if found else None

    assert poll(tracked_status, lambda status: status == "closed", 20) == "closed"
    fill(browser, "reason", "Çukur iki gün sonra yeniden açıldı.")
    browser.find_element(By.ID, "yeniden-ac").click()
    console.until(lambda d: d.find_elements(By.ID, "yeniden-acma-durumu")
                       or d.find_elements(By.CSS_SELECTOR, "#durum:not([data-status=closed])"))
    assert poll(tracked_status, lambda status: status not in (None, "closed"), 20) \
        not in (None, "closed")

    # 5. The mayor's office: the escalated case, and the call-back note.
    console.sign_in("mez-0001", totp=True)

    def at_the_top() -> list[str]:
        console.open("/baskanlik")
        console.until(lambda d: d.find_elements(By.ID, "top")
                           or d.find_elements(By.ID, "top-empty"))
        return [row.get_attribute("data-application")
                for row in browser.find_elements(By.CSS_SELECTOR, "#top tr[data-application]")]

    # the minute of its read deadline ends, then the sweep (every 5 s) fires it
    assert escalated_id in poll(at_the_top, lambda ids: escalated_id in ids, 100)
    next_week = (date.today() + timedelta(days=7)).isocalendar()
    week = f"{next_week.year}-W{next_week.week:02d}"  # drawn from this week's conclusions
    console.open(f"/baskanlik?hafta={week}")
    note = console.until(lambda d: d.find_element(By.ID, f"note-{case_id}"))
    note.send_keys("Vatandaşa ulaşıldı; yeniden açılan çukur için ekip yönlendirildi.")
    form = note.find_element(By.XPATH, "./ancestor::form")
    form.find_element(By.CSS_SELECTOR, "[name=reached][value=evet]").click()
    form.submit()
    console.until(lambda d: d.find_elements(By.ID, f"noted-{case_id}"))
    assert "Vatandaşa ulaşıldı" in browser.find_element(By.ID, "calls").text
