"""Writes that carry their events, and handlers that apply each event exactly once.

Delivery rule (design §6): an event is stored in the same document write as the state it
describes — under `_outbox`, with `_outbox_at` marking the document as having something to send —
and the relay (`services.common.relay`) publishes it and removes it. A crash between the write and
the publish loses nothing: the relay's sweep finds the entry later.

Idempotency: a handler folds an event into one document and records the event's id under
`_handled` in that same write, guarded by a version number (`_v`), so a redelivered event changes
nothing and emits nothing twice.

An outbox entry is the event's envelope, or that envelope as JSON text where a store packs its
documents (sla's clocks: FerretDB's cost grows with a document's fields and values); `entries`
reads both.
"""
from __future__ import annotations

import contextlib
import json
import logging
import random
from collections.abc import Callable
from typing import Any

import eventlet
from eventlet.queue import Full, LightQueue
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.common.events import utcnow
from services.common.mongo import (
    VERSION,
    Conflict,
    ServiceDatabase,
    claim_versions,
    has_atomic_guards,
    write_guarded,
)

log = logging.getLogger(__name__)

OUTBOX = "_outbox"
OUTBOX_AT = "_outbox_at"
HANDLED = "_handled"
BOOKKEEPING = (HANDLED, OUTBOX, OUTBOX_AT, VERSION)
HANDLED_KEEP = 100  # per document; far more than the events one document ever sees at once
HINT_CAPACITY = 10_000


def entries(outbox: list | None) -> list[dict]:
    """An outbox's envelopes, whether stored as documents or packed as JSON text."""
    return [json.loads(entry) if isinstance(entry, str) else entry for entry in outbox or []]


def packed_entries(outbox: list) -> list:
    """An outbox as a packing store keeps it: each envelope as JSON text."""
    return [entry if isinstance(entry, str)
            else json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
            for entry in outbox]


class ConcurrentUpdate(Exception):
    """The document kept changing under us; the event will be retried."""


# A document's version and whole outbox as a write just stored them: the relay can publish from
# it without reading the document back (its clearing write checks the version).
Written = tuple[int, list]  # the envelopes as stored: documents or JSON text


class Hints:
    """"Document X of collection C has something to send", from a service's writes to its
    relay, within one process.

    They let the relay publish at once; correctness never depends on them (a hint dropped from
    a full queue is remembered as `lost`, and the relay then sweeps). A service's composition
    root makes one and opens its database with it (`ServiceDatabase.hints`).
    """

    def __init__(self, capacity: int = HINT_CAPACITY):
        self.queue: LightQueue = LightQueue(capacity)
        self._lost = False

    def put(self, collection: str, doc_id: Any, written: Written | None) -> None:
        try:
            self.queue.put_nowait((collection, doc_id, written))
        except Full:
            self._lost = True  # the relay's next sweep will find it

    def wake(self) -> None:
        """Wake a relay waiting for a hint (it is stopping)."""
        with contextlib.suppress(Full):
            self.queue.put_nowait(None)

    def lost(self) -> bool:
        """Whether a hint was dropped since the last call (and forget it)."""
        lost, self._lost = self._lost, False
        return lost


def _hint(collection: Collection, doc_id: Any, written: Written | None = None) -> None:
    # (a plain `Database` answers any attribute with a collection: ask for ours by type)
    hints = collection.database.hints if isinstance(collection.database, ServiceDatabase) else None
    if hints is not None:  # a database opened without a relay (a script) is swept instead
        hints.put(collection.name, doc_id, written)


def attach_events(doc: dict, events: list[dict]) -> dict:
    """Return `doc` with `events` appended to its outbox."""
    if events:
        doc[OUTBOX] = list(doc.get(OUTBOX) or []) + list(events)
        doc[OUTBOX_AT] = doc.get(OUTBOX_AT) or utcnow()
    return doc


def insert_with_events(collection: Collection, doc: dict, events: list[dict]) -> None:
    """Insert `doc` and its events in one write (raises DuplicateKeyError like insert_one)."""
    stored = attach_events(dict(doc, **{VERSION: 1}), events)
    collection.insert_one(stored)
    if events:
        _hint(collection, doc["_id"], (1, stored[OUTBOX]))


