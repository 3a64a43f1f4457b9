"""The outbox relay: publishes events stored with their documents, then removes them.

Runs inside each producing service, made by its composition root, on a managed thread. It
publishes at once when a write hints at it, in batches: every event of a batch goes out on one
confirm-mode channel with `mandatory`, and the relay then waits once for the broker's acks — an
entry is removed only after RabbitMQ has routed and stored it (a returned or nacked event stays
and is tried again). Waiting for each confirm in turn capped a relay at ~340 events/s; a batch
pays the round trip once.

It also sweeps for entries older than a grace period: at start (entries a crash left behind)
and, on MongoDB, every `OUTBOX_SWEEP_SECONDS` (an indexed query). On FerretDB the same query
decodes every document of the collection, so there it sweeps at start, when something was
actually left behind (a hint dropped from a full queue, a failed publish), and every
`OUTBOX_BACKSTOP_SECONDS` (entries another replica left when it died). Published entries are
taken out through the guarded write (`outbox.clear_published`), never by a blind update that
could overwrite a concurrent write. Two replicas may publish the same entry twice; consumers
are idempotent.
"""
from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import amqp
import eventlet
import eventlet.semaphore
from eventlet.greenpool import GreenPool
from eventlet.queue import Empty
from kombu import Connection

from services.common import metrics, topology
from services.common.events import utcnow
from services.common.mongo import ServiceDatabase, has_indexed_queries
from services.common.outbox import (
    OUTBOX,
    OUTBOX_AT,
    Hints,
    Written,
    clear_published,
    clear_published_many,
    entries,
)

log = logging.getLogger(__name__)
BATCH = 500
CLEAR_CONCURRENCY = 16
SWEEP_ROUNDS = 200  # batches per collection and sweep: 100,000 documents at most
CONFIRM_TIMEOUT = 30.0


class PublishFailed(Exception):
    """The broker could not be reached or did not confirm in time."""


