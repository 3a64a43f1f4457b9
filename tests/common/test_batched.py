"""Batched event handlers over the real broker: events that arrive together are one worker's
batch, acked once it returned; a batch that fails is run again event by event so that only the
message at fault is retried and parked; a store outage is retried without using up attempts."""
from __future__ import annotations

from typing import ClassVar

import eventlet
from nameko.amqp.publish import Publisher
from nameko.testing.services import entrypoint_waiter
from nameko.testing.utils import get_extension
from nameko.testing.waiting import wait_for_call
from pymongo.errors import AutoReconnect

from services.common import topology
from services.common.batched import (
    ACKED,
    GONE,
    IN_HAND,
    BatchQueueConsumer,
    Deliveries,
    EventBatcher,
    batched_event_handler,
)
from services.common.dlq import list_dead_letters
from tests.envelopes import received, routed
from tests.support import publish


class Seen:
    batches: ClassVar[list[list[str]]] = []  # event ids of each batch that returned
    outages = 0  # batches to fail with the store away


class BatchedService:
    name = "batchtest"

    @batched_event_handler(("intake", "application_received", "handle_application_received"),
                           ("routing", "application_routed", "handle_application_routed"))
    def record(self, events: list[dict]) -> None:
        if Seen.outages > 0:
            Seen.outages -= 1
            raise AutoReconnect("127.0.0.1:27018: connection pool paused")
        if any(event["data"].get("category") == "poison" for event in events):
            raise RuntimeError("cannot handle this one")
        Seen.batches.append([event["event_id"] for event in events])


def start(config: dict, container_factory, linger_ms: int = 300):
    Seen.batches, Seen.outages = [], 0
    container = container_factory(BatchedService, dict(config,
                                                       EVENT_BATCH_LINGER_MS=str(linger_ms)))
    container.start()
    return container


def until_handled(ids: list[str]):
    def callback(worker_ctx, result, exc_info) -> bool:
        done = {event_id for batch in Seen.batches for event_id in batch}
        return set(ids) <= done
    return callback


def test_events_arriving_together_are_one_batch_across_their_queues(config, container_factory):
    container = start(config, container_factory)
    receipts = [received() for _ in range(20)]
    events = receipts + [routed(receipt) for receipt in receipts]
    ids = [event["event_id"] for event in events]
    with entrypoint_waiter(container, "record", callback=until_handled(ids), timeout=20):
        for event in events:
            publish(config, event)
    handled = [event_id for batch in Seen.batches for event_id in batch]
    assert sorted(handled) == sorted(ids)  # each once
    assert len(Seen.batches) < len(events) / 4  # far fewer workers than events
    assert list_dead_letters(config["AMQP_URI"]) == []


def test_the_event_at_fault_fails_alone_and_is_parked_the_others_are_handled(
    config, container_factory
):
    container = start(config, container_factory)
    good = [received() for _ in range(4)]
    poison = received(category="poison")
    failures = []

    def poison_parked(worker_ctx, result, exc_info) -> bool:
        if exc_info is not None and [e["event_id"] for e in worker_ctx.args[0]] == [
                poison["event_id"]]:
            failures.append(1)
        return len(failures) == int(config["EVENT_MAX_ATTEMPTS"])

    with entrypoint_waiter(container, "record", callback=poison_parked, timeout=30):
        for event in [*good[:2], poison, *good[2:]]:
            publish(config, event)
    handled = [event_id for batch in Seen.batches for event_id in batch]
    assert sorted(handled) == sorted(event["event_id"] for event in good)  # each once
    parked = list_dead_letters(config["AMQP_URI"])
    assert [(p.event_id, p.attempts, p.error) for p in parked] == [
        (poison["event_id"], int(config["EVENT_MAX_ATTEMPTS"]), "RuntimeError")]
    assert parked[0].origin_queue == (
        "evt-intake-application_received--batchtest.handle_application_received")


def test_a_batch_that_meets_an_outage_is_retried_without_using_up_attempts(
    config, container_factory
):
    container = start(config, container_factory)
    Seen.outages = 2 * int(config["EVENT_MAX_ATTEMPTS"])
    events = [received() for _ in range(3)]
    ids = [event["event_id"] for event in events]
    with entrypoint_waiter(container, "record", callback=until_handled(ids), timeout=30):
        for event in events:
            publish(config, event)
    assert Seen.outages == 0
    assert sorted(i for batch in Seen.batches for i in batch) == sorted(ids)
    assert list_dead_letters(config["AMQP_URI"]) == []