Change = Callable[[dict | None], dict | None]


def modify(collection: Collection, doc_id: Any, change: Change, *,
           attempts: int = 20) -> dict | None:
    """Read document `doc_id`, store `change(doc_or_None)` in its place, retrying on conflict.

    `change` gets the whole stored document (bookkeeping included) and returns the new one, or
    None to write nothing. Every write is `write_guarded` against the version read, so a
    concurrent writer is never overwritten; a conflict reads again and calls `change` again.
    Returns the document stored, or None when `change` declined.
    """
    for attempt in range(attempts):
        current = collection.find_one({"_id": doc_id})
        new = change(current)
        if new is None:
            return None
        if replace_if_unchanged(collection, doc_id, current, new) is not None:
            return new
        # Let the other writer finish; jittered so that many contenders spread out instead of
        # colliding again in step.
        eventlet.sleep(random.uniform(0, min(0.1, 0.002 * 2 ** attempt)))  # noqa: S311
    raise ConcurrentUpdate(f"{collection.name}: too many concurrent updates")


def replace_if_unchanged(collection: Collection, doc_id: Any, current: dict | None,
                         new: dict) -> dict | None:
    """Store `new` in place of `current` (as read; None: absent) unless another writer changed
    it since; hints the relay when the outbox grew. Returns `new` as stored, or None on a
    conflict (read again and decide again). One step of `modify`, for callers that read many
    documents first and write them in a batch."""
    read_version = None if current is None else current.get(VERSION, 0)
    try:
        new[VERSION] = write_guarded(collection, doc_id, read_version, new)
    except (Conflict, DuplicateKeyError):
        return None
    new["_id"] = doc_id
    if new.get(OUTBOX) and (current is None or new[OUTBOX] != current.get(OUTBOX)):
        _hint(collection, doc_id, (new[VERSION], new[OUTBOX]))
    return new


def replace_many_if_unchanged(collection: Collection, pairs: list[tuple[dict, dict]],
                              spawn_map: Callable | None = None) -> list[bool]:
    """`replace_if_unchanged` for many documents read before: on FerretDB their versions are
    claimed in one insert, then each is replaced (through `spawn_map`, e.g. a GreenPool's
    `imap`, to overlap the round trips). True where stored; False where another writer got
    there first (read it again and decide again)."""
    run = spawn_map or map
    if has_atomic_guards(collection.database):
        return list(run(lambda pair: replace_if_unchanged(
            collection, pair[0]["_id"], pair[0], pair[1]) is not None, pairs))
    won = claim_versions(collection, [(current["_id"], current.get(VERSION, 0) + 1)
                                      for current, _ in pairs])

    def store(pair: tuple[dict, dict]) -> bool:
        current, new = pair
        doc_id = current["_id"]
        if doc_id not in won:
            return False
        new[VERSION] = current.get(VERSION, 0) + 1
        collection.replace_one({"_id": doc_id}, dict(new, _id=doc_id))
        new["_id"] = doc_id
        if new.get(OUTBOX) and new[OUTBOX] != current.get(OUTBOX):
            _hint(collection, doc_id, (new[VERSION], new[OUTBOX]))
        return True

    return list(run(store, pairs))


def update_with_events(
    collection: Collection, filter_: dict, set_fields: dict, events: list[dict]
) -> bool:
    """Set fields on one document and append events to its outbox, in one write.

    `filter_` is `{"_id": …}` plus top-level equalities the stored document must still have
    (a status, a claim, a version); they are checked on the document read, inside the guarded
    write. Returns False when the document is absent or no longer matches (nothing written).
    """
    doc_id = filter_["_id"]
    conditions = {k: v for k, v in filter_.items() if k != "_id"}

    def change(current: dict | None) -> dict | None:
        if current is None or any(current.get(k) != v for k, v in conditions.items()):
            return None
        return attach_events(dict(current, **set_fields), events)

    return modify(collection, doc_id, change) is not None


