"""Reporting's repository: the events waiting to be projected, the facts (every event kept,
for the rebuild), the application summaries, the report buckets, and the projector's journal and
lease.

Every read and write is by `_id`, or by a list of them (FerretDB 1.24 walks the table for
anything else; our build answers `$in` on `_id` from the index too), apart from
the small `pending` collection, which the projector drains every second.
What is only ever read whole is stored as one value: a bucket's counters (`zc`, their JSON
compressed; a month's are thousands of names, which carry unit codes with dots, not allowed in
MongoDB field names, and FerretDB decoded them as fields in 75 ms against 2 ms as one string),
a summary, a waiting event, most of a fact (`packed`), and the journal (compressed).

A document the projector read as absent is inserted in bulk; one stored already is rewritten
by deleting and inserting it again, 1,000 at a time (`_reinsert`), a fifth of the cost of
replacing it on FerretDB (10,000 summaries of 1.5 KB: 0.8 s against 3.8 s; 4,800 buckets of
7 KB: 1.5 s against 3.3-3.9 s). Between the two a document is absent, so each rewrite is
written down first: summaries in the projector's journal (which `get_summary` reads
meanwhile), buckets in the rewrite's own pages (`REWRITE`, a sequence number that is odd while
they are rewritten; reports read buckets between two equal even numbers,
`read_buckets(settled=True)`).

While the projector holds its lease without a break, it is the one writer of the summaries and
the buckets: what it last wrote of them is kept here too (`_written`, a least-recently-used
cache bounded in bytes, as stored), and its own reads (`summaries`, `read_buckets(settled=False)`)
take them from there. On FerretDB those reads were a third of a batch's time at 10,000
applications. The cache is forgotten whenever another writer may have come in between: the
lease taken over from or by another owner, a rebuild, a rewrite resumed, a write that failed
or found a document another writer had created.
"""
from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import bson
import orjson
from cachetools import LRUCache
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, DuplicateKeyError

from services.common.mongo import (
    IDS_PER_READ,
    VERSION,
    Conflict,
    Index,
    ensure_indexes,
    find_by_ids,
    insert_new,
    list_once,
    pack,
    pack_bytes,
    slots,
    unpack,
    write_guarded,
)
from services.common.outbox import BOOKKEEPING, insert_once, insert_with_events

INDEXES: dict[str, list[Index]] = {}
LEASE_ID = "projector"
PACKED = "packed"
JOURNAL = "z"
JOURNAL_LIMIT = 12 * 1024 * 1024  # compressed bytes; MongoDB's documents stop at 16 MB
REWRITE = "rewrite"  # the buckets being deleted and inserted again: `seq` odd, `pages` of them
PAGE = 8 * 1024 * 1024  # bytes per page of a rewrite
COUNTS = "zc"  # a bucket's counters: their JSON, compressed (a fifth of the bytes to move)
SETTLE_SECONDS = 10.0  # how long a report waits for a rewrite of the buckets to end
FACTS_PER_DOCUMENT = 500  # facts are only read all together (the rebuild): packed in hundreds
# what the lease holder keeps of what it wrote: 10,000 applications' summaries are about 13 MB
# packed, their 4,800 buckets about 7 MB compressed
SUMMARIES_KEPT_BYTES = 64 * 1024 * 1024
BUCKETS_KEPT_BYTES = 96 * 1024 * 1024


class JournalTooLarge(Exception):
    """A batch whose journal would not fit one document: the projector halves it."""


class RewriteUnderway(ConnectionFailure):
    """The buckets stayed mid-rewrite for `SETTLE_SECONDS` (a projector died in one; the
    next lease holder finishes it): answered as the database out of reach, a 503 to retry."""


def _packed_event(event: dict) -> dict:
    return {"_id": event["event_id"], PACKED: pack(event)}


def _packed(summary: dict) -> dict:
    """A summary as stored: its `_id`, and the rest (read only whole, by `_id`) as one text."""
    return {"_id": summary["_id"], PACKED: pack({k: v for k, v in summary.items()
                                                 if k != "_id"})}


def _unpacked(doc: dict | None) -> dict | None:
    """A stored summary as the projector reads it (one stored unpacked reads as it is)."""
    if doc is None or PACKED not in doc:
        return doc
    return {"_id": doc["_id"], **unpack(doc[PACKED])}


def _upsert_each(collection, docs: list[dict], spawn_map: Callable | None = None) -> None:
    """Replace-or-insert each document by `_id`, one call each (overlapped through
    `spawn_map`): FerretDB 1.24 answers a bulk of upserts of new documents without
    `nModified`, or not at all, while a single upsert takes about a millisecond."""
    for _ in (spawn_map or map)(
            lambda doc: collection.replace_one({"_id": doc["_id"]}, doc, upsert=True), docs):
        pass