def test_a_batch_is_acked_once_around_a_message_parked_alone_and_none_comes_again(
    config, container_factory
):
    container = start(config, container_factory)
    consumer = get_extension(container, BatchQueueConsumer)
    good = [received() for _ in range(6)]
    broken = received()
    del broken["data"]["tracking_code"]  # dead-lettered (and acked) alone, amid the batch
    ids = [event["event_id"] for event in good]
    all_settled = lambda *call: consumer.unsettled() == 0  # noqa: E731
    with (eventlet.Timeout(20), wait_for_call(consumer, "ack_messages", all_settled),
          entrypoint_waiter(container, "record", callback=until_handled(ids), timeout=20)):
        for event in [*good[:3], broken, *good[3:]]:
            publish(config, event)
    container.stop()  # what was not acked goes back to its queue, and would come again

    again = start(config, container_factory)
    marker = received()
    with entrypoint_waiter(again, "record", callback=until_handled([marker["event_id"]]),
                           timeout=20):
        publish(config, marker)
    assert Seen.batches == [[marker["event_id"]]]  # nothing handled before came again
    parked = list_dead_letters(config["AMQP_URI"])
    assert [(p.event_id, p.error) for p in parked] == [(broken["event_id"],
                                                        "invalid envelope: data")]


def test_a_body_that_is_not_json_is_parked_and_the_events_around_it_handled(
    config, container_factory
):
    container = start(config, container_factory)
    good = [received() for _ in range(2)]
    ids = [event["event_id"] for event in good]
    with entrypoint_waiter(container, "record", callback=until_handled(ids), timeout=20):
        publish(config, good[0])
        Publisher(config["AMQP_URI"]).publish(
            b'{"event_id": "01J', exchange=topology.event_exchange("intake"),
            routing_key="application_received", serializer=None,
            content_type="application/json", content_encoding="utf-8")
        publish(config, good[1])
    assert sorted(i for batch in Seen.batches for i in batch) == sorted(ids)
    parked = list_dead_letters(config["AMQP_URI"])
    assert [p.error for p in parked] == ["invalid envelope: event"]


class SlowService:
    name = "batchslow"
    waiting: ClassVar[list[int]] = []  # events queued for the next batch, as each batch starts
    batcher = None

    @batched_event_handler(("intake", "application_received", "handle_application_received"))
    def record(self, events: list[dict]) -> None:
        SlowService.waiting.append(SlowService.batcher._queues["record"].qsize())
        eventlet.sleep(0.05)  # a fold's work: meanwhile the bus keeps delivering
        Seen.batches.append([event["event_id"] for event in events])


def test_the_process_holds_one_batch_waiting_at_most_the_broker_the_rest(
    config, container_factory
):
    Seen.batches, SlowService.waiting = [], []
    container = container_factory(SlowService, dict(config, EVENT_BATCH_SIZE="5",
                                                    EVENT_BATCH_LINGER_MS="10"))
    SlowService.batcher = get_extension(container, EventBatcher)
    container.start()
    events = [received() for _ in range(40)]
    ids = [event["event_id"] for event in events]
    with entrypoint_waiter(container, "record", callback=until_handled(ids), timeout=30):
        for event in events:
            publish(config, event)
    assert sorted(i for batch in Seen.batches for i in batch) == sorted(ids)  # each once
    assert max(SlowService.waiting) == 5  # a full batch waited, and no more was taken


def test_a_multiple_ack_never_reaches_past_a_message_still_in_hand():
    deliveries = Deliveries(channel=None)
    for tag in range(1, 8):
        deliveries.order.append(tag)
        deliveries.state[tag] = IN_HAND
    assert deliveries.settled([1, 2], ACKED) == 2
    assert deliveries.settled([5, 6], ACKED) is None  # 3 and 4 are still in hand
    assert deliveries.settled([4], GONE) is None  # dead-lettered alone: 3 still in hand
    assert deliveries.settled([3], GONE) == 6  # 3 to 6 settled: ack up to the last batch's
    assert list(deliveries.order) == [7]
    assert deliveries.settled([7], GONE) is None  # acked alone already: nothing more to ack
