"""The inbox page against routing's real staff API: routing's Flask app served over HTTP in
this process on the same database server, cases opened through routing's own domain and store
(as routing's HTTP tests do). The console calls it server-side with a token minted for the
signed-in user, so routing's own scope rules decide what is listed."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.common.auth import verify_token
from services.common.events import load_event, make_event
from services.routing import cases
from services.routing.bootstrap import RoutingParts


@pytest.fixture
def console_config(routed_console_config) -> dict:
    return routed_console_config


def plan(routing: RoutingParts, app_id: str, resolve_due_at: datetime) -> None:
    """sla's `deadline_planned` for the case, folded as routing's handler does."""
    event = load_event(make_event("deadline_planned", app_id, {
        "resolve_due_at": resolve_due_at, "read_due_at": resolve_due_at - timedelta(days=2),
        "clock": "running"}))
    routing.store.apply_to_case(app_id, event["event_id"],
                                lambda current: cases.plan_deadlines(current, event))


def rows(html: str) -> list[str]:
    import re

    return re.findall(r'<tr data-application="([^"]+)">', html)


def test_an_expert_sees_the_units_open_cases_with_links_status_category_and_deadline(
        client, pages, routing, open_application):
    works = [open_application("K7M4QX2D1", minutes=1), open_application("K7M4QX2D2", minutes=2)]
    open_application("K7M4QX2D3", "road_damage", "Yenişehir")  # another municipality's unit
    plan(routing, works[1], datetime(2026, 12, 4, 14, 0, tzinfo=UTC))
    pages.sign_in(client, "mez-0008")
    page = client.get("/console/gelen")
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    assert rows(html) == works  # oldest first, the other unit's case not listed
    assert f'href="/console/vaka/{works[0]}">K7M-4QX-2D1</a>' in html  # as read out
    assert "K7M-4QX-2D3" not in html
    assert "atandı" in html and "road_damage" in html
    assert "04.12.2026 17:00" in html  # the planned deadline, Istanbul time
    assert 'id="inbox-total">2 ' in html
    case = client.get(f"/console/vaka/{works[1]}")
    assert case.status_code == 200 and "K7M-4QX-2D2" in case.get_data(as_text=True)


def test_the_supervisor_sees_the_inbox_and_a_role_without_one_is_refused(
        app, pages, open_application):
    open_application("K7M4QX2D4")
    supervisor = app.test_client()
    pages.sign_in(supervisor, "mez-0010")
    assert "K7M-4QX-2D4" in supervisor.get("/console/gelen").get_data(as_text=True)
    coordinator = app.test_client()
    pages.sign_in(coordinator, "mez-0004")
    refused = coordinator.get("/console/gelen")
    assert refused.status_code == 403 and "no unit inbox" in refused.get_data(as_text=True)
    assert 'href="/console/gelen"' not in coordinator.get("/console/").get_data(as_text=True)


def test_routings_own_refusal_is_shown_with_its_status_and_message(client, pages):
    pages.sign_in(client, "mez-0008")
    answer = client.get("/console/vaka/no-such-case")
    assert answer.status_code == 404 and "no such case" in answer.get_data(as_text=True)


def test_the_token_minted_for_routing_is_the_users_and_lives_five_minutes(parts, pages):
    session = {"user": "mez-0008", "role": "expert", "unit": "mezitli_bld.works",
               "institution": "mezitli_bld"}
    token = parts.routing.token_for(session)
    secret = parts.config["STAFF_TOKEN_SECRET"]
    staff = verify_token(secret, token)
    assert (staff.user, staff.role, staff.unit, staff.institution) == (
        "mez-0008", "expert", "mezitli_bld.works", "mezitli_bld")
    claims = jwt.decode(token, secret, algorithms=["HS256"], issuer="acikkapi")
    assert claims["exp"] - claims["iat"] == 300


def test_without_routing_the_inbox_says_so_with_a_503(app, parts, pages):
    client = app.test_client()
    pages.sign_in(client, "mez-0008")
    parts.routing.base_url = "http://127.0.0.1:9"  # nothing listens there
    answer = client.get("/console/gelen")
    assert answer.status_code == 503
    assert "not answering" in answer.get_data(as_text=True)
    assert client.get("/console/vaka/anything").status_code == 503
