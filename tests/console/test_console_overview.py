"""The unit overview (`/console/birim`) and the headline dashboard (`/console/pano`) against
SLA's and reporting's real staff APIs: both apps served over HTTP in this process on the test's
databases; SLA's clocks made by its own `on_event` at a pinned time, reporting's figures by its
own handlers, report files as reporting stores them. Each section stands alone: a service away
fails its section only."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory

from services.common.events import load_event, make_event, utcnow
from services.reporting.service import ReportingService
from tests.envelopes import case, received, routed

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # SLA's clock: a Thursday, 15:00 in Istanbul
WORKS, CLEANING = "mezitli_bld.works", "mezitli_bld.cleaning"
XLSX = b"PK\x03\x04 the works unit's weekly workbook"
PDF = b"%PDF-1.4 the works unit's weekly report"


@pytest.fixture
def console_config(sla_reporting_config) -> dict:
    return sla_reporting_config


def clock_for(sla, application_id: str, code: str, unit: str, hours_ago: float,
              read_hours: int = 4) -> None:
    """A clock of `unit`'s, its case routed `hours_ago` before NOW (`read_hours` working
    hours to read, 24 to resolve)."""
    sla.deadlines.on_event(load_event(make_event("application_routed", application_id, {
        "tracking_code": code, "category": "road_damage", "tier": "district",
        "institution": unit.split(".")[0], "institution_name": "Mezitli Belediyesi",
        "unit": unit, "unit_name": "Birim", "rule": "test", "read_hours": read_hours,
        "resolve_hours": 24}, occurred_at=NOW - timedelta(hours=hours_ago))))


def listed(sla, kind: str, unit: str) -> list[str]:
    """What SLA itself lists for `unit`."""
    found = sla.deadlines.lists(kind, limit=100, unit=unit, institution=None, within=None)
    return [clock["application_id"] for clock in found["items"]]


def deliver(reporting, *envelopes: dict) -> None:
    service = worker_factory(ReportingService, parts=reporting)
    for envelope in envelopes:
        service.record_events([load_event(envelope)])


def open_in(reporting, unit: str, days_ago: int, category: str = "road_damage") -> dict:
    receipt = received(at=utcnow() - timedelta(days=days_ago), category=category)
    deliver(reporting, receipt, routed(receipt, at=utcnow() - timedelta(days=days_ago),
                                       unit=unit, unit_name="Fen İşleri",
                                       institution_name="Mezitli Belediyesi"))
    return receipt


def store_file(reporting, file_id: str, unit: str) -> None:
    reporting.store.files.insert_one({
        "_id": file_id, "kind": "weekly", "period": "2026-W48", "scope_type": "unit",
        "scope": unit, "unit": unit, "institution": unit.split(".")[0], "total": 3,
        "content": XLSX, "pdf": PDF, "created_at": datetime(2026, 11, 30, 6, tzinfo=UTC)})


def sign_in_totp(app, pages, clock, user: str):
    client = app.test_client()
    assert pages.sign_in(client, user).headers["Location"] == "/console/dogrulama"
    form = client.get("/console/dogrulama").get_data(as_text=True)
    done = client.post("/console/dogrulama", data={"code": pages.totp_code(clock.now),
                                                   "csrf": pages.csrf_of(form)})
    assert done.status_code == 303
    return client


def supervisor(client, pages):
    assert pages.sign_in(client, "mez-0010").status_code == 303  # Fen İşleri's supervisor
    return client


# -- the unit overview ---------------------------------------------------------------------------


def test_the_supervisor_sees_the_units_backlog_late_cases_and_reports(
        client, pages, sla, reporting):
    clock_for(sla, "late-1", "K7M4QX2D9", WORKS, hours_ago=24 * 6)
    clock_for(sla, "late-other", "K7M4QX2D9", CLEANING, hours_ago=24 * 6)
    # two days into 24 working hours: past the first warning (50 %), not yet due
    clock_for(sla, "soon-1", "K7M4QX2D9", WORKS, hours_ago=48, read_hours=24)
    for days in (1, 2, 10):
        open_in(reporting, WORKS, days)
    open_in(reporting, CLEANING, 1)
    store_file(reporting, "weekly|mezitli_bld.works|2026-W48", WORKS)
    store_file(reporting, "weekly|mezitli_bld.cleaning|2026-W48", CLEANING)

    answer = supervisor(client, pages).get("/console/birim")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200, html
    assert 'href="/console/birim"' in client.get("/console/").get_data(as_text=True)
    assert re.search(r'id="backlog-open">3<', html)  # the works unit's three, not cleaning's
    overdue = re.search(r'<table id="overdue">.*?</table>', html, re.S)
    assert overdue and re.findall(r'data-application="([^"]+)"', overdue.group(0)) == \
        listed(sla, "overdue", WORKS) == ["late-1"]
    at_risk = re.search(r'<section aria-labelledby="at-risk-heading">.*?</section>', html, re.S)
    shown = re.findall(r'data-application="([^"]+)"', at_risk.group(0))
    assert shown == listed(sla, "at_risk", WORKS) == ["soon-1"]
    assert "late-other" not in html
    assert re.findall(r'data-file="([^"]+)"', html) == ["weekly|mezitli_bld.works|2026-W48"]
    assert 'class="bar w' in html


def test_a_report_file_downloads_with_its_bytes_and_type_and_another_units_is_404(
        client, pages, reporting):
    store_file(reporting, "weekly|mezitli_bld.works|2026-W48", WORKS)
    store_file(reporting, "weekly|mezitli_bld.cleaning|2026-W48", CLEANING)
    supervisor(client, pages)
    html = client.get("/console/birim").get_data(as_text=True)
    link = re.search(r'href="(/console/birim/rapor/[^"]+\?bicim=xlsx)"', html).group(1)
    workbook = client.get(link)
    assert workbook.status_code == 200
    assert workbook.data == XLSX
    assert workbook.mimetype == \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert workbook.headers["Content-Disposition"].startswith("attachment")
    printable = client.get(link.replace("bicim=xlsx", "bicim=pdf"))
    assert (printable.status_code, printable.data, printable.mimetype) == (
        200, PDF, "application/pdf")
    theirs = client.get("/console/birim/rapor/weekly%7Cmezitli_bld.cleaning%7C2026-W48")
    assert theirs.status_code == 404 and theirs.data != XLSX
    assert client.get(link.replace("bicim=xlsx", "bicim=doc")).status_code == 422


def test_sla_away_fails_its_two_sections_only(client, pages, parts, reporting):
    open_in(reporting, WORKS, 1)
    store_file(reporting, "weekly|mezitli_bld.works|2026-W48", WORKS)
    parts.sla.base_url = "http://127.0.0.1:9"  # nothing listens there
    answer = supervisor(client, pages).get("/console/birim")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert 'id="overdue-error"' in html and 'id="at-risk-error"' in html
    assert re.search(r'id="backlog-open">1<', html)
    assert 'data-file="weekly|mezitli_bld.works|2026-W48"' in html


def test_reporting_away_fails_the_backlog_and_the_files_only(client, pages, parts, sla):
    clock_for(sla, "late-1", "K7M4QX2D9", WORKS, hours_ago=24 * 6)
    parts.reporting.base_url = "http://127.0.0.1:9"
    html = supervisor(client, pages).get("/console/birim").get_data(as_text=True)
    assert 'id="backlog-error"' in html and 'id="files-error"' in html
    assert 'data-application="late-1"' in html


def test_an_expert_has_no_unit_overview_nor_dashboard_nor_downloads(client, pages, reporting):
    store_file(reporting, "weekly|mezitli_bld.works|2026-W48", WORKS)
    assert pages.sign_in(client, "mez-0008").status_code == 303
    assert client.get("/console/birim").status_code == 403
    assert client.get("/console/pano").status_code == 403
    download = client.get("/console/birim/rapor/weekly%7Cmezitli_bld.works%7C2026-W48")
    assert download.status_code == 403 and download.data != XLSX
    home = client.get("/console/").get_data(as_text=True)
    assert 'href="/console/birim"' not in home and 'href="/console/pano"' not in home


def test_signed_out_the_pages_send_to_the_login(client):
    for path in ("/console/birim", "/console/pano", "/console/sorgu",
                 "/console/birim/rapor/x"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["Location"] == "/console/giris"


# -- the headline dashboard ----------------------------------------------------------------------


def test_the_mayor_sees_the_last_30_days_without_pasting_a_token(
        app, pages, clock, reporting):
    concluded = open_in(reporting, WORKS, 3)
    deliver(reporting, case(concluded, "case_closed", "closed",
                            at=utcnow() - timedelta(days=1)))
    open_in(reporting, WORKS, 2)
    open_in(reporting, WORKS, 2, category="cleaning")
    mayor = sign_in_totp(app, pages, clock, "mez-0001")
    assert 'href="/console/pano"' in mayor.get("/console/").get_data(as_text=True)

    answer = mayor.get("/console/pano")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200, html
    summary = reporting.reports.summary(None, None, {"institution": {"$in": ["mezitli_bld"]}})
    assert summary["total"] == 3 and summary["concluded"] == 1
    assert re.search(r'id="received">3<', html)
    assert re.search(r'id="concluded">1<', html)
    assert re.search(r'id="open">2<', html)
    categories = re.search(r'<table id="categories".*?</table>', html, re.S).group(0)
    assert re.findall(r'<th scope="row">([^<]+)</th>', categories) == ["road_damage",
                                                                        "cleaning"]
    trend = re.search(r'<table id="trend".*?</table>', html, re.S).group(0)
    rows = re.findall(r'data-period="([^"]+)"><th scope="row" class="when">[^<]+</th>'
                      r'<td class="received">(\d+)</td><td class="concluded">(\d+)</td>', trend)
    assert sum(int(r) for _, r, _ in rows) == 3 and sum(int(c) for _, _, c in rows) == 1
    assert len(rows) >= 28
    assert "<script" not in html and "style=" not in html  # the CSP allows neither inline


def test_reporting_away_is_shown_in_the_dashboards_sections(app, pages, clock, parts):
    parts.reporting.base_url = "http://127.0.0.1:9"
    coordinator = app.test_client()
    assert pages.sign_in(coordinator, "mez-0004").status_code == 303
    answer = coordinator.get("/console/pano")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert 'id="summary-error"' in html and 'id="trend-error"' in html


# -- the pure helpers ----------------------------------------------------------------------------


def test_a_bars_class_is_its_share_in_steps_of_five_and_never_looks_like_nothing():
    from services.console.overview import bar_class, percent, top

    assert [bar_class(v, 40) for v in (0, 1, 10, 39, 40, 80)] == [
        "w0", "w5", "w25", "w100", "w100", "w100"]
    assert bar_class(None, 10) == bar_class(3, 0) == bar_class(0.5, None) == "w0"
    assert bar_class(0.874, 1) == "w85"
    assert (percent(0.8766), percent(None), percent(1)) == ("%87,7", "—", "%100,0")
    rows = [{"key": "b", "count": 2}, {"key": "a", "count": 2}, {"key": "c", "count": 5}]
    assert [row["key"] for row in top(rows, 2)] == ["c", "a"]
