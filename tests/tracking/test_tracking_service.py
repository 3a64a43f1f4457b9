"""Tracking as a running service: real envelopes over the real broker into the read model."""
from __future__ import annotations

import functools
from datetime import timedelta

import pytest
from nameko.events import EventHandler

from services.common.codes import display_tracking_code
from services.common.events import utcnow
from services.common.topology import SUBSCRIPTIONS
from services.tracking import domain
from services.tracking.service import TrackingService
from tests import support

TRACK = "/api/v1/track"





@pytest.fixture
def deliver(config, container):
    """Publish an envelope and wait until its handler has finished with it."""
    return functools.partial(support.deliver, config, container)


@pytest.fixture
def client(running_client):
    """The running service's own HTTP side: the handlers and the views share its parts."""
    return running_client


def lookup(client, code: str, security_code: str = "SECRETCODE1"):
    return client.post(TRACK, json={"tracking_code": display_tracking_code(code),
                                    "security_code": security_code})


def test_the_service_consumes_exactly_the_queues_the_topology_declares(
    container_factory, config
):
    container = container_factory(TrackingService, config)
    handled = {(e.event_type, e.method_name) for e in container.entrypoints
               if isinstance(e, EventHandler)}
    declared = {(s.event_type, s.method) for s in SUBSCRIPTIONS if s.service == "tracking"}
    assert handled == declared
    assert ("application_referred", "handle_application_referred") in handled


def test_a_redelivered_receipt_adds_one_timeline_entry_not_two(
    deliver, bus_envelopes, new_application, store, client
):
    application_id, code = new_application()
    received = bus_envelopes.received(application_id, code)
    deliver(received)
    deliver(received)  # same event_id, as after a lost ack
    doc = store.get(application_id)
    assert [entry["event_id"] for entry in doc["timeline"]] == [received["event_id"]]
    assert len(lookup(client, code).get_json()["timeline"]) == 1


def test_after_receipt_and_routing_a_lookup_shows_assigned_with_its_timeline(
    deliver, bus_envelopes, new_application, client
):
    application_id, code = new_application()
    deliver(bus_envelopes.received(application_id, code))
    deliver(bus_envelopes.routed(application_id, code))
    response = lookup(client, code)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "assigned"
    assert body["unit"]["code"] == "mersin_bb.roads"
    assert [step["status"] for step in body["timeline"]] == ["received", "assigned"]
    assert lookup(client, code, "SECRETCODE2").status_code == 404


def test_routing_handled_before_receipt_stores_what_the_other_order_would(
    deliver, bus_envelopes, new_application, store
):
    application_id, code = new_application()
    now = utcnow()
    received = bus_envelopes.received(application_id, code, at=now)
    routed = bus_envelopes.routed(application_id, code, at=now + timedelta(microseconds=700))
    deliver(routed)
    deliver(received)
    expected, _ = domain.fold_event(None, bus_envelopes.loaded(received))
    expected, _ = domain.fold_event(expected, bus_envelopes.loaded(routed))
    stored = store.get(application_id)
    assert stored == dict(expected, _id=application_id)
    assert stored["status"] == "assigned"


def test_a_referral_is_shown_with_the_institution_to_contact(
    deliver, bus_envelopes, new_application, client
):
    application_id, code = new_application()
    deliver(bus_envelopes.received(application_id, code))
    deliver(bus_envelopes.referred(application_id, code))
    body = lookup(client, code).get_json()
    assert body["status"] == "referred"
    assert body["referral"] == {"institution": "gas_distributor", "name": "Toroslar Doğalgaz",
                                "contact": {"phone": "187"}}
    assert body["unit"] is None


def test_a_sent_notification_appears_on_the_timeline_without_changing_status(
    deliver, bus_envelopes, new_application, client
):
    application_id, code = new_application()
    received = bus_envelopes.received(application_id, code)
    deliver(received)
    deliver(bus_envelopes.notification_sent(application_id, cause=received["event_id"]))
    body = lookup(client, code).get_json()
    assert body["status"] == "received"
    assert [step["text"] for step in body["timeline"]] == [
        "Başvurunuz alındı ve kayda geçti", "Bilgilendirme mesajı gönderildi"]
