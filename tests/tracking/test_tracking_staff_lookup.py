"""Tracking's staff lookup by tracking code alone (`POST /api/v1/track/staff/lookup`): the
coordination centre's roles only, checked before the body; a code in any spelling a caller
reads out; 404 for an unknown code, 422 naming `tracking_code` for a malformed one; no
personal data in the answer. The read model is filled through the service's own handlers."""
from __future__ import annotations

import json

import pytest

from services.common.auth import ROLES
from services.common.codes import display_tracking_code, new_tracking_code, security_digest
from tests.support import bearer
from tests.tracking.conftest import SECURITY_CODE

LOOKUP = "/api/v1/track/staff/lookup"


@pytest.fixture
def client(make_app):
    return make_app().test_client()


@pytest.fixture
def routed(bus_envelopes, new_application, handle):
    """(application id, canonical code) of a road damage routed to Mersin's roads unit."""
    application_id, code = new_application()
    handle(bus_envelopes.received(application_id, code))
    handle(bus_envelopes.routed(application_id, code))
    return application_id, code


def test_a_coordinator_sees_status_unit_and_timeline_by_code_alone(client, config, routed):
    application_id, code = routed
    answer = client.post(LOOKUP, json={"tracking_code": code}, headers=bearer(config))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["application_id"] == application_id
    assert body["tracking_code"] == display_tracking_code(code)
    assert body["status"] == "assigned"
    assert body["category"] == "road_damage"
    assert body["unit"] == {"code": "mersin_bb.roads", "name": "Yol Yapım Dairesi Başkanlığı"}
    assert body["received_at"]
    assert [step["status"] for step in body["timeline"]] == ["received", "assigned"]
    assert body["place"] == {"province": "Mersin", "district": "Yenişehir",
                             "neighbourhood": "Limonluk"}


def test_a_code_read_out_over_the_phone_is_forgiven(client, config, routed):
    _, code = routed
    spoken = display_tracking_code(code).lower().replace("-", " ")
    answer = client.post(LOOKUP, json={"tracking_code": spoken},
                         headers=bearer(config, "admin"))
    assert answer.status_code == 200
    assert answer.get_json()["tracking_code"] == display_tracking_code(code)


def test_the_answer_carries_no_personal_data_nor_the_security_digest(
        client, config, bus_envelopes, new_application, handle):
    application_id, code = new_application()
    handle(bus_envelopes.received(application_id, code, caller_type="muhtar",
                                  citizen_ref="muhtar-ref-123"))
    answer = client.post(LOOKUP, json={"tracking_code": code}, headers=bearer(config))
    assert answer.status_code == 200
    text = json.dumps(answer.get_json())
    for secret in ("security_digest", "muhtar-ref-123", "citizen_ref", "tckn", "phone",
                   "email", "address", "first_name", "comment"):
        assert secret not in text
    assert security_digest(config["CODE_PEPPER"], SECURITY_CODE) not in text


def test_an_unknown_code_is_a_404(client, config):
    answer = client.post(LOOKUP, json={"tracking_code": new_tracking_code()},
                         headers=bearer(config))
    assert answer.status_code == 404
    assert "tracking_code" in answer.get_json()["errors"]["json"]


@pytest.mark.parametrize("typed", ["K7M-4QX-2D", "ABC", "!!!!!!!!!", "K7M4QX2D9" * 10, ""])
def test_a_malformed_code_is_a_422_naming_the_field(client, config, typed):
    answer = client.post(LOOKUP, json={"tracking_code": typed}, headers=bearer(config))
    assert answer.status_code == 422
    assert "tracking_code" in answer.get_json()["errors"]["json"]


def test_a_missing_body_is_a_422_naming_the_field(client, config):
    answer = client.post(LOOKUP, json={}, headers=bearer(config))
    assert answer.status_code == 422
    assert "tracking_code" in answer.get_json()["errors"]["json"]


def test_a_wrong_check_character_is_a_422_not_a_404(client, config):
    code = new_tracking_code()
    wrong = code[:-1] + next(c for c in "0123456789ABCDEF" if c != code[-1])
    answer = client.post(LOOKUP, json={"tracking_code": wrong}, headers=bearer(config))
    assert answer.status_code == 422


def test_without_a_token_nothing_is_answered(client, routed):
    assert client.post(LOOKUP, json={"tracking_code": routed[1]}).status_code == 401


@pytest.mark.parametrize("role", [r for r in ROLES if r not in ("coordinator", "admin")])
def test_other_roles_are_refused_before_the_body_is_read(client, config, role):
    # a malformed body: the role refusal comes first, so it says nothing about the schema
    answer = client.post(LOOKUP, json={"tracking_code": "x"},
                         headers=bearer(config, role, "mersin_bb.roads",
                                        institution="mersin_bb"))
    assert answer.status_code == 403


def test_an_institution_bound_coordinator_sees_only_their_institutions(client, config, routed):
    _, code = routed
    own = client.post(LOOKUP, json={"tracking_code": code},
                      headers=bearer(config, "coordinator", institution="mersin_bb"))
    assert own.status_code == 200
    other = client.post(LOOKUP, json={"tracking_code": code},
                        headers=bearer(config, "coordinator", institution="toroslar_bld"))
    assert other.status_code == 404
