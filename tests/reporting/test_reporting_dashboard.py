"""The dashboard page: in headless Chromium a coordinator and a unit supervisor sign in, and every
chart shows the numbers the reports API gives them (each within their scope); without a token,
with a bad one, or asking outside the scope, the page says so instead of showing figures.

Reporting's app is served over HTTP in this process, on the real database server; the charts
are read back from Chart.js itself (`Chart.getChart(canvas).data`). Skipped, saying why,
without Chromium or selenium (the HTTP checks run regardless).
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.common.events import utcnow
from services.reporting.web import create_app
from tests.browser import chromium_driver, needs_chromium
from tests.support import serve

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the lock pins selenium; needs_chromium skips then
    pass

ROADS, PARKS = "mersin_bb.roads", "mersin_bb.parks"


@pytest.fixture
def history(parts, events):
    """Nine applications over the last days, in two units and three categories, some closed
    with SLA outcomes; projected into the buckets."""
    now = utcnow()
    plan = [("road_damage", ROADS, True), ("road_damage", ROADS, True),
            ("road_damage", ROADS, False), ("pothole", ROADS, False),
            ("park", PARKS, True), ("park", PARKS, False), ("park", PARKS, False),
            ("park", PARKS, False), ("noise", None, False)]
    for n, (category, unit, closed) in enumerate(plan):
        at = now - timedelta(days=n % 5 + 1, hours=n)
        receipt = events.received(at=at, category=category)
        stream = [receipt]
        if unit:
            stream.append(events.routed(receipt, at=at + timedelta(minutes=5), unit=unit,
                                        unit_name=unit.split(".")[1].title()))
        if closed:
            stream += [events.case(receipt, "case_closed", "closed",
                                   at=at + timedelta(hours=10 + n)),
                       events.sla(receipt, "sla_outcome_recorded", at=at + timedelta(hours=9),
                                  deadline="resolve", outcome="met" if n else "breached",
                                  completed_at=at + timedelta(hours=9), hours=8,
                                  used_hours=7 if n else 10, overrun_hours=0.0 if n else 2.0)]
        for event in stream:
            parts.store.enqueue(events.loaded(event))
    parts.reports.projector.run(wait=True)


@pytest.fixture
def app(parts, history):
    return create_app(parts)


@pytest.fixture
def site(app):
    with serve(app) as base:
        yield base


def api(app, headers: dict, path: str) -> dict:
    answer = app.test_client().get(path, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def charts(driver) -> dict:
    """What Chart.js drew, per canvas: the labels and each dataset's numbers."""
    return driver.execute_script("""
        var out = {};
        document.querySelectorAll('canvas').forEach(function (c) {
            var chart = Chart.getChart(c);
            out[c.id] = {labels: chart.data.labels,
                         data: chart.data.datasets.map(function (d) { return d.data; })};
        });
        return out;""")


def expected_charts(app, headers: dict) -> tuple[dict, dict]:
    summary = api(app, headers, "/api/v1/reports/summary")
    series = api(app, headers, "/api/v1/reports/series?granularity=day")
    backlog = api(app, headers, "/api/v1/reports/backlog")
    percent = [[None if row[f"{d}_compliance"] is None else round(row[f"{d}_compliance"] * 100, 1)
                for row in summary["sla_by_unit"]] for d in ("read", "resolve")]
    return summary, {
        "chart-trend": {"labels": [row["period"] for row in series["items"]],
                        "data": [[row["received"] for row in series["items"]],
                                 [row["concluded"] for row in series["items"]]]},
        "chart-categories": {"labels": [row["key"] for row in summary["by_category"]],
                             "data": [[row["count"] for row in summary["by_category"]]]},
        "chart-sla": {"labels": [row["name"] or row["key"] for row in summary["sla_by_unit"]],
                      "data": percent},
        "chart-backlog": {"labels": [row["key"] for row in backlog["by_age"]],
                          "data": [[row["count"] for row in backlog["by_age"]]]},
    }


def sign_in(driver, site: str, token: str) -> None:
    driver.get(f"{site}/raporlar/")
    WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.ID, "token"))
    assert driver.current_url.endswith("/raporlar/giris")  # no token: sent to sign in
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form[action='/raporlar/giris'] button").click()
    WebDriverWait(driver, 15).until(lambda d: d.execute_script(
        "return !!document.getElementById('chart-trend') && typeof Chart !== 'undefined' && "
        "!!Chart.getChart(document.getElementById('chart-trend'))"))


@needs_chromium
@pytest.mark.parametrize("who", ["coordinator", "supervisor"])
def test_the_charts_show_the_numbers_the_api_gives_within_the_scope(app, site, staff_headers,
                                                                    config, who):
    from tests.support import mint_token

    unit = PARKS if who == "supervisor" else None
    headers = staff_headers(who, unit)
    summary, wanted = expected_charts(app, headers)
    assert summary["total"] == (4 if unit else 9)  # the supervisor sees the parks unit only
    with chromium_driver() as driver:
        sign_in(driver, site, mint_token(config["STAFF_TOKEN_SECRET"], "rep-0001", who, unit))
        assert charts(driver) == wanted
        assert driver.find_element(By.ID, "fig-received").text == str(summary["total"])
        assert driver.find_element(By.ID, "fig-open").text == str(summary["open"])
        rows = driver.find_elements(By.CSS_SELECTOR, "#table-neighbourhoods tbody th")
        assert [row.text for row in rows] == [row["key"] for row in summary["by_neighbourhood"]]


def test_the_page_refuses_without_a_valid_token_and_outside_the_scope(app, staff_headers,
                                                                      config):
    from tests.support import mint_token

    client = app.test_client()
    assert client.get("/raporlar/").headers["Location"].endswith("/raporlar/giris")
    bad = client.post("/raporlar/giris", data={"token": "not-a-token"})
    assert bad.status_code == 422 and 'id="token-error"' in bad.get_data(as_text=True)
    token = mint_token(config["STAFF_TOKEN_SECRET"], "rep-0002", "supervisor", PARKS)
    signed = client.post("/raporlar/giris", data={"token": token})
    assert signed.status_code == 303
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = client.get("/raporlar/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers[
        "Content-Security-Policy"]
    other = client.get(f"/raporlar/?unit={ROADS}")
    assert other.status_code == 403 and "unit" in other.get_data(as_text=True)
    wrong = client.get("/raporlar/?from=2026-13-01")
    assert wrong.status_code == 422 and "from" in wrong.get_data(as_text=True)
    script = client.get("/raporlar/static/chart-4.5.1.umd.min.js")
    assert script.status_code == 200 and b"Chart.js v4.5.1" in script.data[:200]