def replace_with_events(
    collection: Collection, doc: dict, events: list[dict], *, attempts: int = 20
) -> None:
    """Insert or replace `doc` (keyed by its `_id`) with `events` appended, in one write.

    Events still waiting in the stored document's outbox are kept (a plain `replace_one` would
    drop them unpublished).
    """

    def change(current: dict | None) -> dict:
        new = {k: v for k, v in doc.items() if k not in BOOKKEEPING}
        if current is not None and current.get(OUTBOX):
            new[OUTBOX] = current[OUTBOX]
            new[OUTBOX_AT] = current.get(OUTBOX_AT) or utcnow()
        if current is not None and current.get(HANDLED):
            new[HANDLED] = current[HANDLED]
        return attach_events(new, events)

    modify(collection, doc["_id"], change, attempts=attempts)


Fold = Callable[[dict | None], tuple[dict | None, list[dict]]]


def fold_once(
    collection: Collection, doc_id: Any, event_id: str, fold: Fold, *, attempts: int = 20
) -> bool:
    """Apply `fold` to document `doc_id` once for `event_id`.

    `fold(current_or_None)` returns `(new_document_or_None, events_to_publish)`; `None` means
    "nothing to store". Returns False when this event had already been applied. The write is
    guarded by the version read, so concurrent handlers of the same document never lose an
    update; a conflict re-reads and folds again.
    """
    seen = False

    def change(current: dict | None) -> dict | None:
        nonlocal seen
        seen = current is not None and event_id in current.get(HANDLED, ())
        if seen:
            return None
        new, events = fold(None if current is None else _strip(current))
        if new is None:
            return None
        handled = list(current.get(HANDLED, ())) if current else []
        new = dict(new, _id=doc_id)
        new[HANDLED] = [*handled, event_id][-HANDLED_KEEP:]
        if current is not None:
            new[OUTBOX] = current.get(OUTBOX) or []
            if current.get(OUTBOX_AT):
                new[OUTBOX_AT] = current[OUTBOX_AT]
        return attach_events(new, events)

    modify(collection, doc_id, change, attempts=attempts)
    return not seen


def clear_published(collection: Collection, doc_id: Any, published: set[str]) -> int:
    """Take the `published` events out of a document's outbox; returns how many it held.

    Events added since the relay read the outbox stay for the next round.
    """
    removed = 0

    def change(current: dict | None) -> dict | None:
        nonlocal removed
        new, removed = _without(current, published)
        return new

    modify(collection, doc_id, change)
    return removed


def clear_published_many(collection: Collection, items: list[tuple[Any, set[str]]],
                         spawn_map: Callable | None = None) -> None:
    """`clear_published` for many documents: read (overlapped through `spawn_map`), then
    written as one batch (`replace_many_if_unchanged`); a document changed meanwhile is
    cleared on its own."""
    run = spawn_map or map
    currents = list(run(lambda item: collection.find_one({"_id": item[0]}), items))
    pairs, cleared = [], []
    for item, current in zip(items, currents, strict=True):
        new, _ = _without(current, item[1])
        if new is not None:
            pairs.append((current, new))
            cleared.append(item)
    stored = replace_many_if_unchanged(collection, pairs, spawn_map)
    for (doc_id, published), written in zip(cleared, stored, strict=True):
        if not written:
            clear_published(collection, doc_id, published)


def _without(current: dict | None, published: set[str]) -> tuple[dict | None, int]:
    """The document without the published events (None: nothing to write), and how many
    events its outbox held."""
    outbox = (current or {}).get(OUTBOX) or []
    left = [raw for raw, envelope in zip(outbox, entries(outbox), strict=True)
            if envelope["event_id"] not in published]
    removed = len(outbox) - len(left)
    if current is None or (not removed and (left or OUTBOX_AT not in current)):
        return None, removed
    new = dict(current, **{OUTBOX: left})
    if not left:
        new.pop(OUTBOX_AT, None)
    return new, removed


def insert_once(collection: Collection, doc: dict) -> bool:
    """Insert a document whose `_id` is derived from an event; False if it already exists."""
    try:
        collection.insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


def _strip(doc: dict) -> dict:
    """The document as domain code sees it: without the bookkeeping fields."""
    return {k: v for k, v in doc.items() if k not in BOOKKEEPING}
