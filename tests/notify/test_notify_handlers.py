"""Notify's handlers with their dependencies in hand: sent once, failures recorded, never twice."""
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from unittest.mock import MagicMock

import eventlet
import pytest
from nameko.testing.services import worker_factory

from services.common.events import load_event, make_event, utcnow
from services.common.metrics import REGISTRY
from services.common.outbox import OUTBOX
from services.common.retention import Retention
from services.notify import domain
from services.notify.bootstrap import build
from services.notify.providers import PermanentFailure
from services.notify.sending import Deliveries
from services.notify.service import NotifyService
from services.notify.store import MessageInFlight, NotifyStore

PHONE = "+905551112233"
SMS_TO_PHONE = domain.Recipient("sms", PHONE)
NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


class FakeSms:
    """A provider that records what it was given, or fails like a refused request."""

    name = "fake"

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.sent: list[tuple[str, str]] = []
        self.references: list[str | None] = []

    def send(self, to: str, text: str, reference: str | None = None) -> str:
        self.references.append(reference)
        if self.fail:
            raise PermanentFailure("http_400")
        self.sent.append((to, text))
        return f"fake-{len(self.sent)}"


def received(application_id: str = "app-1") -> dict:
    return load_event(make_event("application_received", application_id, {
        "tracking_code": "K7M4QX2D9", "security_digest": "d" * 64, "kind": "complaint",
        "category": "road_damage", "channel": "web", "location": {"province": "Mersin"},
        "received_at": NOW,
    }, occurred_at=NOW))


def routed(application_id: str = "app-1") -> dict:
    return load_event(make_event("application_routed", application_id, {
        "tracking_code": "K7M4QX2D9", "category": "road_damage", "tier": "district",
        "institution": "mezitli_bld", "institution_name": "Mezitli Belediyesi",
        "unit": "mezitli_bld.works", "unit_name": "Fen İşleri Müdürlüğü", "rule": "test",
        "read_hours": 4, "resolve_hours": 24,
    }, occurred_at=NOW))


# Quick steps, so that waiting for another sender's claim takes a test a second, not a minute.
QUICK = domain.SendTiming(provider_timeout=0.5, record_seconds=0.5, margin=1.0,
                          poll_seconds=0.05, pause_seconds=0.01)


@pytest.fixture
def store(config):
    parts = build(config)
    yield parts.store
    parts.close()


def make_service(store: NotifyStore, sms: FakeSms | None = None, contact: dict | None = None,
                 timing: domain.SendTiming = QUICK, email=None):
    """A worker of the service whose parts hold `store` and fake providers; `service.sms` is
    the SMS provider, `service.deliveries` the use case."""
    intake = MagicMock()
    intake.get_contact.return_value = contact
    sms = sms or FakeSms()
    # no quiet hours: these tests are about the handlers, whatever time of day they run at
    # (a routed notice held until 08:00 Istanbul made them fail in the evening)
    deliveries = Deliveries(store, sms, email or MagicMock(name="email"),
                            domain.Composer("https://acikkapi.example"), timing, quiet=None)
    service = worker_factory(NotifyService, parts=SimpleNamespace(
        deliveries=deliveries, retention=Retention(deliveries.store.db)),
                             intake_rpc=intake)
    service.sms, service.deliveries = sms, deliveries
    return service


def contact(phone: str | None = PHONE) -> dict:
    return {"phone": phone, "email": "ayse@example.com", "preferred_channel": "sms"}


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("acikkapi_notifications_total",
                                     {"channel": "sms", "outcome": outcome}) or 0.0


def claimed(store, event: dict, claim: str, now=None) -> tuple[str, dict]:
    """Store the event's SMS as `sending` under another worker's `claim`; (its key, it)."""
    key = domain.message_key(event["event_id"], "application_received")
    message = domain.new_message(key, event, SMS_TO_PHONE, "application_received",
                                 provider="fake", claim=claim, now=now or utcnow())
    store.messages.insert_one(message)
    return key, message


def test_the_citizen_gets_the_received_sms_and_the_log_keeps_only_a_masked_number(store):
    service = make_service(store, contact=contact())
    event = received()
    before = counted("sent")
    service.handle_application_received(event)
    service.intake_rpc.get_contact.assert_called_once_with("app-1")
    [(to, text)] = service.sms.sent
    assert to == PHONE
    assert "K7M-4QX-2D9" in text and "https://acikkapi.example/takip" in text
    message = store.messages.find_one(
        {"_id": domain.message_key(event["event_id"], "application_received")})
    assert message["status"] == "sent"
    assert message["destination"] == "+90555*****33"
    assert message["provider_message_id"] == "fake-1"
    assert "5551112233" not in repr(message)
    [outcome] = message[OUTBOX]
    assert outcome["type"] == "notification_sent"
    assert outcome["data"]["cause_event_id"] == event["event_id"]
    assert outcome["data"]["provider"] == "fake"
    assert "5551112233" not in repr(outcome)
    assert counted("sent") == before + 1


