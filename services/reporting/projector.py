"""Reporting's projector: folds events into the application summaries and the report buckets, in
batches, one process at a time, so that a question never scans the applications.

Why batches: on FerretDB a write costs about the same whatever it changes, and two writers'
`$inc` on one bucket lose updates. A batch writes each summary and bucket it touches once. The
batched handler hands a batch straight to `fold` when this process holds the lease (the
messages are acked only after it returned); a process without it stores the batch in
`pending_events` (`ReportingStore.enqueue_many`), which the holder's `run` drains. Either way:

1. it reads the summaries the batch touches (by `$in` on `_id`);
2. folds each application's new events (those not in its `_handled` list) and adds up its
   parts after minus its parts before (`aggregates.parts`), spread per bucket key once;
3. writes the whole outcome to its journal (one document), then the summaries, the facts, the
   buckets (each stamped with the batch id), then deletes the batch's stored events, then the
   journal.

A process killed anywhere in 3 leaves the journal; whoever holds the lease next replays it
first: summaries and facts are rewritten as they were, a bucket already stamped is skipped, so
nothing is counted twice or lost. A batch folded off the bus comes again from the broker, its
events folded as no-ops and their facts kept once. The lease (`take_lease`, a guarded write)
keeps a second process out while the first lives; if it stalls past the lease, the bucket
stamps and the guarded summaries' `_handled` lists still keep a batch from being counted twice.
"""
from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from typing import NamedTuple

import orjson

from services.common.events import CASE_EVENTS, utcnow
from services.common.mongo import as_stored
from services.common.outbox import HANDLED, HANDLED_KEEP, ConcurrentUpdate
from services.reporting import aggregates, domain
from services.reporting.store import JournalTooLarge, ReportingStore

BATCH = 10_000  # events per batch: a batch costs about one write per bucket it touches
LEASE_SECONDS = 30
BATCHES_KEPT = 4  # stamps per bucket: only the journaled batch can be in flight
WRITE_ATTEMPTS = 3
BUCKETS_PER_STEP = 500
FOLDED = {*domain.STATUS_OF_EVENT, *CASE_EVENTS, *domain.OTHER_EVENTS}


def fold_application(summary: dict | None, events: Iterable[dict],
                     handled: list[str]) -> tuple[dict | None, list[str], bool]:
    """Fold an application's new events into its summary: `(summary, handled ids, moved)`."""
    handled = list(handled)
    moved = False
    for event in events:
        if event["event_id"] in handled:
            continue
        handled.append(event["event_id"])
        moved = True
        if event["type"] in FOLDED:
            new, _ = domain.fold_summary(summary, event)
            summary = new if new is not None else summary
    return summary, handled[-HANDLED_KEEP:], moved


def _order(event: dict) -> tuple:
    return (event["occurred_at"], event["event_id"])


class Folded(NamedTuple):
    """What a batch of events changes."""
    summaries: list[dict]  # the new summary documents
    delta: aggregates.Contribution  # the bucket changes
    names: dict[str, dict[str, str]]  # display names per bucket
    fresh: list[dict]  # the events new to their summaries (a redelivery's are not): the facts


def fold_batch(events: list[dict], stored: dict[str, dict], tz: tzinfo) -> Folded:
    """Fold a batch of events into the stored summaries."""
    by_app: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        by_app[event["application_id"]].append(event)
    summaries, total, names, fresh = [], {}, defaultdict(dict), []
    for app, mine in by_app.items():
        current = stored.get(app)
        before = None if current is None else {k: v for k, v in current.items()
                                               if not k.startswith("_")}
        known = set((current or {}).get(HANDLED, []))
        fresh += {event["event_id"]: event for event in mine
                  if event["event_id"] not in known}.values()
        after, handled, moved = fold_application(before or None, sorted(mine, key=_order),
                                                 (current or {}).get(HANDLED, []))
        if not moved:
            continue
        summaries.append({**(after or {}), "_id": app, HANDLED: handled})
        if after is None:
            # only facts that count nothing (a merged duplicate): the handled list is kept all
            # the same, so that a redelivery is not kept as a fact again
            continue
        now, was = aggregates.parts(after, tz), aggregates.parts(before, tz)
        aggregates.add_change(total, now, was)
        shown = aggregates.names_of(after)
        # a bucket holds the names of every application counted in it: they are added only
        # where it counts anew, or under names it did not carry before
        if shown and (shown != aggregates.names_of(before or {})
                      or {part for part, _ in now} - {part for part, _ in was}):
            for bucket_id in aggregates.bucket_ids(part for part, _ in now):
                names[bucket_id].update(shown)
    return Folded(summaries, aggregates.spread(total), dict(names), fresh)


def journal_changes(delta: aggregates.Contribution, names: dict[str, dict[str, str]]) -> dict:
    """A batch's bucket changes as the journal keeps them (one packed text: counter names carry
    dots, which MongoDB field names may not hold)."""
    return {"delta": [[bucket, key, counters] for (bucket, key), counters in delta.items()],
            "names": names}


