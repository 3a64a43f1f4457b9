"""The JSON siblings of the lookup — reopen and satisfaction — and the lookup's limits over HTTP.

The read model is filled through tracking's own handlers (no broker traffic); what a citizen does
is checked in the stored document, where its event waits in the outbox for the relay.
"""
from __future__ import annotations

import pytest

from services.common.codes import new_tracking_code
from services.common.outbox import OUTBOX
from services.tracking.schemas import TrackingAnswerSchema
from services.tracking.web import LIMITED, NOT_FOUND
from tests.tracking.conftest import COUNTED_AT, counted_at

TRACK = "/api/v1/track"
GOOD = "SECRETCODE1"



def codes(code: str, security: str = GOOD, **extra) -> dict:
    return {"tracking_code": code, "security_code": security, **extra}


def test_the_answer_matches_its_documented_schema(client, concluded_application):
    _, code = concluded_application()
    body = client.post(TRACK, json=codes(code)).get_json()
    assert TrackingAnswerSchema().validate(body) == {}
    assert body["result"] == "Çukur kapatıldı."
    assert body["reopen"]["allowed"] is True and body["satisfaction"]["allowed"] is True


def test_a_reopen_request_is_stored_with_its_event_and_shown_at_once(
    client, concluded_application, tracking_store
):
    application_id, code = concluded_application()
    response = client.post(f"{TRACK}/reopen", json=codes(
        code, reason="Çukur yeniden açıldı; beni 0555 111 22 33 numarasından arayın."))
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["reopen"] == {"allowed": False, "until": None, "requested": True}
    assert body["timeline"][-1]["text"] == "Yeniden açma talebiniz alındı; değerlendiriliyor"
    stored = tracking_store.applications.find_one({"_id": application_id})
    [event] = [e for e in stored[OUTBOX] if e["type"] == "reopen_requested"]
    assert event["application_id"] == application_id
    assert "0555" not in event["data"]["reason"]  # no phone number leaves in an event
    again = client.post(f"{TRACK}/reopen", json=codes(code, reason="tekrar"))
    assert again.status_code == 409
    assert again.get_json()["errors"]["json"]["reason"] == ["already_requested"]


def test_reopen_is_refused_before_conclusion_and_for_categories_that_never_reopen(
    client, bus_envelopes, new_application, handle, concluded_application
):
    application_id, code = new_application()
    handle(bus_envelopes.received(application_id, code))
    early = client.post(f"{TRACK}/reopen", json=codes(code, reason="neden olmadı"))
    assert early.status_code == 409
    assert early.get_json()["errors"]["json"]["reason"] == ["not_concluded"]
    _, gas = concluded_application("natural_gas")  # reopen_days: 0 in the catalogue
    never = client.post(f"{TRACK}/reopen", json=codes(gas, reason="gaz kokusu sürüyor"))
    assert never.status_code == 409
    assert never.get_json()["errors"]["json"]["reason"] == ["not_reopenable"]


def test_a_rating_is_recorded_once_with_its_event(client, concluded_application, tracking_store):
    application_id, code = concluded_application()
    response = client.post(f"{TRACK}/satisfaction", json=codes(code, score=5, comment="Sağolun"))
    assert response.status_code == 201
    assert response.get_json()["satisfaction"] == {"allowed": False, "score": 5}
    stored = tracking_store.applications.find_one({"_id": application_id})
    [event] = [e for e in stored[OUTBOX] if e["type"] == "satisfaction_recorded"]
    assert event["data"] == {"score": 5, "comment": "Sağolun", "source": "web"}
    assert client.post(f"{TRACK}/satisfaction", json=codes(code, score=1)).status_code == 409


@pytest.mark.parametrize(("payload", "field"), [
    ({"score": 6}, "score"), ({"score": "x"}, "score"), ({}, "score")])
def test_a_bad_rating_names_its_field(client, concluded_application, payload, field):
    _, code = concluded_application()
    response = client.post(f"{TRACK}/satisfaction", json=codes(code, **payload))
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["json"]


def test_the_siblings_answer_wrong_codes_exactly_as_the_lookup_does(
    client, concluded_application
):
    _, code = concluded_application()
    answers = [
        client.post(TRACK, json=codes(code, "WRONGCODE1")),
        client.post(f"{TRACK}/reopen", json=codes(code, "WRONGCODE1", reason="olmadı")),
        client.post(f"{TRACK}/satisfaction", json=codes(new_tracking_code(), score=3)),
    ]
    assert {a.status_code for a in answers} == {404}
    assert {a.get_json()["message"] for a in answers} == {NOT_FOUND}


@pytest.mark.parametrize("known", [True, False])
def test_a_code_is_locked_after_repeated_failures_even_for_the_right_security_code(
    config, make_app, concluded_application, known
):
    config["TRACK_CODE_FAILURES"] = "3"
    client = make_app(config).test_client()
    code = concluded_application()[1] if known else new_tracking_code()
    for n in range(3):
        assert client.post(TRACK, json=codes(code, f"WRONG{n}")).status_code == 404
    locked = client.post(TRACK, json=codes(code))
    assert locked.status_code == 429
    assert locked.get_json()["message"] == LIMITED
    assert int(locked.headers["Retry-After"]) > 0


def test_a_client_is_limited_on_its_failures_and_on_all_its_lookups(
    config, make_app, concluded_application
):
    config.update(TRACK_CLIENT_FAILURES="3", TRACK_CLIENT_LIMIT="6")
    # The limiter's clock pinned: windows are aligned to the clock, and on the wall clock a
    # run crossing a 10-minute boundary split these lookups between two windows and failed.
    client = make_app(config, clock=counted_at(COUNTED_AT)).test_client()
    _, code = concluded_application()
    for _ in range(3):
        assert client.post(TRACK, json=codes(new_tracking_code())).status_code == 404
    assert client.post(TRACK, json=codes(code)).status_code == 429  # guessing: stopped
    other = {"REMOTE_ADDR": "198.51.100.20"}
    statuses = [client.post(TRACK, json=codes(code), environ_base=other).status_code
                for _ in range(7)]
    assert statuses == [200] * 6 + [429]  # a flood of good lookups: stopped too
