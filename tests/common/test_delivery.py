"""Delivery guarantees on the real broker: the outbox relay, retries, dead letters and replay."""
import json
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from nameko.testing.services import entrypoint_waiter
from pymongo.errors import AutoReconnect

from services.common.bootstrap import Composed, Parts, parts_of
from services.common.dlq import list_dead_letters, replay
from services.common.events import make_event
from services.common.handlers import event_handler
from services.common.outbox import (
    OUTBOX,
    OUTBOX_AT,
    ConcurrentUpdate,
    fold_once,
    insert_with_events,
    packed_entries,
    update_with_events,
)
from tests.support import database as get_database
from tests.support import publish


def received(category: str = "noise") -> dict:
    return make_event("application_received", "app-" + category, {
        "tracking_code": "ABCDEFGH1", "security_digest": "d" * 64, "kind": "complaint",
        "category": category, "channel": "web", "location": {"province": "Mersin"},
        "received_at": datetime.now(UTC),
    })




class Box:
    """What the test service has seen, and whether the 'fix' has been deployed."""

    fixed = False
    handled: ClassVar[list[str]] = []


class PoisonSensitiveService:
    name = "deliverytest"

    @event_handler("intake", "application_received")
    def handle(self, event: dict) -> None:
        if event["data"]["category"] == "poison" and not Box.fixed:
            raise RuntimeError("cannot handle this one")
        Box.handled.append(event["event_id"])


def test_a_poison_message_is_retried_then_parked_and_the_queue_keeps_flowing(
    config, container_factory
):
    Box.fixed, Box.handled = False, []
    container = container_factory(PoisonSensitiveService, config)
    container.start()
    poison, good = received("poison"), received("noise")
    failures = []

    def third_failure(worker_ctx, result, exc_info):
        if exc_info is not None:
            failures.append(worker_ctx.args[0]["event_id"])
        return len(failures) == int(config["EVENT_MAX_ATTEMPTS"])

    with entrypoint_waiter(container, "handle", callback=third_failure, timeout=20):
        publish(config, poison)
        publish(config, good)

    assert failures == [poison["event_id"]] * 3
    assert good["event_id"] in Box.handled  # the good one was not stuck behind the poison
    parked = list_dead_letters(config["AMQP_URI"])
    assert [(p.event_id, p.attempts, p.error) for p in parked] == [
        (poison["event_id"], 3, "RuntimeError")]
    assert parked[0].origin_queue == "evt-intake-application_received--deliverytest.handle"
    # listing is not consuming
    assert len(list_dead_letters(config["AMQP_URI"])) == 1

    Box.fixed = True
    with entrypoint_waiter(container, "handle", timeout=10) as waited:
        assert replay(config["AMQP_URI"]) == 1
    assert waited.get() is None
    assert Box.handled[-1] == poison["event_id"]
    assert list_dead_letters(config["AMQP_URI"]) == []


def test_a_malformed_envelope_goes_straight_to_the_dead_letter_queue(config, container_factory):
    Box.fixed, Box.handled = False, []
    container = container_factory(PoisonSensitiveService, config)
    container.start()
    broken = received("noise")
    del broken["data"]["tracking_code"]
    good = received("noise")
    with entrypoint_waiter(container, "handle", timeout=10):
        publish(config, broken)
        publish(config, good)
    assert Box.handled == [good["event_id"]]
    parked = list_dead_letters(config["AMQP_URI"])
    assert [(p.event_id, p.error) for p in parked] == [(broken["event_id"],
                                                        "invalid envelope: data")]


class DatabaseAwayService:
    """Fails with the store away (or a document held) for more deliveries than the attempts
    allow, then succeeds."""

    name = "deliverytest"
    outage_deliveries = 0
    failure: Exception = AutoReconnect("127.0.0.1:27018: connection pool paused")

    @event_handler("intake", "application_received")
    def handle(self, event: dict) -> None:
        if DatabaseAwayService.outage_deliveries > 0:
            DatabaseAwayService.outage_deliveries -= 1
            raise DatabaseAwayService.failure
        Box.handled.append(event["event_id"])


@pytest.mark.parametrize("failure", [
    AutoReconnect("127.0.0.1:27018: connection pool paused"),
    ConcurrentUpdate("wake_hours: too many concurrent updates"),
], ids=["outage", "claim-left-by-the-outage"])
def test_an_outage_of_the_database_is_retried_without_using_up_the_attempts(
    config, container_factory, failure
):
    """A 10 s database outage is not the message's fault: parking it would leave a replay to do
    by hand (it lost reporting's counts in the fault suite). Nor is a document still claimed by
    a writer the outage cut off (it parked SLA's events in CI). Retried uncounted until it goes."""
    Box.handled = []
    failures = 2 * int(config["EVENT_MAX_ATTEMPTS"])
    DatabaseAwayService.outage_deliveries = failures
    DatabaseAwayService.failure = failure
    container = container_factory(DatabaseAwayService, config)
    container.start()
    event = received("noise")
    outcomes = []

    def handled(worker_ctx, result, exc_info):
        outcomes.append(exc_info is None)
        return exc_info is None

    with entrypoint_waiter(container, "handle", callback=handled, timeout=20):
        publish(config, event)
    assert outcomes == [False] * failures + [True]
    assert Box.handled == [event["event_id"]]
    assert list_dead_letters(config["AMQP_URI"]) == []


