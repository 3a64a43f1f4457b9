"""In a real browser: the signed link followed from another site (a webmail, a messaging app's
web page) opens the status page and lets the citizen rate the result without typing a code.

The session cookie is SameSite=Strict. A browser does not send such a cookie on a redirect that
continues a cross-site navigation, so a `303` from `/t/<token>` landed on a status page without
its session (the lookup form). Headless Chromium against tracking's app served over HTTP in this
process; the "other site" is the same server reached as `localhost` (another site than
`127.0.0.1` to a browser). Skipped, saying why, without Chromium or selenium.
"""
from __future__ import annotations

import pytest

from services.common.links import make_link_token
from services.tracking.web import create_app
from tests.browser import chromium_driver, needs_chromium
from tests.support import serve

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the lock pins selenium; needs_chromium skips then
    pass

pytestmark = needs_chromium


@pytest.fixture
def site(tracking_parts):
    """Tracking's app on a free port, plus `/mail`: a page on "another site" linking to it."""
    app = create_app(tracking_parts)
    links: dict[str, str] = {}

    def dispatch(environ, start_response):
        if environ["PATH_INFO"] == "/mail":
            body = f'<!doctype html><a id="link" href="{links["href"]}">Durum</a>'.encode()
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [body]
        return app(environ, start_response)

    with serve(dispatch) as base:
        yield int(base.rsplit(":", 1)[1]), links


@pytest.fixture
def chromium():
    with chromium_driver() as driver:
        yield driver


def test_a_link_followed_from_another_site_opens_the_page_and_the_result_can_be_rated(
        config, site, chromium, concluded_application, tracking_store):
    port, links = site
    application_id, _ = concluded_application()
    token = make_link_token(config["LINK_SECRET"], application_id)
    links["href"] = f"http://127.0.0.1:{port}/t/{token}"
    chromium.get(f"http://localhost:{port}/mail")
    chromium.find_element(By.ID, "link").click()
    wait = WebDriverWait(chromium, 15)
    wait.until(lambda d: d.current_url.endswith("/takip/basvuru") and d.find_elements(
        By.ID, "durum"))
    assert chromium.find_element(By.ID, "durum").get_attribute("data-status") == "closed"
    assert token not in chromium.current_url

    chromium.find_element(By.CSS_SELECTOR, 'input[name="score"][value="4"]').click()
    chromium.find_element(By.ID, "degerlendir").click()
    wait.until(lambda d: "Değerlendirmeniz: 4/5" in d.page_source)
    assert tracking_store.get(application_id)["satisfaction"]["score"] == 4
