"""The desk and call-centre page against intake's real staff API (its app served over HTTP in
this process, on the test's databases): a phone complaint for a citizen found by TCKN, the
tracking code to read out, intake's refusals on the page, a double submit filed once."""
from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from services.common.config import load_config
from services.intake.bootstrap import build as build_intake
from services.intake.web import create_app as create_intake_app
from tests.support import serve

TCKN = "10000000146"


@pytest.fixture
def intake(databases) -> Iterator:
    parts = build_intake(load_config(env={}, **databases))
    yield parts
    parts.close()


@pytest.fixture
def console_config(databases, intake) -> Iterator[dict]:
    with serve(create_intake_app(intake)) as intake_url:
        yield load_config(env={}, CONSOLE_SAMPLE_ACCOUNTS="true", CONSOLE_INTAKE_URL=intake_url,
                          **databases)


def page_form(html: str) -> dict:
    """The desk form's hidden fields (csrf, key)."""
    return {name: re.search(rf'name="{name}" value="([^"]+)"', html).group(1)
            for name in ("csrf", "key")}


COMPLAINT = {"channel": "call_centre", "first_name": "Ayşe", "last_name": "Demir",
             "mobile_phone": "0555 111 22 33", "kind": "complaint", "category": "road_damage",
             "district": "Mezitli", "neighbourhood": "Merkez",
             "description": "Kaldırım çökmüş / the pavement has caved in"}


def file(client, **fields):
    html = client.get("/console/masa").get_data(as_text=True)
    return client.post("/console/masa/basvuru", data={**page_form(html), **fields}), html


def test_a_phone_complaint_is_filed_for_a_citizen_found_by_tckn(app, pages, intake):
    agent = app.test_client()
    pages.sign_in(agent, "mez-0004")  # the coordination centre takes calls and visitors
    assert 'href="/console/masa"' in agent.get("/console/").get_data(as_text=True)

    first, _ = file(agent, tckn=TCKN, **COMPLAINT)
    assert first.status_code == 201, first.get_data(as_text=True)
    html = first.get_data(as_text=True)
    code = re.search(r'id="filed-code">([^<]+)<', html).group(1)
    [stored] = list(intake.store.applications.find({}))
    assert stored["channel"] == "call_centre" and stored["desk"]["entered_by"] == "mez-0004"
    assert code.replace("-", "") == stored["tracking_code"]

    form = agent.get("/console/masa").get_data(as_text=True)
    found = agent.post("/console/masa/ara", data={"csrf": page_form(form)["csrf"],
                                                  "tckn": TCKN})
    found_html = found.get_data(as_text=True)
    assert found.status_code == 200 and 'id="citizen"' in found_html
    assert "Ayşe" in found_html and code in found_html  # their history
    assert TCKN not in found_html.replace(f'value="{TCKN}"', "")  # masked but for the typed
    audited = list(intake.store.audit_log.find({"action": "citizen.search"}))
    assert [entry["staff"] for entry in audited] == ["mez-0004"]


def test_the_same_form_submitted_twice_is_filed_once(app, pages, intake):
    agent = app.test_client()
    pages.sign_in(agent, "mez-0004")
    html = agent.get("/console/masa").get_data(as_text=True)
    data = {**page_form(html), "tckn": TCKN, **COMPLAINT}
    assert agent.post("/console/masa/basvuru", data=data).status_code == 201
    assert agent.post("/console/masa/basvuru", data=data).status_code == 201
    assert intake.store.applications.count_documents({}) == 1


def test_intakes_refusal_names_the_field_and_keeps_what_was_typed(app, pages, intake):
    agent = app.test_client()
    pages.sign_in(agent, "mez-0004")
    refused, _ = file(agent, **dict(COMPLAINT, tckn="12345678901"))
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'id="refused"' in html
    assert "tckn" in html and 'value="Demir"' in html
    assert intake.store.applications.count_documents({}) == 0
    unknown = agent.post("/console/masa/ara", data={"csrf": page_form(html)["csrf"],
                                                    "tckn": TCKN})
    assert 'id="not-found"' in unknown.get_data(as_text=True)


def test_an_expert_has_no_desk_and_a_forged_form_changes_nothing(app, pages, intake):
    expert = app.test_client()
    pages.sign_in(expert, "mez-0008")
    assert expert.get("/console/masa").status_code == 403
    agent = app.test_client()
    pages.sign_in(agent, "mez-0004")
    forged = agent.post("/console/masa/basvuru", data={"csrf": "forged", "key": "k" * 20,
                                                       **COMPLAINT})
    assert forged.status_code == 403
    assert intake.store.applications.count_documents({}) == 0
