"""The outbox relay: publishes events stored with their documents, then removes them.

Runs inside each producing service as a nameko dependency with its own managed thread. It
publishes at once when a write hints at it, and sweeps for entries older than a grace period
(left by a crash or a lost hint) at start and every `OUTBOX_SWEEP_SECONDS`. Publishing uses
broker confirms and `mandatory`, so an entry is removed only after RabbitMQ has routed and stored
it. Two replicas may publish the same entry twice; consumers are idempotent.
"""
from __future__ import annotations

import functools
import logging
from datetime import timedelta

import eventlet
from eventlet.queue import Empty
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.extensions import DependencyProvider

from services.common import metrics, topology
from services.common.events import utcnow
from services.common.mongo import get_database
from services.common.outbox import OUTBOX, OUTBOX_AT, VERSION, hint_queue

log = logging.getLogger(__name__)
BATCH = 500


class OutboxRelay(DependencyProvider):
    """Publishes the outboxes of `collections` in the service's own database."""

    def __init__(self, *collections: str):
        self.collections = collections
        self._running = False
        self._thread = None

    def setup(self) -> None:
        config = self.container.config
        self.db = get_database(config, self.container.service_name)
        self.amqp_uri = config["AMQP_URI"]
        self.retry_delay_ms = int(config.get("EVENT_RETRY_DELAY_MS", 1000))
        self.sweep_seconds = float(config.get("OUTBOX_SWEEP_SECONDS", 5))
        self.grace = timedelta(seconds=float(config.get("OUTBOX_GRACE_SECONDS", 2)))
        self.publisher = Publisher(self.amqp_uri, use_confirms=True, mandatory=True)
        self.hints = hint_queue(self.db.name)

    def start(self) -> None:
        self._running = True
        self._thread = self.container.spawn_managed_thread(self._run, identifier="outbox_relay")

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self.hints.put_nowait(None)  # wake the loop so it can finish
            self._thread.wait()
            self._thread = None

    def kill(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.kill()
            self._thread = None

    def get_dependency(self, worker_ctx):
        return self

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        self.sweep(grace=timedelta(0))
        next_sweep = eventlet.hubs.get_hub().clock() + self.sweep_seconds
        while self._running:
            timeout = max(0.0, next_sweep - eventlet.hubs.get_hub().clock())
            try:
                item = self.hints.get(timeout=timeout)
            except Empty:
                item = None
            batch = {item} if item else set()
            while len(batch) < BATCH:
                try:
                    more = self.hints.get_nowait()
                except Empty:
                    break
                if more:
                    batch.add(more)
            for collection, doc_id in batch:
                self._flush_guarded(collection, doc_id)
            if eventlet.hubs.get_hub().clock() >= next_sweep:
                self.sweep(grace=self.grace)
                next_sweep = eventlet.hubs.get_hub().clock() + self.sweep_seconds

    def sweep(self, grace: timedelta) -> int:
        """Publish every outbox entry waiting longer than `grace`; returns how many documents."""
        seen = 0
        cutoff = utcnow() - grace
        for name in self.collections:
            docs = self.db[name].find({OUTBOX_AT: {"$lte": cutoff}}, {"_id": 1}).limit(BATCH)
            for doc in list(docs):
                seen += 1
                self._flush_guarded(name, doc["_id"])
        metrics.OUTBOX_PENDING.labels(self.container.service_name).set(seen)
        return seen

    def _flush_guarded(self, collection: str, doc_id) -> None:
        try:
            self.flush(collection, doc_id)
        except Exception:
            # The broker may be away: the entries stay, the next sweep tries again.
            log.exception("outbox publish failed", extra={"collection": collection})
            eventlet.sleep(0.5)

    def flush(self, collection: str, doc_id) -> int:
        """Publish one document's outbox; returns how many events were confirmed."""
        col = self.db[collection]
        doc = col.find_one({"_id": doc_id}, {OUTBOX: 1})
        if not doc or not doc.get(OUTBOX):
            col.update_one({"_id": doc_id, OUTBOX_AT: {"$exists": True}, OUTBOX: {"$size": 0}},
                           {"$unset": {OUTBOX_AT: ""}})
            return 0
        published = []
        for envelope in doc[OUTBOX]:
            self._publish(envelope)
            published.append(envelope["event_id"])
        col.update_one(
            {"_id": doc_id},
            {"$pull": {OUTBOX: {"event_id": {"$in": published}}}, "$inc": {VERSION: 1}},
        )
        col.update_one({"_id": doc_id, OUTBOX: {"$size": 0}}, {"$unset": {OUTBOX_AT: ""}})
        return len(published)

    def _publish(self, envelope: dict) -> None:
        exchange = topology.event_exchange(envelope["producer"])
        # An event nobody subscribes to yet (a fact for future consumers) is published all the
        # same, but cannot be refused for want of a queue: it would wait in the outbox forever.
        mandatory = topology.has_consumers(envelope["type"])
        publish = functools.partial(self.publisher.publish, envelope, exchange=exchange,
                                    routing_key=envelope["type"], mandatory=mandatory)
        try:
            publish()
        except UndeliverableMessage:
            # No queue bound: the topology was deleted under us. Declare it and try once more.
            topology.declare(self.amqp_uri, self.retry_delay_ms)
            publish()
        metrics.EVENTS_PUBLISHED.labels(envelope["type"], envelope["producer"]).inc()