class Projector:
    """Drains `pending_events` into summaries and buckets; see the module docstring."""

    def __init__(self, store: ReportingStore, tz: tzinfo,
                 spawn_map: Callable | None = None, clock: Callable[[], datetime] = utcnow,
                 batch: int = BATCH):
        self.store = store
        self.batch = batch
        self.tz = tz
        self.spawn_map = spawn_map
        self.clock = clock
        self.owner = uuid.uuid4().hex
        self._lock = threading.Lock()

    def run(self, wait: bool | float = False) -> int:
        """Project what waits; returns how many events were taken. When this process is
        projecting already, returns 0 at once without `wait`, after `wait` seconds at most if
        it is a number; when another process holds the lease, always 0 (it projects them)."""
        if wait is True:
            locked = self._lock.acquire()
        elif wait:
            locked = self._lock.acquire(timeout=wait)
        else:
            locked = self._lock.acquire(blocking=False)
        if not locked:
            return 0
        try:
            if not self.store.take_lease(self.owner, self.clock(), LEASE_SECONDS):
                return 0
            self._replay(self.store.journal())
            taken = 0
            while True:
                events = self.store.waiting(self.batch)
                if not events:
                    break
                self._apply(events)
                taken += len(events)
                self.store.take_lease(self.owner, self.clock(), LEASE_SECONDS)
            return taken
        finally:
            self._lock.release()

    def fold(self, events: list[dict]) -> bool:
        """Fold a batch just taken off the bus, never stored in `pending`: True once done;
        False at once when another process holds the lease (the caller stores the events for
        it). Folded before they are acked, so after a crash they come again: the journal is
        replayed first, and a redelivered event is folded as a no-op, its fact kept once."""
        with self._lock:
            if not self.store.take_lease(self.owner, self.clock(), LEASE_SECONDS):
                return False
            self._replay(self.store.journal())
            # One batch however large (the batcher bounds it): it costs about one write per
            # bucket it touches, so the larger, the cheaper per event. Dates to the millisecond,
            # as the store keeps them, so the live fold and a rebuild from the facts agree.
            self._apply(as_stored(events), waiting=False)
            return True

    def _apply(self, events: list[dict], waiting: bool = True) -> None:
        apps = {event["application_id"] for event in events}
        stored = self.store.summaries(sorted(apps), self.spawn_map)
        folded = fold_batch(events, stored, self.tz)
        batch = uuid.uuid4().hex
        journal = {
            "batch": batch,
            # what to delete from `pending` once applied (none: the bus holds them unacked)
            "event_ids": [event["event_id"] for event in events] if waiting else [],
            "summaries": self.store.pack_summaries(folded.summaries),
            "new": [doc["_id"] for doc in folded.summaries if doc["_id"] not in stored],
            # the events new to their summaries, as kept for the rebuild: a replay writes them
            # once; a redelivered event, no longer new, is not kept again
            "facts": self.store.pack_facts(
                batch, [domain.fact_from_event(event) for event in folded.fresh]),
            **journal_changes(folded.delta, folded.names),
        }
        try:
            self.store.write_journal(journal)
        except JournalTooLarge:
            if len(events) == 1:
                raise
            # each half is a batch of its own: an application's events may fall in both, as
            # they do in successive batches
            half = len(events) // 2
            self._apply(events[:half], waiting)
            self._apply(events[half:], waiting)
            return
        del folded, stored  # the journal holds what is left to write
        self._replay(journal)

    def _replay(self, journal: dict | None) -> None:
        """Apply a journaled batch; every step can run again without counting twice."""
        # first, before any bucket is read to be changed: one may be absent mid-rewrite
        self.store.resume_rewrite(self.spawn_map)
        if journal is None:
            return
        # The summaries and facts are written while the buckets are read and changed: the
        # three steps are independent (each can run again, a summary mid-rewrite is read from
        # the journal), and the database server writes while this process computes.
        _run_together(self.spawn_map, lambda: self._write_summaries_and_facts(journal),
                      lambda: self._apply_buckets(journal))
        if journal["event_ids"]:
            self.store.drop_waiting(journal["event_ids"])
        self.store.clear_journal()

    def _write_summaries_and_facts(self, journal: dict) -> None:
        # after a crash, a summary listed as new may have been written: the store replaces it
        self.store.write_summaries(journal["summaries"], self.spawn_map,
                                   new=journal.get("new", ()))
        facts = journal.get("facts")
        if facts is None:  # a journal from before facts were in it: its events wait in pending
            wanted = set(journal["event_ids"])
            facts = self.store.pack_facts(journal["batch"], [
                domain.fact_from_event(event) for event in self.store.waiting(10 * self.batch)
                if event["event_id"] in wanted])
        self.store.keep_facts(facts)

    def _apply_buckets(self, journal: dict, only: set[str] | None = None,
                       attempt: int = 1) -> None:
        changes: dict[str, dict[str, aggregates.Counters]] = defaultdict(dict)
        delta, names = journal["delta"], journal["names"]
        if isinstance(delta, str):  # a journal written before they were kept unquoted
            delta, names = orjson.loads(delta), orjson.loads(names)
        for bucket, key, counters in delta:
            changes[bucket][key] = counters
        ids = sorted((set(changes) | set(names)) if only is None else only)
        batch, packed, absent = journal["batch"], [], []
        # read, changed and packed (compressed) a step at a time: a batch's buckets decoded
        # all at once held hundreds of megabytes. The next step is read while this one is
        # changed (the server works while this process computes): two steps held at most.
        steps = [ids[at:at + BUCKETS_PER_STEP] for at in range(0, len(ids), BUCKETS_PER_STEP)]
        current = self.store.read_buckets(steps[0], settled=False) if steps else {}
        for at, step in enumerate(steps):
            following: dict[str, dict] = {}

            def read_next(at: int = at, following: dict = following) -> None:
                if at + 1 < len(steps):
                    following.update(self.store.read_buckets(steps[at + 1], settled=False))

            def change(step: list[str] = step, current: dict = current) -> None:
                absent.extend(i for i in step if i not in current)
                packed.extend(self.store.pack_buckets(
                    _changed(step, current, changes, names, batch)))

            # the read first: it sends its query and yields, and the change computes while the
            # server answers (started the other way round, the change would run to its end first)
            _run_together(self.spawn_map, read_next, change)
            current = following
        # the buckets read as absent are inserted in one command per chunk (an upsert each
        # costs several times as much on FerretDB); one another writer created meanwhile is
        # read and applied again
        taken = self.store.write_buckets(packed, self.spawn_map, new=absent)
        if taken:
            if attempt >= WRITE_ATTEMPTS:
                raise ConcurrentUpdate(f"{len(taken)} buckets kept being created by another")
            self._apply_buckets(journal, set(taken), attempt + 1)

    def rebuild(self, facts: Iterable[dict]) -> int:
        """Forget the summaries and buckets and fold every fact again, in memory, then store
        the result. Returns how many applications it summarised."""
        by_app: dict[str, list[dict]] = defaultdict(list)
        for fact in facts:
            by_app[fact["application_id"]].append(fact)
        # a fact kept twice (a batch redelivered after a crash, before its journal) is folded
        # once: the summary's handled list skips it
        summaries, delta, names, _ = fold_batch(
            [event for events in by_app.values() for event in events], {}, self.tz)
        journal = {"batch": uuid.uuid4().hex, "summaries": summaries,
                   **journal_changes(delta, names)}
        with self._lock:
            if not self.store.take_lease(self.owner, self.clock(), LEASE_SECONDS):
                raise RuntimeError("another reporting process is projecting; stop it first")
            self.store.reset_projection()
            self.store.write_summaries(summaries, self.spawn_map,
                                       new=[doc["_id"] for doc in summaries])
            self._apply_buckets(journal)
        return len(summaries)


