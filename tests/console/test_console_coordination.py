"""The coordination centre's page (`/console/koordinasyon`) against routing's and SLA's real
staff APIs: both apps served over HTTP in this process on the test's databases (as the inbox
and mayor's office tests do), cases opened through routing's own domain and store, a late clock
through SLA's own handler. Each POST goes through the page's form with the session's CSRF
token; routing's stored case is checked."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from services.common.codes import display_tracking_code
from services.common.config import load_config
from services.common.events import load_event, make_event, new_event_id
from services.console.bootstrap import build
from services.console.coordination import deadline_row
from services.console.web import create_app
from services.routing.domain import open_case
from services.sla.web import create_app as create_sla_app
from tests.support import serve

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # SLA's clock
PAGE = "/console/koordinasyon"


@pytest.fixture
def console_config(databases, routing_url, sla) -> Iterator[dict]:
    with serve(create_sla_app(sla)) as sla_url:
        yield load_config(env={}, CONSOLE_SAMPLE_ACCOUNTS="true", CONSOLE_ROUTING_URL=routing_url,
                          CONSOLE_SLA_URL=sla_url, **databases)


@pytest.fixture
def open_muhtar_request(routing):
    """`open_muhtar_request(code)`: a muhtar's request, waiting at the ministry desk; its id."""
    org = routing.organisation.current()

    def make(code: str, category: str = "road_damage") -> str:
        app_id = new_event_id()
        at = NOW - timedelta(days=1)
        event = load_event(make_event("application_received", app_id, {
            "tracking_code": code, "security_digest": "d" * 64, "kind": "request",
            "category": category, "channel": "muhtar", "caller_type": "muhtar",
            "received_at": at, "location": {"province": "Mersin", "district": "Mezitli"}}))
        routing.store.apply_to_case(app_id, event["event_id"], lambda current: open_case(
            current, event, org.catalogue, org.directory, at))
        return app_id

    return make


def signed_in(app, pages, user: str):
    client = app.test_client()
    assert pages.sign_in(client, user).status_code == 303
    return client


def admin(app, pages, clock):
    client = app.test_client()
    assert pages.sign_in(client, "adm-0001").headers["Location"] == "/console/dogrulama"
    form = client.get("/console/dogrulama").get_data(as_text=True)
    done = client.post("/console/dogrulama", data={"code": pages.totp_code(clock.now),
                                                   "csrf": pages.csrf_of(form)})
    assert done.status_code == 303, done.get_data(as_text=True)
    return client


def section(html: str, heading: str) -> str:
    """The page's `<section>` whose heading has id `heading`."""
    found = re.search(rf'<section aria-labelledby="{heading}">(.*?)</section>', html, re.S)
    assert found, html
    return found.group(1)


def make_late(sla, application_id: str, code: str) -> None:
    """A case of Mezitli's works unit routed six days before NOW: both deadlines passed."""
    sla.deadlines.on_event(load_event(make_event("application_routed", application_id, {
        "tracking_code": code, "category": "road_damage", "tier": "district",
        "institution": "mezitli_bld", "institution_name": "Mezitli Belediyesi",
        "unit": "mezitli_bld.works", "unit_name": "Fen İşleri", "rule": "test",
        "read_hours": 4, "resolve_hours": 24}, occurred_at=NOW - timedelta(days=6))))


