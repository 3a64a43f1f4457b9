"""The summary report over HTTP: staff only, dates validated, counts per local day.

Summaries are filled through the service's own handlers (`worker_factory` with the real parts,
the same the app reads), so these tests need no broker traffic.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory

from services.common.auth import mint_token
from services.reporting.service import ReportingService
from services.reporting.web import create_app
from tests.support import bearer

SUMMARY = "/api/v1/reports/summary"
MARCH = {"from": "2025-03-01", "to": "2025-03-31"}


@pytest.fixture
def client(parts):
    return create_app(parts).test_client()


@pytest.fixture
def deliver(parts, events):
    """Hand an envelope to the matching handler, as the bus would (on the app's parts)."""
    service = worker_factory(ReportingService, parts=parts)

    def _deliver(envelope: dict) -> dict:
        service.record_events([events.loaded(envelope)])
        return envelope

    return _deliver


@pytest.fixture
def march(deliver, events):
    """Five applications around March 2025 (Istanbul time) and one routing with no receipt."""
    def at(day: str) -> datetime:
        return datetime.fromisoformat(day).replace(tzinfo=UTC)

    a = deliver(events.received(at=at("2025-03-10T10:00"), channel="web"))
    deliver(events.routed(a, at=at("2025-03-10T10:01")))
    b = deliver(events.received(at=at("2025-03-12T08:00"), channel="call_centre",
                                district="Mezitli"))
    deliver(events.routed(b, at=at("2025-03-12T08:05")))
    # 00:30 on 1 April in Istanbul: outside March although it is still 31 March in UTC
    deliver(events.received(at=at("2025-03-31T21:30"), category="noise", district=None))
    # 00:30 on 1 March in Istanbul: inside March although it is still February in UTC
    deliver(events.received(at=at("2025-02-28T21:30"), category="noise", channel="sms"))
    e = deliver(events.received(at=at("2025-03-15T12:00"), category="natural_gas"))
    deliver(events.referred(e, at=at("2025-03-15T12:01")))
    # routed, but its receipt has not arrived: not (yet) an application received in March
    deliver(events.routed(events.received(at=at("2025-03-20T09:00")),
                          at=at("2025-03-20T09:01"), unit="mersin_bb.parks",
                          unit_name="Park ve Bahçeler"))


def test_a_staff_token_is_required(client):
    response = client.get(SUMMARY, query_string=MARCH)
    assert response.status_code == 401
    assert "Authorization" in response.get_json()["errors"]["headers"]


def test_a_token_signed_with_another_secret_is_refused(client):
    forged = mint_token("not-the-secret-not-the-secret-xx", "rep-0001", "mayor")
    response = client.get(SUMMARY, query_string=MARCH,
                          headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


FAMILIES = {"mersin_bb": ["mersin_bb"], "mersin_valilik": ["gas_distributor", "mersin_valilik"]}


@pytest.mark.parametrize(("who", "query", "total"), [
    # the coordination centre: everything, and any filter
    ({"role": "coordinator"}, {}, 4),
    ({"role": "coordinator"}, {"unit": "mersin_bb.roads"}, 2),
    ({"role": "admin"}, {"district": "Mezitli"}, 1),
    # a unit role: its own unit only
    ({"role": "expert", "unit": "mersin_bb.roads"}, {}, 2),
    ({"role": "supervisor", "unit": "mersin_bb.roads"}, {"unit": "mersin_bb.roads"}, 2),
    ({"role": "director", "unit": "mezitli_bld.works"}, {}, 0),
    # an institution role, or a coordinator bound to one: it and those under it
    ({"role": "mayor", "institution": "mersin_bb"}, {}, 2),
    ({"role": "governor", "institution": "mersin_valilik"}, {}, 1),
    ({"role": "governor", "institution": "mersin_valilik"},
     {"institution": "gas_distributor"}, 1),
    ({"role": "coordinator", "institution": "mersin_bb"}, {"category": "road_damage"}, 2),
])
def test_each_role_sees_the_figures_of_its_scope(client, config, parts, march, monkeypatch,
                                                 who, query, total):
    monkeypatch.setattr(parts, "family", FAMILIES.__getitem__)
    response = client.get(SUMMARY, query_string={**MARCH, **query},
                          headers=bearer(config, user="rep-0001", **who))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["total"] == total


@pytest.mark.parametrize(("who", "query", "field"), [
    ({"role": "expert", "unit": "mersin_bb.roads"}, {"unit": "mersin_bb.parks"}, "unit"),
    ({"role": "expert"}, {}, "unit"),  # a unit role without a unit in its token
    ({"role": "mayor", "institution": "mersin_bb"}, {"institution": "gas_distributor"},
     "institution"),
    ({"role": "deputy_mayor"}, {}, "institution"),
    ({"role": "ministry_officer"}, {}, "role"),
])
def test_asking_for_figures_outside_ones_scope_is_a_403_naming_it(
        client, config, parts, march, monkeypatch, who, query, field):
    monkeypatch.setattr(parts, "family", FAMILIES.__getitem__)
    response = client.get(SUMMARY, query_string={**MARCH, **query},
                          headers=bearer(config, user="rep-0001", **who))
    assert response.status_code == 403
    body = response.get_json()
    assert field in (body["errors"].get("query") or body["errors"]), body
    assert "total" not in body


def test_without_the_directory_an_institution_role_is_told_to_come_back(
        client, config, parts, march, monkeypatch):
    def away(institution):
        raise TimeoutError("routing did not answer")

    monkeypatch.setattr(parts, "family", away)
    response = client.get(SUMMARY, query_string=MARCH,
                          headers=bearer(config, role="mayor", institution="mersin_bb"))
    assert response.status_code == 503


def pdf_text(content: bytes) -> str:
    """The text of every page of a PDF, as a reader would copy it."""
    import io

    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "pdf"])
