"""Batched event handlers over the real broker: events that arrive together are one worker's
batch, acked once it returned; a batch that fails is run again event by event so that only the
message at fault is retried and parked; a store outage is retried without using up attempts."""
from __future__ import annotations

from typing import ClassVar

import eventlet
from nameko.testing.services import entrypoint_waiter
from nameko.testing.utils import get_extension
from pymongo.errors import AutoReconnect

from services.common.batched import EventBatcher, batched_event_handler
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