def _changed(step: list[str], current: dict[str, dict],
             changes: dict[str, dict[str, aggregates.Counters]],
             names: dict[str, dict[str, str]], batch: str) -> list[dict]:
    """The buckets of `step` with a batch's changes applied (those that have it already
    left out: applied before a crash)."""
    docs = []
    for bucket_id in step:
        doc = current.get(bucket_id) or _new_bucket(bucket_id)
        if batch in doc.get("batches", []):
            continue
        keys = doc["keys"]
        for key, counters in changes.get(bucket_id, {}).items():
            kept = aggregates.apply_counters(keys.get(key), counters)
            if kept:
                keys[key] = kept
            else:
                keys.pop(key, None)
        doc["names"] = {**doc.get("names", {}), **names.get(bucket_id, {})}
        doc["batches"] = [*doc.get("batches", []), batch][-BATCHES_KEPT:]
        docs.append(doc)
    return docs


def _run_together(spawn_map: Callable | None, *steps: Callable[[], None]) -> None:
    """Run the steps side by side in green threads, started in order (one after the other
    without `spawn_map`); returns when all have ended, then raises the first error: none is
    left writing when the batch is retried."""
    def outcome(step: Callable[[], None]) -> BaseException | None:
        try:
            step()
        except BaseException as exc:  # re-raised below, once all have ended
            return exc
        return None

    for error in list((spawn_map or map)(outcome, steps)):
        if error is not None:
            raise error


def _new_bucket(bucket_id: str) -> dict:
    granularity, period, level = bucket_id.split("|", 2)
    return {"_id": bucket_id, "granularity": granularity, "period": period, "level": level,
            "keys": {}, "names": {}, "batches": []}