def test_the_routed_sms_is_a_separate_message_for_the_same_application(store):
    service = make_service(store, contact=contact())
    service.handle_application_received(received())
    service.handle_application_routed(routed())
    assert len(service.sms.sent) == 2
    assert "Fen İşleri Müdürlüğü birimine iletildi" in service.sms.sent[1][1]
    assert store.messages.count_documents({"application_id": "app-1"}) == 2


def test_a_redelivered_event_sends_nothing_and_asks_intake_nothing(store):
    service = make_service(store, contact=contact())
    event = received()
    service.handle_application_received(event)
    service.handle_application_received(event)
    assert len(service.sms.sent) == 1
    assert service.intake_rpc.get_contact.call_count == 1
    [message] = store.messages.find()
    assert len(message[OUTBOX]) == 1


@pytest.mark.parametrize("found", [None, contact(phone=None)])
def test_without_a_phone_number_nothing_is_sent_and_the_failure_is_recorded(store, found):
    service = make_service(store, contact=found)
    before = counted("no_contact")
    service.handle_application_received(received())
    assert service.sms.sent == []
    [message] = store.messages.find()
    assert (message["status"], message["error"], message["destination"]) == (
        "failed", "no contact", None)
    [outcome] = message[OUTBOX]
    assert outcome["type"] == "notification_failed"
    assert outcome["data"]["error"] == "no contact"
    assert counted("no_contact") == before + 1


def test_a_provider_refusal_is_recorded_without_the_number_and_not_retried(store, caplog):
    service = make_service(store, sms=FakeSms(fail=True), contact=contact())
    event = received()
    before = counted("failed")
    with caplog.at_level(logging.INFO):
        service.handle_application_received(event)  # does not raise: the failure is the outcome
    [message] = store.messages.find()
    assert (message["status"], message["error"]) == ("failed", "http_400")
    [outcome] = message[OUTBOX]
    assert outcome["type"] == "notification_failed"
    assert outcome["data"]["error"] == "http_400"
    assert counted("failed") == before + 1
    assert caplog.records  # the failure was logged …
    assert all("5551112233" not in repr(vars(record)) for record in caplog.records)  # … safely
    service.sms.fail = False
    service.handle_application_received(event)
    assert service.sms.sent == []  # given up means given up: no surprise SMS later


def test_a_message_another_worker_is_sending_is_not_sent_again_but_retried_later(store):
    # waits shorter than the lease: the claim is still fresh when the wait ends
    service = make_service(store, contact=contact(),
                           timing=domain.SendTiming(poll_seconds=0.05, wait_seconds=0.3))
    event = received()
    key = domain.message_key(event["event_id"], "application_received")
    store.messages.insert_one(domain.new_message(
        key, event, SMS_TO_PHONE, "application_received", provider="fake",
        claim="other-worker", now=utcnow()))
    with pytest.raises(MessageInFlight):
        service.handle_application_received(event)
    assert service.sms.sent == []
    assert store.messages.find_one({"_id": key})["claim"] == "other-worker"


def test_a_message_another_worker_finishes_while_we_wait_is_not_sent_again(store):
    service = make_service(store, contact=contact(),
                           timing=domain.SendTiming(poll_seconds=0.05))  # a minute's lease
    event = received()
    key, message = claimed(store, event, "other-worker")

    def other_worker_finishes() -> None:
        eventlet.sleep(0.3)
        fields, outcome = domain.outcome(message, event, provider_message_id="p1", now=utcnow())
        assert store.finish(key, "other-worker", fields, [outcome])

    finishing = eventlet.spawn(other_worker_finishes)
    service.handle_application_received(event)  # waits within its run: no retry spent
    finishing.wait()
    assert service.sms.sent == []
    message = store.messages.find_one({"_id": key})
    assert (message["status"], message["claim"], len(message[OUTBOX])) == (
        "sent", "other-worker", 1)


def test_a_claim_whose_sender_is_gone_is_taken_over_when_it_lapses_within_one_run(store):
    """A claim left by a sender cut off before it could finish (another process: nothing here
    knows whether it sent) is waited for until its lease ends, then taken over and sent, in
    the same handling — before, the event's retries each met a fresh claim and it was
    dead-lettered."""
    service = make_service(store, contact=contact())
    event = received()
    key = domain.message_key(event["event_id"], "application_received")
    store.messages.insert_one(domain.new_message(
        key, event, SMS_TO_PHONE, "application_received", provider="fake",
        claim="cut-off-sender", now=utcnow()))
    started = utcnow()
    service.handle_application_received(event)
    assert utcnow() - started >= QUICK.lease - timedelta(milliseconds=50)
    assert len(service.sms.sent) == 1
    message = store.messages.find_one({"_id": key})
    assert (message["status"], message["attempts"]) == ("sent", 2)
    assert message["claim"] != "cut-off-sender"