def test_the_centre_sees_what_no_rule_matched_and_dispatches_it_to_a_unit(
        app, pages, routing, open_application):
    unmatched = open_application("K7M4QX2E1", category="unmapped_example")
    routed = open_application("K7M4QX2D9", minutes=1)  # road damage: Mezitli's works unit
    assert routing.store.get_case(unmatched)["unit"] == "mezitli_bld.coordination"
    coordinator = signed_in(app, pages, "mez-0004")
    assert "/console/koordinasyon" in coordinator.get("/console/").get_data(as_text=True)
    page = coordinator.get(PAGE)
    assert page.status_code == 200
    queue = section(page.get_data(as_text=True), "gelenler")
    assert f'data-application="{unmatched}"' in queue and routed not in queue
    assert f'href="/console/vaka/{unmatched}"' in queue
    assert display_tracking_code("K7M4QX2E1") in queue
    assert "unmapped_example" in queue  # the category
    assert f'action="/console/koordinasyon/{unmatched}/yonlendir"' in queue
    assert f'<label for="dispatch-unit-{unmatched}"' in queue
    assert '<option value="mezitli_bld.parks"' in queue  # routing's directory
    assert f'value="{pages.csrf_of(queue)}"' in queue

    done = coordinator.post(f"{PAGE}/{unmatched}/yonlendir", data={
        "csrf": pages.csrf_of(queue), "unit": "mezitli_bld.parks",
        "reason": "Park alanındaki bank kırık"})
    assert done.status_code == 303, done.get_data(as_text=True)
    assert done.headers["Location"].startswith(f"{PAGE}?tamam=dispatch")
    stored = routing.store.get_case(unmatched)
    assert (stored["unit"], stored["state"]) == ("mezitli_bld.parks", "assigned")
    assert stored["history"][-1]["event"] == "case_transferred"
    assert stored["history"][-1]["by"] == "mez-0004"
    after = coordinator.get(done.headers["Location"]).get_data(as_text=True)
    assert 'id="notice"' in after
    assert f'data-application="{unmatched}"' not in section(after, "gelenler")


def test_a_bad_unit_is_a_4xx_page_naming_the_field_and_nothing_moves(
        app, pages, routing, open_application):
    unmatched = open_application("K7M4QX2E1", category="unmapped_example")
    coordinator = signed_in(app, pages, "mez-0004")
    csrf = pages.csrf_of(coordinator.get(PAGE).get_data(as_text=True))
    for unit in ("no_such.unit", "", "<script>"):
        answer = coordinator.post(f"{PAGE}/{unmatched}/yonlendir", data={
            "csrf": csrf, "unit": unit, "reason": "deneme"})
        html = answer.get_data(as_text=True)
        assert 400 <= answer.status_code < 500, html
        assert 'id="refused-field">unit<' in html
        assert f'id="dispatch-unit-{unmatched}" name="unit" required aria-invalid="true"' in html
        assert "<script>" not in html.split("<main", 1)[1]
    assert routing.store.get_case(unmatched)["unit"] == "mezitli_bld.coordination"


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
        app, pages, routing, open_application, open_muhtar_request, clock):
    unmatched = open_application("K7M4QX2E1", category="unmapped_example")
    coordinator = signed_in(app, pages, "mez-0004")
    for data in ({"unit": "mezitli_bld.parks", "reason": "x"},
                 {"unit": "mezitli_bld.parks", "reason": "x", "csrf": "forged"}):
        answer = coordinator.post(f"{PAGE}/{unmatched}/yonlendir", data=data)
        assert answer.status_code == 403 and "csrf" in answer.get_data(as_text=True)
    assert routing.store.get_case(unmatched)["unit"] == "mezitli_bld.coordination"
    waiting = open_muhtar_request("K7M4QX2F3")
    answer = admin(app, pages, clock).post(f"{PAGE}/{waiting}/ilet", data={})
    assert answer.status_code == 403
    assert routing.store.get_case(waiting)["muhtar_pending"] is True


def test_an_expert_has_no_coordination_page_nor_its_forms(
        app, pages, routing, open_application):
    unmatched = open_application("K7M4QX2E1", category="unmapped_example")
    expert = signed_in(app, pages, "mez-0008")
    assert expert.get(PAGE).status_code == 403
    assert "/console/koordinasyon" not in expert.get("/console/").get_data(as_text=True)
    csrf = pages.csrf_of(expert.get("/console/").get_data(as_text=True))
    answer = expert.post(f"{PAGE}/{unmatched}/yonlendir", data={
        "csrf": csrf, "unit": "mezitli_bld.works", "reason": "bizim"})
    assert answer.status_code == 403
    assert expert.post(f"{PAGE}/{unmatched}/ilet", data={"csrf": csrf}).status_code == 403
    assert routing.store.get_case(unmatched)["unit"] == "mezitli_bld.coordination"


def test_the_board_shows_an_overdue_case_with_its_deadline_and_how_late(
        app, pages, sla, open_application):
    make_late(sla, "late-1", "K7M4QX2G4")
    coordinator = signed_in(app, pages, "mez-0004")
    board = section(coordinator.get(PAGE).get_data(as_text=True), "gecikenler")
    overdue = board.split('id="overdue"', 1)[1].split("</table>", 1)[0]
    assert 'data-application="late-1"' in overdue
    assert 'href="/console/vaka/late-1"' in overdue
    assert "mezitli_bld.works" in overdue
    assert "Okuma" in overdue  # the read deadline passed first
    assert re.search(r'class="hours">.*?(\d+(\.\d)?) saat', overdue, re.S)
    assert 'id="at-risk-empty"' in board