def _reinsert(collection, docs: list[dict], spawn_map: Callable | None = None) -> None:
    """Rewrite stored documents whole: delete 1,000 by `$in` on `_id`, insert them again in
    bulk, and so on, the chunks side by side through `spawn_map` (the server deletes and
    inserts one while this process encodes the next). One that another writer inserted in
    between (a process that lost the lease) is replaced: the last writer wins, as with a
    replace."""
    def rewrite(chunk: list[dict]) -> list[dict]:
        collection.delete_many({"_id": {"$in": [doc["_id"] for doc in chunk]}})
        return [chunk[i] for i in sorted(insert_new(collection, chunk))]

    chunks = [docs[at:at + IDS_PER_READ] for at in range(0, len(docs), IDS_PER_READ)]
    for taken in (spawn_map or map)(rewrite, chunks):
        _upsert_each(collection, taken, spawn_map)


def _insert_new(collection, docs: list[dict]) -> list[str]:
    """Insert documents believed new; returns the `_id`s that existed already, left as they
    were."""
    return [docs[i]["_id"] for i in sorted(insert_new(collection, docs))]


def _bucket_bytes(doc: dict) -> int:
    return len(doc[COUNTS]) + len(doc.get("names") or "") + len(doc.get("batches") or "") + 200


class _Written:
    """What the lease holder last wrote of the summaries (their packed text) and the buckets
    (as stored): its own reads come from here while nobody else can have written."""

    def __init__(self) -> None:
        self.summaries: LRUCache = LRUCache(SUMMARIES_KEPT_BYTES, getsizeof=len)
        self.buckets: LRUCache = LRUCache(BUCKETS_KEPT_BYTES, getsizeof=_bucket_bytes)

    def forget(self) -> None:
        self.summaries.clear()
        self.buckets.clear()

    @staticmethod
    def keep(cache: LRUCache, key: str, value: object) -> None:
        try:
            cache[key] = value
        except ValueError:  # larger than the whole cache: read from the server
            cache.pop(key, None)


def _decoded(doc: dict) -> dict:
    """A bucket as stored, with its counters (`keys`), names and stamps decoded (a new dict:
    the stored one may be kept)."""
    doc = dict(doc)
    counts = zlib.decompress(doc.pop(COUNTS)) if COUNTS in doc else doc.pop("counts", "{}")
    doc["keys"] = orjson.loads(counts)
    doc["names"] = orjson.loads(doc.get("names") or "{}")
    stamps = doc.get("batches") or []
    doc["batches"] = stamps.split() if isinstance(stamps, str) else stamps
    return doc


def _split(docs: list[dict], new: Iterable[str]) -> tuple[list[dict], list[dict]]:
    """`(believed new, stored)`."""
    new = set(new)
    return [d for d in docs if d["_id"] in new], [d for d in docs if d["_id"] not in new]