def test_the_summary_exports_as_csv_xlsx_and_pdf_with_the_same_figures_and_scope(
        client, config, march, fmt):
    import io

    from openpyxl import load_workbook

    headers = bearer(config, role="expert", unit="mersin_bb.roads", user="rep-0001")
    json_answer = client.get(SUMMARY, query_string=MARCH, headers=headers).get_json()
    response = client.get(f"{SUMMARY}/export", query_string={**MARCH, "format": fmt},
                          headers=headers)
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    if fmt == "csv":
        text = response.get_data().decode("utf-8-sig")
        assert "2025-03-01,2025-03-31,Europe/Istanbul,2" in text
        for row in json_answer["by_channel"]:
            assert f"by_channel,{row['key']},,{row['count']}" in text
        return
    if fmt == "pdf":
        text = pdf_text(response.get_data())
        assert "2025-03-01 – 2025-03-31 (Europe/Istanbul)" in text
        assert f"Toplam başvuru / Applications {json_answer['total']}" in text
        for row in json_answer["by_channel"]:  # each row: its label, its bar, its count
            assert f"{row['key']} {row['count']}" in text
        return
    book = load_workbook(io.BytesIO(response.get_data()))
    assert book["Özet"]["B4"].value == json_answer["total"] == 2
    channels = {row[0]: row[2] for row in book["channel"].iter_rows(min_row=2, values_only=True)}
    assert channels == {row["key"]: row["count"] for row in json_answer["by_channel"]}
    [chart] = book["channel"]._charts  # drawn from the sheet's own rows
    assert chart.series[0].val.numRef.f == f"'channel'!$C$2:$C${1 + len(channels)}"


def test_an_unknown_export_format_is_a_422_naming_it(client, config):
    response = client.get(f"{SUMMARY}/export", query_string={"format": "docx"},
                          headers=bearer(config))
    assert response.status_code == 422
    assert "format" in response.get_json()["errors"]["query"]


def test_who_is_asking_is_checked_before_what_is_asked(client):
    assert client.get(SUMMARY, query_string={"from": "yesterday"}).status_code == 401


@pytest.mark.parametrize(("query", "field"), [
    ({"from": "2025-13-01"}, "from"),
    ({"from": "yesterday", "to": "2025-03-31"}, "from"),
    ({"to": "31.03.2025"}, "to"),
    ({"from": "2025-03-31", "to": "2025-03-01"}, "to"),
    ({"from": "2015-01-01", "to": "2025-03-01"}, "to"),
    ({"from": "0001-01-01"}, "from"),  # runs to today: two thousand years of buckets
])
def test_a_bad_period_is_a_422_naming_the_field(client, staff_headers, query, field):
    response = client.get(SUMMARY, query_string=query, headers=staff_headers())
    assert response.status_code == 422
    body = response.get_json()
    assert list(body["errors"]["query"]) == [field]
    assert body["message"].startswith(f"{field}:")


