"""The mayor's office page against SLA's and reporting's real staff APIs: both apps served over
HTTP in this process on the test's databases, a case escalated to the top by SLA's own clock,
a week of conclusions delivered to reporting's own handlers; the call-back note goes through
the page's form and lands in reporting."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory

from services.common.events import load_event, make_event
from services.reporting.service import ReportingService
from tests.envelopes import case, received, routed

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
WEEK = "2025-W12"  # its list draws from the applications concluded in 2025-W11


@pytest.fixture
def console_config(sla_reporting_config) -> dict:
    return sla_reporting_config


def escalate_to_the_top(sla, application_id: str, code: str) -> None:
    """A case of Mezitli's works unit routed six days before NOW, swept: level 4, the mayor."""
    event = load_event(make_event("application_routed", application_id, {
        "tracking_code": code, "category": "road_damage", "tier": "district",
        "institution": "mezitli_bld", "institution_name": "Mezitli Belediyesi",
        "unit": "mezitli_bld.works", "unit_name": "Fen İşleri", "rule": "test",
        "read_hours": 4, "resolve_hours": 24}, occurred_at=NOW - timedelta(days=6)))
    sla.deadlines.on_event(event)
    sla.deadlines.wake(application_id)


def conclude_last_week(reporting) -> list[str]:
    service = worker_factory(ReportingService, parts=reporting)
    concluded = []
    for n in range(5):
        at = datetime(2025, 3, 10 + n, 9, tzinfo=UTC)
        receipt = received(at=at - timedelta(days=1))
        for envelope in (receipt, routed(receipt, at=at - timedelta(days=1),
                                         unit="mezitli_bld.works", unit_name="Fen İşleri",
                                         institution_name="Mezitli Belediyesi"),
                         case(receipt, "case_closed", "closed", at=at)):
            service.record_events([load_event(envelope)])
        concluded.append(receipt["application_id"])
    return concluded


def sign_in_mayor(app, pages, clock):
    client = app.test_client()
    assert pages.sign_in(client, "mez-0001").headers["Location"] == "/console/dogrulama"
    form = client.get("/console/dogrulama").get_data(as_text=True)
    done = client.post("/console/dogrulama", data={"code": pages.totp_code(clock.now),
                                                   "csrf": pages.csrf_of(form)})
    assert done.status_code == 303 and done.headers["Location"] == "/console/"
    return client


def test_the_mayor_sees_what_reached_the_top_and_records_a_call_back(
        app, pages, clock, sla, reporting):
    escalate_to_the_top(sla, "top-1", "K7M4QX2D9")
    concluded = conclude_last_week(reporting)
    mayor = sign_in_mayor(app, pages, clock)
    assert 'href="/console/baskanlik"' in mayor.get("/console/").get_data(as_text=True)

    html = mayor.get(f"/console/baskanlik?hafta={WEEK}").get_data(as_text=True)
    assert re.findall(r'<tr data-application="([^"]+)">', html) == ["top-1"]
    assert "K7M-4QX-2D9" in html
    listed = re.findall(r'<li data-application="([^"]+)">', html)
    assert len(listed) == 4 and set(listed) <= set(concluded)
    assert "+905551112233" in html  # the contact, read (and audited) by reporting and intake

    chosen = listed[0]
    saved = mayor.post(f"/console/baskanlik/geri-arama/{WEEK}/{chosen}", data={
        "csrf": pages.csrf_of(html), "reached": "evet", "note": "Memnun kaldı."})
    assert saved.status_code == 303
    assert saved.headers["Location"].endswith(f"tamam={chosen}#geri-arama")
    [item] = [i for i in reporting.reports.callbacks(WEEK, {}, lambda _: None)["items"]
              if i["application_id"] == chosen]
    assert (item["reached"], item["note"], item["noted_by"]) == (True, "Memnun kaldı.",
                                                                 "mez-0001")
    shown = mayor.get(saved.headers["Location"]).get_data(as_text=True)
    assert 'id="notice"' in shown and "Memnun kaldı." in shown


def test_a_call_back_without_its_outcome_or_off_the_list_is_refused_on_the_page(
        app, pages, clock, reporting):
    concluded = conclude_last_week(reporting)
    mayor = sign_in_mayor(app, pages, clock)
    html = mayor.get(f"/console/baskanlik?hafta={WEEK}").get_data(as_text=True)
    chosen = re.findall(r'<li data-application="([^"]+)">', html)[0]
    missing = mayor.post(f"/console/baskanlik/geri-arama/{WEEK}/{chosen}",
                         data={"csrf": pages.csrf_of(html), "note": "?"})
    assert missing.status_code == 422 and "reached" in missing.get_data(as_text=True)
    off_list = next(a for a in concluded if a not in html)
    refused = mayor.post(f"/console/baskanlik/geri-arama/{WEEK}/{off_list}",
                         data={"csrf": pages.csrf_of(html), "reached": "hayir"})
    assert refused.status_code == 404
    forged = mayor.post(f"/console/baskanlik/geri-arama/{WEEK}/{chosen}",
                        data={"csrf": "forged", "reached": "evet"})
    assert forged.status_code == 403
    assert all(i.get("noted_at") is None
               for i in reporting.reports.callbacks(WEEK, {}, lambda _: None)["items"])


def test_an_expert_has_no_mayor_s_office_page(client, pages):
    pages.sign_in(client, "mez-0008")
    assert client.get("/console/baskanlik").status_code == 403
