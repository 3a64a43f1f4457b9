"""The citizens' pages: lookup form, status page, signed SMS link, reopen and rating, CSRF."""
from __future__ import annotations

import re

import pytest

from services.common.codes import display_tracking_code, new_tracking_code
from services.common.links import make_link_token
from services.tracking.web import create_app


@pytest.fixture
def browser(tracking_parts):
    """A test client that keeps cookies, like a browser (over the parts `handle` folds into)."""
    return create_app(tracking_parts).test_client()


def csrf(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def look_up(browser, code: str, security: str = "SECRETCODE1"):
    token = csrf(browser.get("/takip"))
    return browser.post("/takip", data={"csrf_token": token, "tracking_code": code,
                                        "security_code": security})


def test_the_lookup_form_is_turkish_first_labelled_and_needs_no_script(browser):
    page = browser.get("/takip")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="tr">' in html and 'lang="en"' in html
    assert '<label for="tracking_code">' in html and '<label for="security_code">' in html
    assert "<script" not in html
    assert page.headers["Cache-Control"] == "no-store"
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_a_lookup_leads_to_the_status_page_without_codes_in_any_url(
    browser, concluded_application
):
    _, code = concluded_application()
    response = look_up(browser, display_tracking_code(code).lower())
    assert response.status_code == 303
    assert response.headers["Location"] == "/takip/basvuru"
    status = browser.get("/takip/basvuru")
    html = status.get_data(as_text=True)
    assert status.status_code == 200
    assert 'data-status="closed"' in html
    assert "Çukur kapatıldı." in html  # the result
    assert "Yol Yapım Dairesi Başkanlığı" in html
    assert 'id="yeniden-ac"' in html and 'name="score"' in html  # reopen and rating offered
    assert "SECRETCODE1" not in html


def test_wrong_and_unknown_codes_get_the_same_page(browser, concluded_application):
    _, code = concluded_application()
    wrong = look_up(browser, code, "WRONGCODE1")
    unknown = look_up(browser, display_tracking_code(new_tracking_code()))
    assert wrong.status_code == unknown.status_code == 404
    strip = re.compile(r'name="(csrf_token|tracking_code)"[^>]*>')
    assert strip.sub("", wrong.get_data(as_text=True)) == strip.sub(
        "", unknown.get_data(as_text=True))


def test_a_form_posted_without_its_csrf_token_changes_nothing(browser, concluded_application):
    _, code = concluded_application()
    response = browser.post("/takip", data={"tracking_code": code,
                                            "security_code": "SECRETCODE1"})
    assert response.status_code == 400
    assert browser.get("/takip/basvuru").status_code == 303  # nothing was opened


def test_a_malformed_code_is_named_on_the_form(browser):
    code = new_tracking_code()
    response = look_up(browser, code[:-1] + ("A" if code[-1] != "A" else "B"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="tracking_code_error"' in html and 'aria-invalid="true"' in html


def test_the_signed_sms_link_opens_the_status_without_codes(
    config, browser, concluded_application
):
    application_id, _ = concluded_application()
    token = make_link_token(config["LINK_SECRET"], application_id)
    response = browser.get(f"/t/{token}")
    # a page that goes on by itself (a same-site navigation: see the browser test below)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="0; url=/takip/basvuru">' in html
    assert 'href="/takip/basvuru"' in html and "<script" not in html  # and a link, no script
    assert token not in html
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert 'data-status="closed"' in browser.get("/takip/basvuru").get_data(as_text=True)
    forged = make_link_token("another secret", application_id)
    assert browser.get(f"/t/{forged}").status_code == 404
    assert browser.get(f"/t/{token[:-2]}xx").status_code == 404


def test_the_link_alone_is_enough_to_rate_the_result_and_the_rating_shows_after(
    config, browser, concluded_application, tracking_store
):
    application_id, _ = concluded_application()
    browser.get(f"/t/{make_link_token(config['LINK_SECRET'], application_id)}")
    status = browser.get("/takip/basvuru")
    assert 'name="score"' in status.get_data(as_text=True)
    without_token = browser.post("/takip/memnuniyet", data={"score": "5"})
    assert without_token.status_code == 400  # CSRF, as every form here
    rated = browser.post("/takip/memnuniyet", data={"csrf_token": csrf(status), "score": "5"})
    assert rated.status_code == 303
    html = browser.get("/takip/basvuru").get_data(as_text=True)
    assert "Değerlendirmeniz: 5/5" in html and 'name="score"' not in html
    assert tracking_store.get(application_id)["satisfaction"]["score"] == 5


def test_reopen_and_rating_from_the_status_page(browser, concluded_application, tracking_store):
    application_id, code = concluded_application()
    look_up(browser, code)
    token = csrf(browser.get("/takip/basvuru"))
    empty = browser.post("/takip/yeniden-ac", data={"csrf_token": token, "reason": ""})
    assert empty.status_code == 422 and 'id="reason_error"' in empty.get_data(as_text=True)
    done = browser.post("/takip/yeniden-ac", data={"csrf_token": token,
                                                   "reason": "Çukur yine açıldı"})
    assert done.status_code == 303
    html = browser.get("/takip/basvuru").get_data(as_text=True)
    assert 'id="yeniden-acma-durumu"' in html and 'id="yeniden-ac"' not in html
    rated = browser.post("/takip/memnuniyet", data={"csrf_token": token, "score": "4"})
    assert rated.status_code == 303
    assert "Değerlendirmeniz: 4/5" in browser.get("/takip/basvuru").get_data(as_text=True)
    types = [e["type"] for e in tracking_store.get(application_id)["timeline"]]
    assert types[-2:] == ["reopen_requested", "satisfaction_recorded"]
    [event] = [e for e in tracking_store.applications.find_one({"_id": application_id})[
        "_outbox"] if e["type"] == "satisfaction_recorded"]
    assert event["data"]["source"] == "web"


def test_closing_the_page_forgets_the_application_on_this_browser(
    browser, concluded_application
):
    _, code = concluded_application()
    look_up(browser, code)
    token = csrf(browser.get("/takip/basvuru"))
    browser.post("/takip/kapat", data={"csrf_token": token})
    assert browser.get("/takip/basvuru").status_code == 303