def test_counts_applications_received_in_the_period_by_every_dimension(
    client, staff_headers, march
):
    response = client.get(SUMMARY, query_string=MARCH, headers=staff_headers("coordinator"))
    assert response.status_code == 200
    body = response.get_json()
    assert (body["from"], body["to"], body["timezone"]) == (
        "2025-03-01", "2025-03-31", "Europe/Istanbul")
    assert body["total"] == 4
    assert body["by_category"] == [{"key": "road_damage", "count": 2},
                                   {"key": "natural_gas", "count": 1},
                                   {"key": "noise", "count": 1}]
    assert body["by_channel"] == [{"key": "web", "count": 2},
                                  {"key": "call_centre", "count": 1},
                                  {"key": "sms", "count": 1}]
    assert body["by_district"] == [{"key": "Yenişehir", "count": 3},
                                   {"key": "Mezitli", "count": 1}]
    assert body["by_unit"] == [{"key": "mersin_bb.roads", "name": "Yol Yapım Dairesi Başkanlığı",
                                "count": 2}]
    assert body["by_status"] == [{"key": "assigned", "count": 2},
                                 {"key": "received", "count": 1},
                                 {"key": "referred", "count": 1}]


def test_a_period_with_nothing_in_it_counts_zero(client, staff_headers, march):
    body = client.get(SUMMARY, query_string={"from": "2024-01-01", "to": "2024-01-31"},
                      headers=staff_headers()).get_json()
    assert body["total"] == 0
    assert body["by_category"] == body["by_unit"] == []


def test_the_day_after_the_period_starts_the_next_report(client, staff_headers, march):
    body = client.get(SUMMARY, query_string={"from": "2025-04-01", "to": "2025-04-01"},
                      headers=staff_headers()).get_json()
    assert body["total"] == 1
    assert body["by_district"] == [{"key": None, "count": 1}]