class ReportingStore:
    """Everything reporting persists, behind a narrow interface."""

    def __init__(self, db: Database):
        self.db = db
        self.pending = db["pending_events"]
        self.facts = db["facts"]
        self.applications = db["applications"]
        self.buckets = db["report_buckets"]
        self.projector = db["projector"]
        self.callback_notes = db["callback_notes"]
        self.note_index = db["callback_note_index"]
        self.files = db["report_files"]
        self.runs = db["report_runs"]
        self.audit_log = db["audit_log"]
        self._written = _Written()
        self._lease: tuple[str, int] | None = None  # (owner, version) this store last wrote

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    # -- what the handlers write: the event, once ---------------------------------------------

    def enqueue(self, event: dict) -> bool:
        """Keep an event for the projector (its `_id` is the event id); False if it waits
        already. Once projected it is a fact, and a redelivery of it is folded as a no-op."""
        return insert_once(self.pending, _packed_event(event))

    def enqueue_many(self, events: list[dict]) -> None:
        """Keep a batch of events for the projector (those waiting already are left)."""
        _insert_new(self.pending, [_packed_event(event) for event in events])

    def waiting(self, limit: int) -> list[dict]:
        """Up to `limit` events waiting to be projected."""
        return [unpack(doc[PACKED]) if PACKED in doc else
                {k: v for k, v in doc.items() if k != "_id"}
                for doc in self.pending.find({}).limit(limit)]

    def waiting_count(self) -> int:
        return self.pending.count_documents({})

    # -- what the projector writes -----------------------------------------------------------------

    def take_lease(self, owner: str, now: datetime, seconds: float) -> bool:
        """Hold the projector's lease until `now + seconds` (True), unless another owner holds
        it unexpired. One guarded write: of two processes asking at once, one gets it."""
        current = self.projector.find_one({"_id": LEASE_ID})
        if current and current.get("owner") != owner and current["until"] > now:
            return False
        if current is None or (owner, current.get(VERSION, 0)) != self._lease:
            # someone wrote the lease since this store did: another projector may have written
            self._written.forget()
        try:
            version = write_guarded(self.projector, LEASE_ID,
                                    None if current is None else current.get(VERSION, 0),
                                    {"owner": owner, "until": now + timedelta(seconds=seconds)})
        except (Conflict, DuplicateKeyError):
            return False
        self._lease = (owner, version)
        return True

    def release_lease(self, owner: str) -> None:
        self.projector.delete_one({"_id": LEASE_ID, "owner": owner})

    def journal(self) -> dict | None:
        """The batch the projector was applying when it stopped, if any."""
        doc = self.projector.find_one({"_id": "journal"})
        if doc is None or JOURNAL not in doc:
            return doc
        return unpack(zlib.decompress(doc[JOURNAL]))

    def write_journal(self, batch: dict) -> None:
        """One compressed document: a batch's summaries and bucket changes run to megabytes,
        which FerretDB writes and deletes far slower than a tenth of their size. Raises
        `JournalTooLarge` past `JOURNAL_LIMIT` (a document holds 16 MB at most)."""
        compressed = zlib.compress(pack_bytes(batch), 1)
        if len(compressed) > JOURNAL_LIMIT:
            raise JournalTooLarge(len(compressed))
        self.projector.replace_one({"_id": "journal"}, {"_id": "journal", JOURNAL: compressed},
                                   upsert=True)

    def clear_journal(self) -> None:
        self.projector.delete_one({"_id": "journal"})

    def summaries(self, application_ids: Iterable[str], spawn_map: Callable | None = None
                  ) -> dict[str, dict]:
        """The stored summaries of these applications (absent ones left out), by `_id`: those
        the lease holder wrote last from `_written`, the rest from the server."""
        kept, missing = {}, []
        for doc_id in application_ids:
            text = self._written.summaries.get(doc_id)
            if text is None:
                missing.append(doc_id)
            else:
                kept[doc_id] = _unpacked({"_id": doc_id, PACKED: text})
        found = find_by_ids(self.applications, missing, spawn_map=spawn_map) if missing else {}
        return {**kept, **{doc_id: _unpacked(doc) for doc_id, doc in found.items()}}

    @staticmethod
    def pack_summaries(summaries: list[dict]) -> list[dict]:
        """Summaries as stored, once for both the journal and `write_summaries`."""
        return [_packed(doc) for doc in summaries]

    def write_summaries(self, docs: list[dict], spawn_map: Callable | None = None,
                        new: Iterable[str] = ()) -> None:
        """Store summaries whole, as `pack_summaries` gives them (or not packed yet). The
        projector's lease holder is their one writer, and they are in its journal first: those
        in `new` are inserted in bulk, the rest (and those of `new` that existed after all)
        deleted and inserted again."""
        packed = [doc if PACKED in doc else _packed(doc) for doc in docs]
        fresh, stored = _split(packed, new)
        with self._forgotten_on_error():
            taken = set(_insert_new(self.applications, fresh))
            _reinsert(self.applications, stored + [d for d in fresh if d["_id"] in taken],
                      spawn_map)
        for doc in packed:
            self._written.keep(self._written.summaries, doc["_id"], doc[PACKED])

    @staticmethod
    def pack_facts(batch: str, facts: list[dict]) -> list[dict]:
        """A batch's facts as stored: `FACTS_PER_DOCUMENT` to a document named after the batch
        (on FerretDB an insert costs about the same for one fact as for hundreds packed)."""
        return [{"_id": f"{batch}|{at // FACTS_PER_DOCUMENT}",
                 "n": len(facts[at:at + FACTS_PER_DOCUMENT]),
                 PACKED: pack(facts[at:at + FACTS_PER_DOCUMENT])}
                for at in range(0, len(facts), FACTS_PER_DOCUMENT)]

    def keep_facts(self, docs: list[dict]) -> None:
        """Insert facts as `pack_facts` gives them, those not kept yet (a replayed batch
        inserts the rest)."""
        _insert_new(self.facts, docs)

    def fact_count(self) -> int:
        """How many facts are kept."""
        return sum(doc.get("n", 1) for doc in self.facts.find({}, {"n": 1}))

    def read_buckets(self, bucket_ids: Iterable[str], settled: bool = True
                     ) -> dict[str, dict]:
        """Buckets by id (absent ones left out), with their counters by key (`keys`).
        `settled`: read while no rewrite is under way (none absent because it is being
        written), waiting for one to end up to `SETTLE_SECONDS`; only the projector, which
        does the rewrites, reads them unsettled."""
        ids = list(dict.fromkeys(bucket_ids))
        kept: dict[str, dict] = {}
        if not settled:  # the projector's own read: what it wrote last, the rest from the server
            kept = {i: doc for i in ids if (doc := self._written.buckets.get(i)) is not None}
            ids = [i for i in ids if i not in kept]
        until = time.monotonic() + SETTLE_SECONDS
        while True:
            before = self._rewrite_seq() if settled else 0
            if before % 2 == 0:
                found = find_by_ids(self.buckets, ids)
                if not settled or self._rewrite_seq() == before:
                    break
            if time.monotonic() > until:
                raise RewriteUnderway("the report buckets are being rewritten")
            time.sleep(0.02)
        return {doc_id: _decoded(doc) for doc_id, doc in {**kept, **found}.items()}

    @staticmethod
    def pack_buckets(docs: list[dict]) -> list[dict]:
        """Buckets as stored (their counters compressed)."""
        return [{
            **{k: v for k, v in doc.items() if k not in ("keys", "batches", "counts")},
            COUNTS: zlib.compress(orjson.dumps(doc["keys"]), 1),
            "names": orjson.dumps(doc.get("names", {})).decode(),
            # one value, not one per stamp: FerretDB's cost follows a document's values
            "batches": " ".join(doc.get("batches", []))} for doc in docs]

    def write_buckets(self, docs: list[dict], spawn_map: Callable | None = None,
                      new: Iterable[str] = ()) -> list[str]:
        """Store buckets whole, as `pack_buckets` gives them (or not packed yet): those in
        `new` (read as absent) inserted in bulk, the rest rewritten. Returns the new ones
        another writer had created meanwhile, left unwritten (the caller reads and applies
        them again)."""
        packed = [doc if COUNTS in doc else self.pack_buckets([doc])[0] for doc in docs]
        fresh, stored = _split(packed, new)
        with self._forgotten_on_error():
            taken = _insert_new(self.buckets, fresh)
            if stored:
                self._rewrite(stored, spawn_map)
        if taken:  # another writer is at work: nothing kept can be trusted
            self._written.forget()
        else:
            for doc in packed:
                self._written.keep(self._written.buckets, doc["_id"], doc)
        return taken

    @contextmanager
    def _forgotten_on_error(self) -> Iterator[None]:
        """A write cut short leaves the server holding part of it: forget what was kept."""
        try:
            yield
        except BaseException:
            self._written.forget()
            raise

    # -- rewriting buckets: written down first, for a crash between delete and insert ----------

    def _rewrite_seq(self) -> int:
        doc = self.projector.find_one({"_id": REWRITE}, {"seq": 1})
        return doc["seq"] if doc else 0

    def _rewrite(self, docs: list[dict], spawn_map: Callable | None = None) -> None:
        """Delete and insert stored buckets again, after writing them down in pages (their
        BSON cut in `PAGE`s) and marking the rewrite begun (odd `seq`)."""
        self.resume_rewrite(spawn_map)  # one cut short first: its pages are written over here
        text = bson.encode({"docs": docs})
        pages = [{"_id": f"{REWRITE}|{number}", "z": text[at:at + PAGE]}
                 for number, at in enumerate(range(0, len(text), PAGE))]
        # deleted and inserted, not replaced (FerretDB reads and decodes a page it replaces):
        # nothing reads the pages until the sequence number below is odd
        self.projector.delete_many({"_id": {"$in": [page["_id"] for page in pages]}})
        self.projector.insert_many(pages)
        seq = self._rewrite_seq()
        begun = seq + 1 if seq % 2 == 0 else seq
        self.projector.replace_one({"_id": REWRITE},
                                   {"_id": REWRITE, "seq": begun, "pages": len(pages)},
                                   upsert=True)
        self._finish_rewrite(docs, begun, spawn_map)

    def _finish_rewrite(self, docs: list[dict], seq: int,
                        spawn_map: Callable | None = None) -> None:
        _reinsert(self.buckets, docs, spawn_map)
        self.projector.replace_one({"_id": REWRITE}, {"_id": REWRITE, "seq": seq + 1,
                                                      "pages": 0})

    def resume_rewrite(self, spawn_map: Callable | None = None) -> bool:
        """Finish a rewrite of the buckets a crash cut short (True), from its pages: before
        anything reads a bucket to change it, since one may be absent."""
        doc = self.projector.find_one({"_id": REWRITE})
        if doc is None or doc["seq"] % 2 == 0:
            return False
        self._written.forget()
        text = b"".join(self.projector.find_one({"_id": f"{REWRITE}|{number}"})["z"]
                        for number in range(doc["pages"]))
        self._finish_rewrite(bson.decode(text)["docs"], doc["seq"], spawn_map)
        return True

    def drop_waiting(self, event_ids: list[str]) -> None:
        """Delete a batch's stored events, one command per 1,000 (`$in` on `_id`: an index
        search; 2.5 s for 2,100 one at a time)."""
        for at in range(0, len(event_ids), IDS_PER_READ):
            self.pending.delete_many({"_id": {"$in": event_ids[at:at + IDS_PER_READ]}})

    def all_facts(self) -> Iterable[dict]:
        """Every fact kept (the rebuild's input): a walk over the whole collection (documents
        of one fact, as kept before they were packed in hundreds, read too)."""
        for doc in self.facts.find({}):
            if "n" in doc:
                yield from unpack(doc[PACKED])
            else:
                yield unpack(doc[PACKED]) if PACKED in doc else doc

    def reset_projection(self) -> None:
        """Forget the summaries and the buckets (the rebuild writes them again), and a rewrite
        a crash cut short, which would bring old buckets back."""
        self._written.forget()
        seq = self._rewrite_seq()
        if seq % 2:
            self.projector.replace_one({"_id": REWRITE}, {"_id": REWRITE, "seq": seq + 1,
                                                          "pages": 0})
        self.applications.delete_many({})
        self.buckets.delete_many({})

    def all_buckets(self) -> dict[str, dict]:
        return self.read_buckets([doc["_id"] for doc in self.buckets.find({}, {"_id": 1})])

    def get_summary(self, application_id: str) -> dict | None:
        """One application's summary, without bookkeeping fields; while the projector rewrites
        it (absent between delete and insert), as its journal holds it."""
        doc = _unpacked(self.applications.find_one({"_id": application_id}))
        if doc is None:
            journal = self.journal()
            doc = _unpacked(next((summary for summary in (journal or {}).get("summaries", ())
                                   if summary["_id"] == application_id), None))
        summary = {k: v for k, v in (doc or {}).items() if k not in BOOKKEEPING}
        # a document holding only bookkeeping: an application whose events count nothing
        return summary if set(summary) - {"_id"} else None

    def callback_note(self, week: str, application_id: str) -> dict | None:
        return self.callback_notes.find_one({"_id": f"{week}|{application_id}"})

    def save_callback_note(self, week: str, application_id: str, note: dict) -> None:
        # listed first (KVKK retention finds an application's notes by `_id`): a crash in
        # between leaves a listed week without a note, which the job skips
        self._list_note_week(application_id, week)
        self.callback_notes.replace_one({"_id": f"{week}|{application_id}"},
                                        {"_id": f"{week}|{application_id}", "week": week,
                                         "application_id": application_id, **note},
                                        upsert=True)

    def _list_note_week(self, application_id: str, week: str) -> None:
        """Slot `<application>#<n>` of `callback_note_index` names a week with a note on the
        application (once per week; insert-once slots, read by `_id`)."""
        list_once(self.note_index, application_id, "week", week)

    def callback_note_ids(self, application_id: str) -> list[str]:
        """The `_id`s of the call-back notes on an application, through its index."""
        return [f"{slot['week']}|{application_id}"
                for slot in slots(self.note_index, application_id)]

    def has_run(self, run_id: str) -> bool:
        return self.runs.find_one({"_id": run_id}) is not None

    def mark_run(self, run_id: str, at: datetime) -> None:
        insert_once(self.runs, {"_id": run_id, "at": at})

    def save_file(self, doc: dict, events: list[dict]) -> bool:
        """Store a generated report once, with the event saying it is ready (False: another
        process stored it first)."""
        try:
            insert_with_events(self.files, doc, events)
        except DuplicateKeyError:
            return False
        return True

    def list_files(self, match: dict, limit: int = 200) -> list[dict]:
        hidden = {"content": 0, "pdf": 0, **dict.fromkeys(BOOKKEEPING, 0)}
        return list(self.files.find(match, hidden).sort("created_at", -1).limit(limit))

    def get_file(self, file_id: str, match: dict) -> dict | None:
        return self.files.find_one({**match, "_id": file_id})

    def audit(self, entry: dict) -> None:
        """Who read the call-back list (with the citizens' contacts), when, which week."""
        self.audit_log.insert_one(entry)