def test_a_message_abandoned_by_a_crashed_worker_is_taken_over_and_sent_once(store):
    service = make_service(store, contact=contact())
    event = received()
    long_ago = utcnow() - domain.SENDING_LEASE - timedelta(seconds=1)
    key, _ = claimed(store, event, "crashed-worker", now=long_ago)
    service.handle_application_received(event)
    service.handle_application_received(event)
    assert len(service.sms.sent) == 1
    message = store.messages.find_one({"_id": key})
    assert (message["status"], message["attempts"]) == ("sent", 2)
    assert message["claim"] != "crashed-worker"


def test_only_the_worker_holding_the_claim_records_the_outcome(store):
    event = received()
    key, message = claimed(store, event, "current")
    fields, outcome = domain.outcome(message, event, provider_message_id="p1", now=utcnow())
    assert store.finish(key, "taken-over", fields, [outcome]) is False
    assert store.messages.find_one({"_id": key})["status"] == "sending"
    assert store.finish(key, "current", fields, [outcome]) is True
    assert store.messages.find_one({"_id": key})["status"] == "sent"


def test_many_workers_handling_one_cause_at_once_send_exactly_one_message(store):
    """Deliveries of one event racing each other, even ones that would pick different channels
    (the citizen changed their preference between two contact lookups): one message goes out."""
    sms = FakeSms()
    email = MagicMock()
    email.name = "fake-mail"
    email.send.return_value = "mail-1"
    service = make_service(store, sms=sms, email=email)
    service.intake_rpc.get_contact.side_effect = [
        dict(contact(), preferred_channel="sms" if i % 2 else "email") for i in range(12)]
    event = received()

    def handle(_):
        try:
            service.handle_application_received(event)
        except MessageInFlight:
            return "in flight"  # retried later by the bus, and then finds it sent
        return "handled"  # sent it, or waited until the one sending it had finished

    pool = eventlet.GreenPool(12)
    outcomes = list(pool.imap(handle, range(12)))
    assert len(sms.sent) + email.send.call_count == 1
    assert outcomes.count("handled") >= 1
    [message] = store.messages.find()
    assert message["status"] == "sent" and len(message[OUTBOX]) == 1
    service.intake_rpc.get_contact.side_effect = None
    service.intake_rpc.get_contact.return_value = contact()
    service.handle_application_received(event)  # the retry of one that was in flight
    assert len(sms.sent) + email.send.call_count == 1


def test_an_abandoned_message_taken_over_by_many_workers_at_once_is_sent_once(store):
    sms = FakeSms()
    service = make_service(store, sms=sms, contact=contact())
    event = received()
    long_ago = utcnow() - domain.SENDING_LEASE - timedelta(seconds=1)
    key, _ = claimed(store, event, "crashed-worker", now=long_ago)

    def handle(_):
        try:
            service.handle_application_received(event)
        except MessageInFlight:
            return "in flight"
        return "handled"

    pool = eventlet.GreenPool(8)
    list(pool.imap(handle, range(8)))
    assert len(sms.sent) == 1
    message = store.messages.find_one({"_id": key})
    assert (message["status"], message["attempts"]) == ("sent", 2)


def test_a_take_over_whose_worker_died_midway_is_taken_over_after_the_lease(store):
    event = received()
    long_ago = utcnow() - domain.SENDING_LEASE - timedelta(seconds=1)
    key, _ = claimed(store, event, "crashed-worker", now=long_ago)
    # a worker won the take-over of that claim, then died before writing it
    store.takeovers.insert_one({"_id": f"{key}@crashed-worker", "claim": "dead-taker",
                                "at": long_ago})
    sms = FakeSms()
    make_service(store, sms=sms, contact=contact()).handle_application_received(event)
    assert len(sms.sent) == 1
    assert store.messages.find_one({"_id": key})["status"] == "sent"


def test_the_delivery_log_lists_an_applications_messages_without_a_query(store):
    service = make_service(store, contact=contact())
    service.handle_application_received(received())
    service.handle_application_routed(routed())
    service.handle_application_received(received("app-2"))
    assert [m["template"] for m in store.log_for("app-1")] == ["application_received",
                                                               "application_routed"]
    assert [m["application_id"] for m in store.log_for("app-2")] == ["app-2"]
    assert store.log_for("app-3") == []