def test_the_series_gives_received_against_concluded_per_week_within_the_scope(
        client, config, deliver, events, march):
    def at(day: str) -> datetime:
        return datetime.fromisoformat(day).replace(tzinfo=UTC)

    done = deliver(events.received(at=at("2025-03-03T07:00")))
    deliver(events.routed(done, at=at("2025-03-03T07:01")))
    deliver(events.case(done, "case_closed", "closed", at=at("2025-03-05T07:00")))
    response = client.get(f"{SUMMARY[:-len('/summary')]}/series",
                          query_string={**MARCH, "granularity": "week"},
                          headers=bearer(config, role="expert", unit="mersin_bb.roads"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["granularity"] == "week"
    rows = {row["period"]: row for row in body["items"]}
    assert next(iter(rows)) == "2025-W09" and len(rows) == 6  # 1 March is a Saturday
    assert (rows["2025-W10"]["received"], rows["2025-W10"]["concluded"]) == (1, 1)
    assert rows["2025-W10"]["resolution_hours_median"] == 48.0
    assert rows["2025-W11"]["received"] == 2  # the unit's own two of the five (10 and 12 March)
    assert sum(row["received"] for row in body["items"]) == 3


def test_a_daily_series_longer_than_a_year_is_a_422_asking_for_weeks(client, config):
    long = {"from": "2024-01-01", "to": "2025-12-31"}
    refused = client.get("/api/v1/reports/series", query_string=long, headers=bearer(config))
    assert refused.status_code == 422
    assert "granularity" in refused.get_json()["errors"]["query"]
    weekly = client.get("/api/v1/reports/series", query_string={**long, "granularity": "week"},
                        headers=bearer(config))
    assert weekly.status_code == 200
    # a `from` alone runs to today
    to_today = client.get("/api/v1/reports/series", query_string={"from": "2024-01-01"},
                          headers=bearer(config))
    assert to_today.status_code == 422
    assert "granularity" in to_today.get_json()["errors"]["query"]


def test_an_unknown_granularity_is_a_422_naming_it(client, config):
    response = client.get("/api/v1/reports/series", query_string={"granularity": "year"},
                          headers=bearer(config))
    assert response.status_code == 422
    assert "granularity" in response.get_json()["errors"]["query"]


CALLBACKS = "/api/v1/reports/callbacks"


@pytest.fixture
def last_week(deliver, events):
    """Six applications concluded in ISO week 2025-W11 (10-16 March): the candidates of the
    list of week 2025-W12."""
    concluded = []
    for n in range(6):
        at = datetime(2025, 3, 10 + n, 9, tzinfo=UTC)
        receipt = deliver(events.received(at=at - timedelta(days=1)))
        deliver(events.routed(receipt, at=at - timedelta(days=1)))
        deliver(events.case(receipt, "case_closed", "closed", at=at))
        concluded.append(receipt["application_id"])
    return concluded


@pytest.fixture
def intake_contacts(parts, monkeypatch):
    """Intake's `get_callback_contact`, recorded: who asked for which application."""
    asked = []

    def call(service, method, application_id, staff, role):
        assert (service, method) == ("intake", "get_callback_contact")
        asked.append((application_id, staff, role))
        return {"first_name": "Ayşe", "last_name": "Demir", "phone": "+905551112233",
                "email": None}

    monkeypatch.setattr(parts.rpc, "call", call)
    return asked


def test_the_mayor_s_call_back_list_is_four_of_last_week_s_with_contacts_and_audited(
        client, config, parts, last_week, intake_contacts):
    mayor_office = bearer(config, role="coordinator", user="ozel-kalem-1")
    first = client.get(CALLBACKS, query_string={"week": "2025-W12"}, headers=mayor_office)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert (body["concluded_from"], body["concluded_to"], body["candidates"]) == (
        "2025-03-10", "2025-03-16", 6)
    chosen = [item["application_id"] for item in body["items"]]
    assert len(chosen) == 4 and set(chosen) <= set(last_week)
    assert all(item["contact"]["phone"] == "+905551112233" for item in body["items"])
    assert {who for _, who, _ in intake_contacts} == {"ozel-kalem-1"}
    again = client.get(CALLBACKS, query_string={"week": "2025-W12"}, headers=mayor_office)
    assert [item["application_id"] for item in again.get_json()["items"]] == chosen
    reads = list(parts.store.audit_log.find({"action": "callbacks.read"}))
    assert len(reads) == 2 and reads[0]["applications"] == chosen
    assert "+905551112233" not in repr(reads)  # the audit says who read, not what


def test_a_call_s_note_goes_back_with_the_list(client, config, last_week, intake_contacts):
    office = bearer(config, role="coordinator", user="ozel-kalem-1")
    chosen = client.get(CALLBACKS, query_string={"week": "2025-W12"},
                        headers=office).get_json()["items"][0]["application_id"]
    noted = client.put(f"{CALLBACKS}/2025-W12/{chosen}",
                       json={"reached": True, "note": "Memnun, teşekkür etti."}, headers=office)
    assert noted.status_code == 200, noted.get_json()
    items = client.get(CALLBACKS, query_string={"week": "2025-W12"},
                       headers=office).get_json()["items"]
    [item] = [i for i in items if i["application_id"] == chosen]
    assert (item["reached"], item["note"], item["noted_by"]) == (
        True, "Memnun, teşekkür etti.", "ozel-kalem-1")


@pytest.mark.parametrize(("path", "body", "status", "field"), [
    ("2025-W12/not-on-the-list", {"reached": True}, 404, "application_id"),
    ("2025-W99/x", {"reached": True}, 422, "week"),
    ("2025-W12/x", {"note": "no reached"}, 422, "reached"),
])
def test_a_bad_call_note_is_refused_naming_the_field(client, config, last_week,
                                                     intake_contacts, path, body, status,
                                                     field):
    response = client.put(f"{CALLBACKS}/{path}", json=body, headers=bearer(config))
    assert response.status_code == status
    assert field in json.dumps(response.get_json()["errors"])


@pytest.mark.parametrize("week", ["0000-W01", "0001-W01", "9999-W52", "2025-W53", "2026-W49\n"])
def test_a_week_outside_the_calendar_is_a_422_naming_it_not_a_500(client, config, week):
    # found by fuzzing (issue 14): year 0 and the week before 0001-W01 raised in the date
    # arithmetic, and were answered 500
    listed = client.get(CALLBACKS, query_string={"week": week}, headers=bearer(config))
    assert listed.status_code == 422, listed.get_json()
    assert "week" in listed.get_json()["errors"]["query"]
    noted = client.put(f"{CALLBACKS}/{week}/x", json={"reached": True}, headers=bearer(config))
    assert noted.status_code in (404, 422)  # a newline ends the path segment: no such route
    assert noted.get_json()["code"] == noted.status_code


def test_only_the_mayor_s_office_and_the_coordination_centre_see_the_list(client, config):
    for role in ("expert", "supervisor", "director", "governor"):
        response = client.get(CALLBACKS, headers=bearer(config, role=role, unit="u",
                                                        institution="i"))
        assert response.status_code == 403


def test_last_month_s_reports_are_generated_once_and_listed_and_served_by_scope(
        client, config, parts, march, monkeypatch):
    import io

    from openpyxl import load_workbook

    from services.reporting.reports import Reports

    monkeypatch.setattr(parts, "family", FAMILIES.__getitem__)
    april = datetime(2025, 4, 2, 9, tzinfo=UTC)
    parts.reports.clock = lambda: april
    made = parts.reports.generate_due()
    assert sorted(made) == ["monthly|2025-03|institution|mersin_bb",
                            "monthly|2025-03|unit|mersin_bb.roads"]
    assert parts.reports.generate_due() == []  # the next minute's timer
    stored = parts.store.files.find_one({"_id": "monthly|2025-03|unit|mersin_bb.roads"})
    [ready] = stored["_outbox"]  # published by the relay: notify e-mails the director
    assert (ready["type"], ready["data"]["total"]) == ("report_generated", 2)
    other_process = Reports(parts.store, "Europe/Istanbul", clock=lambda: april)
    assert other_process.generate_due() == []

    def listed(**who) -> list[str]:
        response = client.get("/api/v1/reports/files", headers=bearer(config, **who))
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert listed(role="supervisor", unit="mersin_bb.roads") == [
        "monthly|2025-03|unit|mersin_bb.roads"]
    assert sorted(listed(role="mayor", institution="mersin_bb")) == sorted(made)
    assert listed(role="supervisor", unit="mezitli_bld.works") == []
    expert = bearer(config, role="expert", unit="mersin_bb.roads")
    file = client.get("/api/v1/reports/files/monthly|2025-03|unit|mersin_bb.roads",
                      headers=expert)
    assert file.status_code == 200
    book = load_workbook(io.BytesIO(file.get_data()))
    assert book["Özet"]["B4"].value == 2
    assert book["category"]._charts  # the weekly / monthly files come with their charts
    printable = client.get("/api/v1/reports/files/monthly|2025-03|unit|mersin_bb.roads",
                           query_string={"format": "pdf"}, headers=expert)
    assert printable.status_code == 200
    assert printable.mimetype == "application/pdf"
    assert "Toplam başvuru / Applications 2" in pdf_text(printable.get_data())
    wrong = client.get("/api/v1/reports/files/monthly|2025-03|unit|mersin_bb.roads",
                       query_string={"format": "docx"}, headers=expert)
    assert wrong.status_code == 422
    assert "format" in wrong.get_json()["errors"]["query"]
    hidden = client.get("/api/v1/reports/files/monthly|2025-03|institution|mersin_bb",
                        headers=expert)
    assert hidden.status_code == 404


# -- KVKK: the call-back list reads in the audit log; the notes anonymised after the period ---


def test_an_administrator_finds_who_read_the_call_back_list_and_old_notes_lose_their_text(
        client, config, parts, last_week, intake_contacts):
    office = bearer(config, role="coordinator", user="ozel-kalem-1")
    chosen = client.get(CALLBACKS, query_string={"week": "2025-W12"},
                        headers=office).get_json()["items"][0]["application_id"]
    assert client.put(f"{CALLBACKS}/2025-W12/{chosen}", json={
        "reached": True, "note": "Eşine ulaşıldı, sızıntı giderilmiş."},
        headers=office).status_code == 200

    now = datetime.now(UTC)
    window = {"from": (now - timedelta(hours=1)).isoformat(),
              "to": (now + timedelta(hours=1)).isoformat(), "application_id": chosen}
    found = client.get("/api/v1/reports/audit", query_string=window,
                       headers=bearer(config, role="admin", user="adm-1"))
    assert found.status_code == 200, found.get_json()
    [entry] = found.get_json()["items"]
    assert entry["action"] == "callbacks.read" and entry["staff"] == "ozel-kalem-1"
    assert chosen in entry["applications"]
    assert client.get("/api/v1/reports/audit", query_string=window,
                      headers=office).status_code == 403

    figures = client.get("/api/v1/reports/summary", query_string={
        "first": "2025-03-01", "last": "2025-03-31"}, headers=office).get_json()
    parts.retention_job.clock = lambda: datetime(2027, 3, 20, tzinfo=UTC)  # two years on
    assert set(parts.retention_job.run().anonymised) == set(last_week)
    note = parts.store.callback_note("2025-W12", chosen)
    assert note["note"] is None and note["reached"] is True and note["by"] == "ozel-kalem-1"
    assert client.get("/api/v1/reports/summary", query_string={
        "first": "2025-03-01", "last": "2025-03-31"}, headers=office).get_json() == figures
    assert parts.retention_job.run().anonymised == []