class ProducerParts(Parts):
    """A producer's composition: intake's database, a relay for its `things`."""

    def __init__(self, config: dict):
        super().__init__(config, "intake", relay=("things",))


class ProducerService:
    name = "intake"  # publishes as intake, to intake's exchange
    parts = Composed(ProducerParts)


def test_the_relay_publishes_what_was_written_with_a_document_and_clears_it(
    config, container_factory, probe
):
    received_probe = probe("intake", "application_received")
    container = container_factory(ProducerService, config)
    container.start()
    things = parts_of(container).db["things"]  # as the service writes: its hints reach its relay
    event = received("noise")
    insert_with_events(things, {"_id": "t1"}, [event])
    [published] = received_probe.take(1)
    assert published["event_id"] == event["event_id"]
    container.stop()  # waits for the relay to finish what it started: confirm, then remove
    doc = get_database(config, "intake")["things"].find_one({"_id": "t1"})
    assert doc[OUTBOX] == [] and OUTBOX_AT not in doc


def test_an_event_added_while_the_relay_publishes_stays_for_the_next_round(
    config, container_factory, probe
):
    """The relay clears a document's outbox in one write only if nothing was added since it
    read it; otherwise it takes out exactly what the broker confirmed."""
    received_probe = probe("intake", "application_received")
    parts = ProducerParts(config)  # not started: this test drives its relay
    relay = parts.relay
    things = parts.db["things"]
    first, second = received("noise"), received("cleaning")
    insert_with_events(things, {"_id": "t3", "status": "a"}, [first])
    real_publish = relay.publisher.publish

    def publish_while_a_write_lands(envelopes):
        update_with_events(things, {"_id": "t3"}, {"status": "b"}, [second])
        return real_publish(envelopes)

    relay.publisher.publish = publish_while_a_write_lands
    try:
        assert relay.flush("things", "t3") == 1
    finally:
        relay.publisher.close()
    [published] = received_probe.take(1)
    assert published["event_id"] == first["event_id"]
    doc = things.find_one({"_id": "t3"})
    assert [e["event_id"] for e in doc[OUTBOX]] == [second["event_id"]]
    assert OUTBOX_AT in doc and doc["status"] == "b"
    parts.close()


def test_an_entry_left_by_a_crash_is_published_by_the_sweep_at_start(
    config, container_factory, probe
):
    received_probe = probe("intake", "application_received")
    things = get_database(config, "intake")["things"]
    leftover = received("noise")
    # As if the process died after the write, before publishing: no relay was running.
    insert_with_events(things, {"_id": "t2"}, [leftover])
    container = container_factory(ProducerService, config)
    container.start()
    [published] = received_probe.take(1)
    assert published["event_id"] == leftover["event_id"]


def test_more_than_a_batch_left_by_a_crash_is_all_published_at_start(
    config, container_factory, probe, monkeypatch
):
    """A process killed under load leaves more than one batch behind: the sweep at start takes
    them all, batch after batch (on FerretDB the next sweep would be the backstop's, minutes
    later)."""
    from services.common import relay

    monkeypatch.setattr(relay, "BATCH", 4)
    received_probe = probe("intake", "application_received")
    things = get_database(config, "intake")["things"]
    left = [received(f"c{n}") for n in range(10)]
    for n, event in enumerate(left):
        insert_with_events(things, {"_id": f"left{n}"}, [event])
    container = container_factory(ProducerService, dict(config, OUTBOX_BACKSTOP_SECONDS="600"))
    container.start()
    published = received_probe.take(10)
    assert sorted(e["event_id"] for e in published) == sorted(e["event_id"] for e in left)


def test_fold_once_ignores_an_event_it_has_already_applied(config):
    col = get_database(config, "intake")["folds"]

    def add_one(current):
        count = (current or {}).get("count", 0)
        return {"count": count + 1}, []

    assert fold_once(col, "x", "event-1", add_one) is True
    assert fold_once(col, "x", "event-1", add_one) is False
    assert fold_once(col, "x", "event-2", add_one) is True
    assert col.find_one({"_id": "x"})["count"] == 2


def test_entries_packed_as_json_text_are_published_and_cleared_like_documents(config, probe):
    """A store may keep its outbox entries as JSON text (sla's clocks, packed for FerretDB):
    the relay publishes them as the envelopes they are and clears them the same way."""
    received_probe = probe("intake", "application_received")
    parts = ProducerParts(config)  # not started: this test drives its relay
    things = parts.db["things"]
    first, second = received("noise"), received("cleaning")
    things.insert_one({"_id": "p1", OUTBOX: packed_entries([first, second]),
                       OUTBOX_AT: datetime.now(UTC)})
    try:
        assert parts.relay.flush("things", "p1") == 2
    finally:
        parts.relay.publisher.close()
    published = received_probe.take(2)
    assert sorted(published, key=lambda e: e["event_id"]) == sorted(
        [json.loads(json.dumps(first)), json.loads(json.dumps(second))],
        key=lambda e: e["event_id"])
    doc = things.find_one({"_id": "p1"})
    assert doc[OUTBOX] == [] and OUTBOX_AT not in doc
    parts.close()
