"""Tracking as a running service on the real broker: case work in, citizens' actions out."""
from __future__ import annotations

import functools

import pytest
from nameko.testing.services import entrypoint_waiter

from tests import support

TRACK = "/api/v1/track"



@pytest.fixture
def deliver(config, container):
    return functools.partial(support.deliver, config, container)


@pytest.fixture
def client(running_client):
    """The running service's own HTTP side: the handlers and the views share its parts."""
    return running_client



def lookup(client, code: str) -> dict:
    response = client.post(TRACK, json={"tracking_code": code, "security_code": "SECRETCODE1"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_case_work_over_the_bus_shows_up_step_by_step_without_who_did_it(
    deliver, bus_envelopes, new_application, client
):
    application_id, code = new_application()
    deliver(bus_envelopes.received(application_id, code))
    deliver(bus_envelopes.routed(application_id, code))
    steps = [("case_acknowledged", "acknowledged", {}),
             ("case_started", "in_progress", {}),
             ("case_resolved", "resolved", {"result": "Yol onarıldı."}),
             ("case_closed", "closed", {})]
    for event_type, state, extra in steps:
        deliver(bus_envelopes.case(event_type, application_id, state, by="mbb-0009", **extra))
        assert lookup(client, code)["status"] == state
    body = lookup(client, code)
    assert body["result"] == "Yol onarıldı."
    assert body["timeline"][2]["text"] == ("Yol Yapım Dairesi Başkanlığı başvurunuzu "
                                           "incelemeye aldı")
    assert "mbb-0009" not in str(body)


def test_a_merge_over_the_bus_marks_the_original_and_the_duplicate(
    deliver, bus_envelopes, new_application, tracking_store
):
    original_id, original_code = new_application()
    duplicate_id, duplicate_code = new_application()
    deliver(bus_envelopes.received(original_id, original_code))
    deliver(bus_envelopes.received(duplicate_id, duplicate_code))
    merged = bus_envelopes.merged(duplicate_id, original_id, original_code)
    deliver(merged)
    deliver(merged)  # redelivered: nothing twice
    original = tracking_store.get(original_id)
    assert [e["type"] for e in original["timeline"]] == ["application_received",
                                                        "application_merged"]
    assert tracking_store.get(duplicate_id)["status"] == "merged"


def test_a_reopen_request_is_published_by_the_relay_and_its_outcome_folded_back(
    config, container, deliver, bus_envelopes, new_application, client, probe, tracking_store
):
    published = probe("tracking", "reopen_requested")
    application_id, code = new_application()
    deliver(bus_envelopes.received(application_id, code))
    deliver(bus_envelopes.routed(application_id, code))
    deliver(bus_envelopes.case("case_resolved", application_id, "resolved", result="Tamam"))
    response = client.post(f"{TRACK}/reopen", json={
        "tracking_code": code, "security_code": "SECRETCODE1", "reason": "Sorun sürüyor"})
    assert response.status_code == 202
    [event] = published.take(1)
    assert event["type"] == "reopen_requested"
    assert event["application_id"] == application_id
    assert event["data"] == {"reason": "Sorun sürüyor"}
    deliver(bus_envelopes.case("case_reopened", application_id, "assigned"))
    body = lookup(client, code)
    assert body["status"] == "assigned" and body["reopen"]["requested"] is False
    assert body["timeline"][-1]["text"] == "Başvurunuz yeniden açıldı"


def test_a_muhtars_application_is_filed_under_their_ref(
    container, config, bus_envelopes, new_application, tracking_store
):
    application_id, code = new_application()
    envelope = bus_envelopes.received(application_id, code, caller_type="muhtar",
                                      citizen_ref="ref-muhtar-1")
    with entrypoint_waiter(container, "handle_application_received"):
        support.publish(config, envelope)
    [doc] = tracking_store.muhtar_applications("ref-muhtar-1")
    assert doc["application_id"] == application_id
    assert tracking_store.muhtar_applications("someone-else") == []
