"""The administrators' audit search (`/console/denetim`) against the services' real audit APIs:
routing's and intake's Flask apps served over HTTP in this process on the same database server,
reporting's not answering. The console asks each with a token minted for the administrator and
merges the answers; the page is Turkish with English, its fields labelled, a refusal names the
field (marked `aria-invalid`)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from services.common.auth import mint_token
from services.common.config import load_config
from services.common.events import utcnow
from services.intake.bootstrap import IntakeParts
from services.intake.bootstrap import build as build_intake
from services.intake.web import create_app as create_intake_app
from tests.support import serve

ISTANBUL = ZoneInfo("Europe/Istanbul")


@pytest.fixture
def intake(databases) -> Iterator[IntakeParts]:
    built = build_intake(load_config(env={}, **databases))
    yield built
    built.close()


@pytest.fixture
def console_config(databases, routing_url, intake) -> dict:
    with serve(create_intake_app(intake)) as intake_url:
        yield load_config(env={}, CONSOLE_SAMPLE_ACCOUNTS="true", CONSOLE_ROUTING_URL=routing_url,
                          CONSOLE_INTAKE_URL=intake_url,
                          CONSOLE_REPORTING_URL="http://127.0.0.1:9", **databases)


def sign_in_admin(client, pages, clock) -> None:
    pages.sign_in(client, "adm-0001")
    form = client.get("/console/dogrulama")
    answer = client.post("/console/dogrulama", data={
        "code": pages.totp_code(clock.now), "csrf": pages.csrf_of(form.get_data(as_text=True))})
    assert answer.status_code == 303, answer.get_data(as_text=True)


def today() -> str:
    return utcnow().astimezone(ISTANBUL).date().isoformat()


def test_an_administrator_finds_a_refused_case_read_and_a_personal_data_read(
        app, client, pages, clock, console_config, routing_url, open_application, intake):
    import requests

    app_id = open_application("K7M4QX2D1")
    parks = mint_token(console_config["STAFF_TOKEN_SECRET"], "mez-0016", "expert")
    refused = requests.get(f"{routing_url}/api/v1/cases/{app_id}", timeout=5,
                           headers={"Authorization": f"Bearer {parks}"})
    assert refused.status_code == 403
    intake.store.audit({"at": utcnow(), "staff": "mbb-0005", "role": "coordinator",
                        "action": "citizen.read", "citizen_id": "c-opaque-1",
                        "application_id": None, "reason": "Kimlik teyidi"})

    expert = app.test_client()
    pages.sign_in(expert, "mez-0008")
    assert expert.get("/console/denetim").status_code == 403

    sign_in_admin(client, pages, clock)
    assert '/console/denetim' in client.get("/console/").get_data(as_text=True)
    opened = client.get("/console/denetim")
    html = opened.get_data(as_text=True)
    assert opened.status_code == 200 and 'id="audit"' not in html  # nothing searched yet
    assert '<label for="baslangic">' in html and '<label for="staff">' in html

    start = (utcnow() - timedelta(days=1)).astimezone(ISTANBUL).date().isoformat()
    found = client.get("/console/denetim", query_string={"baslangic": start, "bitis": today()})
    html = found.get_data(as_text=True)
    assert found.status_code == 200, html
    assert re.findall(r'<tr data-action="([^"]+)">', html) == ["citizen.read",
                                                                  "case.read.refused"]
    assert "mez-0016" in html and app_id in html and "Kimlik teyidi" in html
    assert 'id="audit-unavailable"' in html and "reporting" in html  # said, not hidden

    narrowed = client.get("/console/denetim", query_string={
        "baslangic": start, "bitis": today(), "action": "case.read.refused"})
    assert re.findall(r'<tr data-action="([^"]+)">', narrowed.get_data(as_text=True)) == [
        "case.read.refused"]


@pytest.mark.parametrize(("query", "field"), [
    ({"baslangic": "2026-12-02", "bitis": "2026-11-01"}, "bitis"),  # ends before it starts
    ({"baslangic": "2026-01-01", "bitis": "2026-12-01"}, "bitis"),  # more than 92 days
    ({"bitis": "2026-12-01"}, "baslangic"),  # the window is required
    ({"baslangic": "dün", "bitis": "2026-12-01"}, "baslangic"),
    ({"baslangic": "2026-12-01", "bitis": "2026-12-01", "staff": "x y"}, "staff"),
    ({"baslangic": "2026-12-01", "bitis": "2026-12-01", "limit": "5000"}, "limit"),
])
def test_a_bad_search_is_a_400_naming_the_field(client, pages, clock, query, field):
    sign_in_admin(client, pages, clock)
    answer = client.get("/console/denetim", query_string=query)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400, html
    assert f'href="#{field}"' in html
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', html), html