def test_the_late_row_names_the_deadline_that_passed_first_and_by_how_much():
    as_of = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    clock = {"application_id": "a", "read_due_at": "2026-12-03T09:00:00+00:00",
             "resolve_due_at": "2026-12-03T11:30:00+00:00"}
    row = deadline_row(clock, as_of, "overdue")
    assert (row["deadline"], row["hours"]) == ("read", 3.0)
    assert deadline_row(dict(clock, read_due_at=None), as_of, "overdue")["hours"] == 0.5
    risky = deadline_row(dict(clock, resolve_due_at="2026-12-03T14:00:00+00:00"), as_of,
                         "at_risk")
    assert (risky["deadline"], risky["hours"]) == ("resolve", 2.0)


def test_with_sla_down_the_page_still_shows_the_queue_and_the_boards_error(
        console_config, clock, pages, open_application):
    unmatched = open_application("K7M4QX2E1", category="unmapped_example")
    parts = build(dict(console_config, CONSOLE_SLA_URL="http://127.0.0.1:9"), clock)
    try:
        coordinator = signed_in(create_app(parts), pages, "mez-0004")
        page = coordinator.get(PAGE)
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert 'id="overdue-error"' in html and 'id="at-risk-error"' in html
        assert f'data-application="{unmatched}"' in section(html, "gelenler")
    finally:
        parts.close()


def test_the_muhtar_desk_forwards_a_request_to_the_suggested_institution(
        app, pages, routing, clock, open_muhtar_request):
    waiting = open_muhtar_request("K7M4QX2F3")
    suggested = routing.store.get_case(waiting)["suggestion"]
    client = admin(app, pages, clock)
    desk = section(client.get(PAGE).get_data(as_text=True), "muhtar")
    assert f'data-application="{waiting}"' in desk
    assert f'<label for="forward-institution-{waiting}"' in desk
    assert '<option value="mezitli_bld"' in desk
    done = client.post(f"{PAGE}/{waiting}/ilet", data={"csrf": pages.csrf_of(desk),
                                                       "institution": ""})
    assert done.status_code == 303, done.get_data(as_text=True)
    stored = routing.store.get_case(waiting)
    assert stored["muhtar_pending"] is False and stored["state"] == "assigned"
    assert stored["unit"] == suggested["unit"]
    assert stored["history"][-1]["by"] == "adm-0001"
    after = client.get(done.headers["Location"]).get_data(as_text=True)
    assert f'data-application="{waiting}"' not in section(after, "muhtar")


def test_the_case_page_forwards_a_muhtar_request_and_a_coordinator_redirects_a_case(
        app, pages, routing, clock, open_muhtar_request, open_application):
    waiting = open_muhtar_request("K7M4QX2F3")
    client = admin(app, pages, clock)
    html = client.get(f"/console/vaka/{waiting}").get_data(as_text=True)
    assert 'action="/console/vaka/' + waiting + '/forward"' in html
    assert '<label for="forward-institution"' in html
    done = client.post(f"/console/vaka/{waiting}/forward", data={
        "csrf": pages.csrf_of(html), "institution": "mersin_bb"})
    assert done.status_code == 303, done.get_data(as_text=True)
    stored = routing.store.get_case(waiting)
    assert stored["forwarded_to"] == "mersin_bb" and not stored["muhtar_pending"]

    assigned = open_application("K7M4QX2D9")  # road damage: Mezitli's works unit
    coordinator = signed_in(app, pages, "mez-0004")
    page = coordinator.get(f"/console/vaka/{assigned}").get_data(as_text=True)
    assert f'action="/console/vaka/{assigned}/transfer"' in page
    assert f'action="/console/vaka/{assigned}/forward"' not in page
    moved = coordinator.post(f"/console/vaka/{assigned}/transfer", data={
        "csrf": pages.csrf_of(page), "unit": "mezitli_bld.cleaning", "reason": "temizlik"})
    assert moved.status_code == 303
    assert routing.store.get_case(assigned)["unit"] == "mezitli_bld.cleaning"