class ConfirmingPublisher:
    """Publishes JSON envelopes in batches on one confirm-mode channel, as nameko would read them.

    `publish` returns the event ids the broker confirmed; the rest were returned (no queue
    bound), nacked or not confirmed, and must be tried again.
    """

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self._conn: Connection | None = None
        self._channel = None
        self._next_tag = 1
        self._acked: set[int] = set()
        self._acked_upto = 0
        self._failed: set[int] = set()
        self._returned: set[str] = set()

    def _ensure_channel(self):
        if self._channel is None:
            self._conn = Connection(self.amqp_uri, heartbeat=0)
            self._conn.connect()
            # py-amqp polls the socket before every publish when the broker may send
            # `connection.blocked`; that poll was a twentieth of the relay's CPU. A blocked
            # broker stops confirming, and `publish` waits for confirms anyway (then fails and
            # leaves the entries for the sweep), so the per-message poll is switched off.
            capabilities = self._conn.connection.client_properties.get("capabilities", {})
            self._conn.connection.client_properties["capabilities"] = dict(
                capabilities, **{"connection.blocked": False})
            channel = self._conn.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.events["basic_return"].add(self._on_return)
            self._channel, self._next_tag = channel, 1
            self._acked, self._acked_upto, self._failed = set(), 0, set()
        return self._channel

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._acked_upto = max(self._acked_upto, tag)
        else:
            self._acked.add(tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._failed.update(range(self._acked_upto + 1, tag + 1) if multiple else (tag,))

    def _on_return(self, reply_code, reply_text, exchange, routing_key, message) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            self._returned.add(json.loads(message.body)["event_id"])

    def _settled(self, tag: int) -> bool:
        return tag <= self._acked_upto or tag in self._acked or tag in self._failed

    def publish(self, envelopes: list[dict]) -> set[str]:
        """Publish a batch; returns the ids of the events the broker confirmed.

        A connection that went stale while idle gets one immediate retry on a fresh one.
        """
        if not envelopes:
            return set()
        try:
            return self._publish_once(envelopes)
        except PublishFailed:
            return self._publish_once(envelopes)

    def _publish_once(self, envelopes: list[dict]) -> set[str]:
        try:
            channel = self._ensure_channel()
            self._returned = set()
            tags: dict[int, str] = {}
            for envelope in envelopes:
                body = json.dumps(envelope, ensure_ascii=False).encode()
                message = amqp.Message(body, content_type="application/json",
                                       content_encoding="utf-8", delivery_mode=2)
                channel.basic_publish(
                    message, exchange=topology.event_exchange(envelope["producer"]).name,
                    routing_key=envelope["type"],
                    # an event nobody subscribes to yet must not wait in the outbox forever
                    mandatory=topology.has_consumers(envelope["type"]))
                tags[self._next_tag] = envelope["event_id"]
                self._next_tag += 1
            with eventlet.Timeout(CONFIRM_TIMEOUT, PublishFailed):
                while not all(self._settled(tag) for tag in tags):
                    self._conn.drain_events(timeout=CONFIRM_TIMEOUT)
        except Exception as exc:
            self.close()
            raise PublishFailed(type(exc).__name__) from exc
        return {event_id for tag, event_id in tags.items()
                if tag not in self._failed and event_id not in self._returned}

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.release()
            except Exception:  # closing a broken connection: nothing left to save
                log.debug("closing the relay's connection failed", exc_info=True)
        self._conn, self._channel = None, None


class OutboxRelay:
    """Publishes the outboxes of `collections` in a service's own database.

    Made by the service's composition root with the database its stores write to; it reads
    the hints those writes leave on it (`db.hints`). `start(spawn)` runs its loop on a thread
    `spawn` starts (nameko's managed threads), `stop` finishes the current batch.
    """

    def __init__(self, db: ServiceDatabase, collections: tuple[str, ...], config: dict,
                 service_name: str):
        if db.hints is None:
            raise ValueError("the relay's database must be opened with hints")
        self.db = db
        self.collections = collections
        self.service_name = service_name
        self.amqp_uri = config["AMQP_URI"]
        self.retry_delay_ms = int(config.get("EVENT_RETRY_DELAY_MS", 1000))
        self.queue_type = config.get("AMQP_QUEUE_TYPE", "classic")
        self.sweep_seconds = float(config.get("OUTBOX_SWEEP_SECONDS", 5))
        self.grace = timedelta(seconds=float(config.get("OUTBOX_GRACE_SECONDS", 2)))
        # Sweeping is a query on `_outbox_at`: indexed on MongoDB, a scan of every document on
        # FerretDB. There it runs at start, after a failure or a lost hint, and as a backstop.
        self.indexed = has_indexed_queries(db)
        self.backstop_seconds = float(config.get("OUTBOX_BACKSTOP_SECONDS", 300))
        self.publisher = ConfirmingPublisher(self.amqp_uri)
        self.hints: Hints = db.hints
        self._left_behind = False  # something failed or a hint was lost: sweep
        self._collections: dict[str, object] = {}
        # One flush at a time: the publisher's connection must have one reader, and `flush` /
        # `sweep` may be called from another greenlet while the relay's thread is flushing.
        self._flushing = eventlet.semaphore.Semaphore()
        self._running = False
        self._thread = None

    def start(self, spawn: Callable[..., Any]) -> None:
        """Run the loop on a thread started by `spawn(function, identifier=…)`."""
        self._running = True
        self._thread = spawn(self._run, identifier="outbox_relay")

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self.hints.wake()  # so the loop can finish
            self._thread.wait()
            self._thread = None
        self.publisher.close()

    def kill(self) -> None:
        self._running = False
        thread, self._thread = self._thread, None
        # nameko may kill the container from the relay's own greenlet (an error in it): that
        # greenlet ends by returning, and killing it from inside would never finish.
        if thread is not None and thread is not eventlet.getcurrent():
            thread.kill()
        self.publisher.close()

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        self._sweep_guarded(timedelta(0))
        clock = eventlet.hubs.get_hub().clock
        next_sweep = clock() + self.sweep_seconds
        next_backstop = clock() + self.backstop_seconds
        while self._running:
            try:
                item = self.hints.queue.get(timeout=max(0.0, next_sweep - clock()))
            except Empty:
                item = None
            batch = [item] if item else []
            while len(batch) < BATCH:
                try:
                    more = self.hints.queue.get_nowait()
                except Empty:
                    break
                if more:
                    batch.append(more)
            if batch:
                # A document hinted once comes with what its write stored; hinted more than
                # once, it is read back (the later writes may have added to its outbox).
                written: dict[tuple[str, object], Written | None] = {}
                for name, doc_id, stored in batch:
                    ref = (name, doc_id)
                    written[ref] = None if ref in written else stored
                self._flush_guarded(list(written), written)
            if clock() >= next_sweep:
                backstop = clock() >= next_backstop
                if self.indexed or backstop or self._left_behind or self.hints.lost():
                    self._left_behind = False
                    self._sweep_guarded(self.grace)
                if backstop:
                    next_backstop = clock() + self.backstop_seconds
                next_sweep = clock() + self.sweep_seconds

    def _sweep_guarded(self, grace: timedelta) -> None:
        """Sweep; a database or broker away now is tried again at the next round."""
        try:
            self.sweep(grace=grace)
        except Exception:
            self._left_behind = True
            log.warning("outbox sweep failed; next round", exc_info=True)
            eventlet.sleep(0.5)

    def sweep(self, grace: timedelta) -> int:
        """Publish every outbox entry waiting longer than `grace`; returns how many documents.

        A batch at a time, until a batch comes back short: a process that died under load
        leaves more than one batch behind, and on FerretDB the next sweep may be the backstop's,
        minutes later (a fault run found 159 applications waiting for it after a restart).
        A publish that fails ends the sweep; the next round takes it up.
        """
        seen = 0
        cutoff = utcnow() - grace
        for name in self.collections:
            for _ in range(SWEEP_ROUNDS):
                docs = self.db[name].find({OUTBOX_AT: {"$lte": cutoff}}, {"_id": 1}).limit(BATCH)
                refs = [(name, doc["_id"]) for doc in docs]
                seen += len(refs)
                if refs and not self._flush_guarded(refs):
                    break  # the broker is away: the next round takes it up
                if len(refs) < BATCH:
                    break
        metrics.OUTBOX_PENDING.labels(self.service_name).set(seen)
        return seen

    def _flush_guarded(self, refs: list[tuple[str, object]],
                       written: dict[tuple[str, object], Written | None] | None = None) -> bool:
        """Flush; False (and a sweep owed) when it failed."""
        try:
            self.flush_many(refs, written)
        except Exception:
            # The broker may be away: the entries stay, and the next sweep tries again.
            self._left_behind = True
            log.exception("outbox publish failed", extra={"documents": len(refs)})
            eventlet.sleep(0.5)
            return False
        return True

    def _collection(self, name: str):
        # made once: building a collection object per document was a tenth of the relay's CPU
        col = self._collections.get(name)
        if col is None:
            col = self._collections[name] = self.db[name]
        return col

    def flush(self, collection: str, doc_id) -> int:
        """Publish one document's outbox; returns how many events were confirmed."""
        return self.flush_many([(collection, doc_id)])

    def flush_many(self, refs: list[tuple[str, object]],
                   written: dict[tuple[str, object], Written | None] | None = None) -> int:
        """Publish the outboxes of these documents as one batch; returns events confirmed.

        `written` holds, for documents a write has just hinted, the version and outbox it
        stored: those are not read back.
        """
        with self._flushing:
            return self._flush(refs, written or {})

    def _flush(self, refs: list[tuple[str, object]],
               written: dict[tuple[str, object], Written | None]) -> int:
        pending: list[tuple[str, object, list[dict]]] = []
        for collection, doc_id in refs:
            col = self._collection(collection)
            stored = written.get((collection, doc_id))
            if stored is not None:
                pending.append((collection, doc_id, entries(stored[1])))
                continue
            doc = col.find_one({"_id": doc_id}, {OUTBOX: 1})
            if doc and doc.get(OUTBOX):
                pending.append((collection, doc_id, entries(doc[OUTBOX])))
            elif doc:
                clear_published(col, doc_id, set())  # a marker with nothing left to send
        envelopes = [envelope for _, _, outbox in pending for envelope in outbox]
        confirmed = self.publisher.publish(envelopes)
        if len(confirmed) < len(envelopes):
            # Returned (no queue: the topology was deleted under us) or nacked: declare the
            # topology again; the entries stay for the next sweep.
            self._left_behind = True
            topology.declare(self.amqp_uri, self.retry_delay_ms, self.queue_type)
        counted: Counter[tuple[str, str]] = Counter()
        by_collection: dict[str, list[tuple[object, set[str]]]] = {}
        for collection, doc_id, outbox in pending:
            done = {e["event_id"] for e in outbox if e["event_id"] in confirmed}
            if done:
                # Whatever was added since it was read stays for the next round.
                by_collection.setdefault(collection, []).append((doc_id, done))
                for envelope in outbox:
                    if envelope["event_id"] in done:
                        counted[(envelope["type"], envelope["producer"])] += 1
        # In a batch: read overlapped, the version claims in one insert, the writes
        # overlapped. One at a time, 10,000 documents (sla's firings) took minutes on FerretDB.
        pool = GreenPool(CLEAR_CONCURRENCY)
        for collection, items in by_collection.items():
            clear_published_many(self._collection(collection), items, pool.imap)
        for (event_type, producer), published in counted.items():
            metrics.EVENTS_PUBLISHED.labels(event_type, producer).inc(published)
        return len(confirmed)
