"""`record_satisfaction_reply`: a score replied to the survey SMS rates the sender's most
recently concluded application still awaiting a rating — once, published once (`source: sms`),
and nothing when none awaits one. Pure selection first, then the RPC entrypoint over the real
store, then on the broker."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from marshmallow import ValidationError
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import worker_factory

from services.common.codes import display_tracking_code
from services.common.outbox import OUTBOX
from services.tracking import domain
from services.tracking.service import TrackingService
from tests import support

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def concluded(application_id: str, at: datetime, *, rated_at: datetime | None = None,
              status: str = "closed") -> dict:
    doc = domain.new_read_model(application_id)
    doc.update(tracking_code="K7M4QX2D9", received_at=T0, status=status,
               timeline=[{"at": at, "type": "case_closed", "status": status, "text_tr": "",
                          "text_en": "", "event_id": f"e-{application_id}", "result": None}])
    if rated_at is not None:
        doc["satisfaction"] = {"score": 3, "at": rated_at}
    return doc


# -- which application a reply rates (pure) -----------------------------------------------------

def test_the_latest_concluded_unrated_application_is_the_one_a_reply_rates():
    older = concluded("01A", T0 + timedelta(days=1))
    latest = concluded("01B", T0 + timedelta(days=3))
    rated = concluded("01C", T0 + timedelta(days=4), rated_at=T0 + timedelta(days=5))
    working = concluded("01D", T0 + timedelta(days=6), status="in_progress")
    assert domain.awaiting_rating([older, latest, rated, working, None]) is latest
    assert domain.awaiting_rating([older, rated]) is older
    assert domain.awaiting_rating([rated, working]) is None
    # rated before it was concluded again (reopened, resolved anew): awaiting a rating again
    again = concluded("01E", T0 + timedelta(days=9), rated_at=T0 + timedelta(days=8))
    assert domain.awaiting_rating([latest, again]) is again


# -- the entrypoint over the real store ---------------------------------------------------------

@pytest.fixture
def service(tracking_parts):
    return worker_factory(TrackingService, parts=tracking_parts)


def outbox_of(tracking_store, application_id: str) -> list[dict]:
    stored = tracking_store.applications.find_one({"_id": application_id})
    return [e for e in stored.get(OUTBOX) or [] if e["type"] == "satisfaction_recorded"]


def test_a_reply_rates_the_latest_concluded_one_once_and_publishes_it_once(
        service, concluded_application, new_application, handle, bus_envelopes,
        tracking_store):
    older, _ = concluded_application()
    latest, latest_code = concluded_application("noise")
    still_open, open_code = new_application()
    handle(bus_envelopes.received(still_open, open_code))
    ids = [still_open, older, latest]

    answer = service.record_satisfaction_reply(ids, 4, "in-reply-1")
    assert answer == {"application_id": latest, "tracking_code": display_tracking_code(
        latest_code), "score": 4}
    doc = tracking_store.get(latest)
    assert doc["satisfaction"]["score"] == 4 and doc["satisfaction"]["source"] == "sms"
    assert doc["timeline"][-1]["text_en"] == "Your satisfaction rating was received by SMS"
    [event] = outbox_of(tracking_store, latest)  # with the rating, in one write
    assert event["data"] == {"score": 4, "comment": None, "source": "sms"}

    # the same reply delivered again: the same answer, nothing more recorded or published
    assert service.record_satisfaction_reply(ids, 4, "in-reply-1") == answer
    assert len(outbox_of(tracking_store, latest)) == 1
    assert [e["type"] for e in tracking_store.get(latest)["timeline"]].count(
        "satisfaction_recorded") == 1
    assert tracking_store.get(older)["satisfaction"] is None

    # another reply rates the next one awaiting a rating, then none is left
    assert service.record_satisfaction_reply(ids, 2, "in-reply-2")["application_id"] == older
    assert service.record_satisfaction_reply(ids, 5, "in-reply-3") is None
    assert len(outbox_of(tracking_store, older)) == 1
    assert tracking_store.get(still_open)["satisfaction"] is None


def test_a_result_rated_on_the_page_is_not_rated_again_by_sms(
        service, concluded_application, tracking_parts, tracking_store):
    application_id, _ = concluded_application()
    tracking_parts.tracker.rate(tracking_store.get(application_id), 5, None)
    assert service.record_satisfaction_reply([application_id], 1, "in-reply-4") is None
    assert tracking_store.get(application_id)["satisfaction"]["score"] == 5
    [web] = outbox_of(tracking_store, application_id)
    assert web["data"]["source"] == "web"


def test_nothing_is_rated_when_no_application_awaits_a_rating(
        service, new_application, handle, bus_envelopes, tracking_store):
    application_id, code = new_application()
    handle(bus_envelopes.received(application_id, code))
    assert service.record_satisfaction_reply([application_id, "01UNKNOWN00000000000000000"],
                                             3, "in-reply-5") is None
    assert service.record_satisfaction_reply([], 3) is None
    assert outbox_of(tracking_store, application_id) == []


@pytest.mark.parametrize(("ids", "score"), [(["01A"], 0), (["01A"], 6), ("01A", 3),
                                            (["01A"], "4")])
def test_arguments_that_do_not_load_are_refused(service, ids, score):
    with pytest.raises(ValidationError):
        service.record_satisfaction_reply(ids, score)


# -- on the broker --------------------------------------------------------------------------------

def test_over_rpc_a_reply_is_published_once_by_the_relay(config, container, probe,
                                                         bus_envelopes, new_application):
    published = probe("tracking", "satisfaction_recorded")
    application_id, code = new_application()
    for envelope in (bus_envelopes.received(application_id, code),
                     bus_envelopes.case("case_resolved", application_id, "resolved",
                                        result="Çukur kapatıldı."),
                     bus_envelopes.case("case_closed", application_id, "closed")):
        support.deliver(config, container, envelope)
    with ServiceRpcProxy("tracking", config, timeout=20) as tracking:
        first = tracking.record_satisfaction_reply([application_id], 5, "in-reply-6")
        again = tracking.record_satisfaction_reply([application_id], 5, "in-reply-6")
    assert first == again and first["score"] == 5
    [event] = published.take(1)
    assert event["application_id"] == application_id and event["data"]["source"] == "sms"
    assert published.others(event) == []


def test_a_rating_published_before_sources_were_told_still_loads_as_from_the_web():
    from services.common.events import load_event, make_event

    envelope = make_event("satisfaction_recorded", "01A", {"score": 4})
    envelope["data"].pop("source")  # as version 1 was published before issue 11
    assert load_event(envelope)["data"] == {"score": 4, "comment": None, "source": "web"}
    assert envelope["version"] == 1
