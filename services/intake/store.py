"""Intake's repository: citizens, applications (with their outbox), inbound messages (with their
outbox), tracking-code claims, duplicate slots, idempotency keys, code deliveries, the staff
audit log, attachments and the phone index.

Every hot-path lookup is by `_id`, the only filter FerretDB answers from an index (see
`services.common.mongo`): citizens by the keyed hash of their TCKN, tracking codes, idempotency
keys and duplicate slots by their own value, so uniqueness is the `_id`'s. No TTL indexes
(FerretDB has none): expiry is a timer in the service (`purge_expired`).

Finding a citizen by the phone an SMS came from is a lookup by `_id` too: `citizen_phones` is
keyed by the keyed hash of the E.164 number (`domain.phone_key`) and a slot chosen by the
citizen (`<key>|<0..7>`: many people giving one number at once do not all rewrite one document),
and lists the citizens who gave it. It is written before the citizen (so it never misses one)
and pruned after a change, and readers check each citizen's current number: an entry left by a
crash in between is skipped. A citizen's latest applications are listed on the citizen
(`recent_applications`, written in the same write as the rest of the profile) for the same
reason: `applications_of` is a query on `citizen_id`, which FerretDB answers by reading every
application.

On FerretDB an update is a read and a write by `_id`, not one step: a document more than one
writer touches (citizens, applications, inbound messages, idempotency keys) changes only through
`services.common.outbox.modify` (a guarded write), and what must be decided once is decided by
an insert with a unique `_id` (tracking codes, duplicate slots, held codes).
"""
from __future__ import annotations

import contextlib
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bson import Binary
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.events import new_event_id, utcnow
from services.common.mongo import Index, ensure_indexes, first_false, slots
from services.common.outbox import (
    BOOKKEEPING,
    OUTBOX_AT,
    insert_with_events,
    modify,
    update_with_events,
)
from services.intake.domain import DEFAULT_LANGUAGE

INDEXES = {
    "applications": [
        Index([("citizen_id", 1), ("received_at", -1)]),
        Index([("tracking_code", 1)]),
        Index([(OUTBOX_AT, 1)], {"sparse": True}),
    ],
    "citizens": [Index([("caller_type", 1)], {"sparse": True})],
    # _id is the tracking code: uniqueness without a secondary unique index
    "tracking_codes": [],
    "inbound": [Index([(OUTBOX_AT, 1)], {"sparse": True})],
    # _id is `<key>@<period start>#<n>`: one filed duplicate entry per slot (see DuplicateSlots)
    "duplicate_slots": [Index([("at", 1)])],
    # _id is `<original application id>#<n>`: the applications merged into it
    "merged_links": [],
    "idempotency": [Index([("created_at", 1)])],
    "code_deliveries": [Index([("created_at", 1)])],
    "audit_log": [Index([("citizen_id", 1), ("at", -1)]), Index([("at", -1)])],
    # _id is `domain.phone_key(phone)`: the citizens who gave that mobile number
    "citizen_phones": [],
    # _id is a marker's name: one-off jobs done (the phone index's first fill)
    "intake_meta": [],
}
_HIDDEN = dict.fromkeys(BOOKKEEPING, 0)
_CONTACT = {"phone": 1, "email": 1, "preferred_channel": 1, "language": 1}
# How many of a citizen's latest applications the profile lists (SMS replies look among them).
RECENT_APPLICATIONS = 50
PHONE_INDEX_FILLED = "phone_index_filled"
PHONE_SLOTS = 8


@dataclass(frozen=True)
class StoredAttachment:
    id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    thumbnail_id: str | None
    width: int | None = None
    height: int | None = None

    def to_dict(self) -> dict:
        return dict(vars(self))


class AttachmentStorage(Protocol):
    """Where attachment bytes live."""

    def put(self, data: bytes, *, filename: str, content_type: str, metadata: dict) -> str: ...

    def get(self, file_id: str) -> tuple[bytes, dict] | None: ...

    def delete(self, file_id: str) -> None: ...


class ChunkedAttachments:
    """Attachments as `_id`-keyed documents: `attachments` (`_id`: a ULID) and its chunks in
    `attachment_chunks` (`_id`: `<file id>#<n>`).

    GridFS finds a file's chunks with a query on `files_id`: on FerretDB that decodes every
    chunk of every attachment. Here every read is by `_id`. The chunks are written first and
    the file's document last, so a file exists only once it is whole; a crash in between leaves
    chunks nobody points at (`delete` and the retention job remove them by `_id`).
    """

    CHUNK_BYTES = 1024 * 1024

    def __init__(self, db: Database, collection: str = "attachments"):
        self.files = db[collection]
        self.chunks = db[f"{collection.rstrip('s')}_chunks"]

    def put(self, data: bytes, *, filename: str, content_type: str, metadata: dict) -> str:
        file_id = new_event_id()
        count = max(1, -(-len(data) // self.CHUNK_BYTES))
        for n in range(count):
            piece = data[n * self.CHUNK_BYTES:(n + 1) * self.CHUNK_BYTES]
            self.chunks.insert_one({"_id": f"{file_id}#{n}", "data": Binary(piece)})
        self.files.insert_one({"_id": file_id, "filename": filename, "length": len(data),
                               "chunks": count, "uploaded_at": utcnow(),
                               "metadata": dict(metadata, content_type=content_type)})
        return file_id

    def get(self, file_id: str) -> tuple[bytes, dict] | None:
        meta = self.files.find_one({"_id": file_id})
        if meta is None:
            return None
        parts = []
        for n in range(meta["chunks"]):
            chunk = self.chunks.find_one({"_id": f"{file_id}#{n}"})
            if chunk is None:
                return None  # being deleted
            parts.append(bytes(chunk["data"]))
        return b"".join(parts), dict(meta.get("metadata") or {}, filename=meta["filename"],
                                     length=meta["length"])

    def delete(self, file_id: str) -> None:
        meta = self.files.find_one({"_id": file_id}, {"chunks": 1})
        self.files.delete_one({"_id": file_id})
        for n in range((meta or {}).get("chunks", 0)):
            self.chunks.delete_one({"_id": f"{file_id}#{n}"})


class IntakeStore:
    """Everything intake persists, behind a narrow interface."""

    def __init__(self, db: Database, phone_key: Callable[[str], str] | None = None):
        """`phone_key` keys the phone index (`domain.phone_key` under intake's hash key); the
        composition root always gives it. Without it (a test seeding a store) the index is not
        kept."""
        self.db = db
        self.phone_key = phone_key
        self.phones = db["citizen_phones"]
        self.meta = db["intake_meta"]
        self.applications = db["applications"]
        self.citizens = db["citizens"]
        self.tracking_codes = db["tracking_codes"]
        self.inbound = db["inbound"]
        self.slots = db["duplicate_slots"]
        self.merged_links = db["merged_links"]
        self.idempotency = db["idempotency"]
        self.code_deliveries = db["code_deliveries"]
        self.audit_log = db["audit_log"]
        self.attachments: AttachmentStorage = ChunkedAttachments(db)

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    # -- tracking codes -------------------------------------------------------------------

    def reserve_tracking_code(self, code: str, application_id: str) -> bool:
        """Claim a tracking code; False if it is already taken."""
        try:
            self.tracking_codes.insert_one({"_id": code, "application_id": application_id})
        except DuplicateKeyError:
            return False
        return True

    def release_tracking_code(self, code: str, application_id: str) -> None:
        """Give back a code claimed for an application that was not stored as its owner.

        Read and deleted by `_id` alone (a filter with a second key scans every code on
        FerretDB); only the claimer ever releases its own claim, so nothing changes between.
        """
        claim = self.tracking_codes.find_one({"_id": code}, {"application_id": 1})
        if claim is not None and claim.get("application_id") == application_id:
            self.tracking_codes.delete_one({"_id": code})

    def application_for_code(self, code: str) -> dict | None:
        """The stored application a tracking code belongs to (two reads by `_id`)."""
        claim = self.tracking_codes.find_one({"_id": code}, {"application_id": 1})
        if claim is None:
            return None
        return self.applications.find_one({"_id": claim["application_id"]}, _HIDDEN)

    # -- citizens -------------------------------------------------------------------------

    def save_citizen(self, citizen: dict, application_id: str | None = None) -> None:
        """Register the citizen, or refresh the details this submission carries; with
        `application_id`, list it among their recent applications in the same write.

        An insert is tried first: most submissions come from someone new, and on the embedded
        store an insert costs a fifth of an upsert. Someone known gets the update instead.
        """
        now = utcnow()
        fixed = ("_id", "tckn", "identity", "handles", "recent_applications")
        fields = {k: v for k, v in citizen.items() if k not in fixed and v is not None}
        identity = citizen.get("identity") or ("tckn" if citizen.get("tckn") else "no_tckn")
        handles = citizen.get("handles") or {}
        citizen_id = citizen["_id"]
        if fields.get("phone"):
            self._index_phone(fields["phone"], citizen_id)  # before: the index never misses one
        try:
            # `applications_listed`: the list is complete since the profile was made (profiles
            # made before it was kept are read the slow way, see `recent_application_ids`)
            self.citizens.insert_one(dict(
                fields, _id=citizen_id, tckn=citizen.get("tckn"), identity=identity,
                created_at=now, updated_at=now, applications_listed=True,
                recent_applications=[application_id] if application_id else [],
                **({"handles": dict(handles)} if handles else {})))
            return
        except DuplicateKeyError:
            pass
        before: list[str | None] = [None]

        def refresh(current: dict | None) -> dict:
            before[0] = (current or {}).get("phone")
            if current is None:  # removed meanwhile: registered afresh
                current = {"tckn": citizen.get("tckn"), "identity": identity, "created_at": now}
            elif current.get("anonymised_at"):  # KVKK-anonymised: the person is back
                current = dict({k: v for k, v in current.items() if k != "anonymised_at"},
                               tckn=citizen.get("tckn"), identity=identity)
            merged = {**current, **fields, "updated_at": now}
            if handles:
                merged["handles"] = dict(current.get("handles") or {}, **handles)
            if application_id:
                recent = [a for a in current.get("recent_applications") or []
                          if a != application_id]
                merged["recent_applications"] = [*recent, application_id][-RECENT_APPLICATIONS:]
            return merged

        # several submissions of one person, and staff edits, may meet here
        stored = modify(self.citizens, citizen_id, refresh)
        self._phone_moved(before[0], (stored or {}).get("phone"), citizen_id)

    def get_citizen(self, citizen_id: str) -> dict | None:
        return self.citizens.find_one({"_id": citizen_id}, _HIDDEN)

    def update_citizen(self, citizen_id: str, fields: dict) -> dict | None:
        """Set profile fields; returns the profile after, None if there is no such citizen."""
        now = utcnow()
        if fields.get("phone") and self.get_citizen(citizen_id) is not None:
            self._index_phone(fields["phone"], citizen_id)
        before: list[str | None] = [None]

        def change(current: dict | None) -> dict | None:
            if current is None:
                return None
            before[0] = current.get("phone")
            return {**current, **fields, "updated_at": now}

        stored = modify(self.citizens, citizen_id, change)
        if stored is None:
            return None
        self._phone_moved(before[0], stored.get("phone"), citizen_id)
        return {k: v for k, v in stored.items() if k not in BOOKKEEPING}

    # -- the phone index (SMS replies: who sent this) ---------------------------------------

    def _phone_slot(self, phone: str, citizen_id: str) -> str:
        """The index document that lists `citizen_id` under `phone`: one of `PHONE_SLOTS`,
        chosen by the citizen, so that many people registering one number at once (a family, a
        desk's own line, a burst of test submissions) do not all rewrite one document — with
        every writer on it, the guarded writes gave up and the submission failed."""
        return f"{self.phone_key(phone)}|{zlib.crc32(citizen_id.encode()) % PHONE_SLOTS}"

    def _index_phone(self, phone: str, citizen_id: str) -> None:
        """List `citizen_id` under `phone` (idempotent). An insert first: a new number costs
        one write; a known one a failed insert and a read."""
        if self.phone_key is None:
            return
        slot = self._phone_slot(phone, citizen_id)
        try:
            self.phones.insert_one({"_id": slot, "citizens": [citizen_id]})
            return
        except DuplicateKeyError:
            pass

        def add(current: dict | None) -> dict | None:
            listed = list((current or {}).get("citizens") or [])
            if citizen_id in listed:
                return None
            return dict(current or {"_id": slot}, citizens=[*listed, citizen_id])

        modify(self.phones, slot, add)

    def unindex_phone(self, phone: str, citizen_id: str) -> None:
        """Take `citizen_id` off `phone` in the index (the KVKK job, after anonymising)."""
        self._unindex_phone(phone, citizen_id)

    def _unindex_phone(self, phone: str, citizen_id: str) -> None:
        if self.phone_key is None:
            return

        def remove(current: dict | None) -> dict | None:
            listed = list((current or {}).get("citizens") or [])
            if citizen_id not in listed:
                return None
            return dict(current, citizens=[c for c in listed if c != citizen_id])

        # its slot, and the one document per number an earlier version kept
        for doc_id in (self._phone_slot(phone, citizen_id), self.phone_key(phone)):
            modify(self.phones, doc_id, remove)

    def _phone_moved(self, before: str | None, after: str | None, citizen_id: str) -> None:
        """After a profile write: take the citizen off the number they no longer have —
        unless a write since gave it back (read again: a missing entry would hide them from
        their replies, an extra one costs a reader one check)."""
        if not before or before == after:
            return
        if (self.get_citizen(citizen_id) or {}).get("phone") != before:
            self._unindex_phone(before, citizen_id)

    def citizens_with_phone(self, phone: str) -> list[dict]:
        """The citizens whose mobile number is `phone` (E.164) now: one `_id` read of the
        index, then each citizen by `_id` (an entry whose citizen has another number since is
        skipped)."""
        if self.phone_key is None:
            return []
        key = self.phone_key(phone)
        listed: list[str] = []
        # each slot by `_id` (on FerretDB `$in` on `_id` reads the collection), and the one
        # document per number an earlier version kept
        for doc_id in (*(f"{key}|{n}" for n in range(PHONE_SLOTS)), key):
            entry = self.phones.find_one({"_id": doc_id}) or {}
            listed += [c for c in entry.get("citizens") or [] if c not in listed]
        found = []
        for citizen_id in listed:
            citizen = self.get_citizen(citizen_id)
            if citizen is not None and citizen.get("phone") == phone:
                found.append(citizen)
        return found

    def fill_phone_index(self) -> int:
        """Index the numbers of citizens registered before the index was kept; once per
        database (a marker), so it is one scan of the citizens in the service's life."""
        if self.phone_key is None or self.meta.find_one({"_id": PHONE_INDEX_FILLED}):
            return 0
        count = 0
        for citizen in self.citizens.find({}, {"phone": 1}):
            if isinstance(citizen.get("phone"), str) and citizen["phone"]:
                self._index_phone(citizen["phone"], citizen["_id"])
                count += 1
        with contextlib.suppress(DuplicateKeyError):  # another replica finished first
            self.meta.insert_one({"_id": PHONE_INDEX_FILLED, "at": utcnow(), "count": count})
        return count

    def recent_application_ids(self, citizen: dict) -> list[str]:
        """The ids of a citizen's latest applications, newest first (by `_id` from the profile;
        a profile made before the list was kept is read by `applications_of`, a scan)."""
        if citizen.get("applications_listed"):
            return list(reversed(citizen.get("recent_applications") or []))
        return [a["_id"] for a in self.applications_of(citizen["_id"],
                                                       limit=RECENT_APPLICATIONS)]

    def load_registry(self, people: list[dict]) -> int:
        """Upsert registry entries (muhtars); returns how many were written."""
        for person in people:
            self.save_citizen(person)
        return len(people)

    # -- applications ---------------------------------------------------------------------

    def save_application(self, application: dict, events: list[dict]) -> None:
        """Store the application and its events in one write."""
        insert_with_events(self.applications, application, events)

    def get_application(self, application_id: str) -> dict | None:
        return self.applications.find_one({"_id": application_id}, _HIDDEN)

    def update_application(self, application_id: str, expected_status: str, fields: dict,
                           events: list[dict]) -> bool:
        """Set fields and append events in one write, if the status is still as expected."""
        return update_with_events(self.applications,
                                  {"_id": application_id, "status": expected_status},
                                  fields, events)

    def applications_of(self, citizen_id: str, limit: int = 500) -> list[dict]:
        """A citizen's applications, newest first."""
        cursor = self.applications.find({"citizen_id": citizen_id}, _HIDDEN)
        return list(cursor.sort("received_at", -1).limit(limit))

    def link_duplicate(self, original_id: str, duplicate_id: str) -> None:
        """Note that `duplicate_id` is being merged into `original_id` (before it is stored).

        Slot `<original>#<n>` of `merged_links`, the first free one: `duplicates_of` reads the
        slots by `_id` (a query on `merged_into` reads every application on FerretDB). A slot
        whose duplicate was never stored, or was unlinked since, is skipped on reading.

        Slots are only ever inserted, each at the first free one, so the taken ones are exactly
        0…count-1: the first free one is found by doubling then halving, in about 2·log2(count)
        reads. (Probing one by one cost a popular pothole's 90th duplicate 90 inserts.)
        """
        def taken(n: int) -> bool:
            return self.merged_links.find_one({"_id": f"{original_id}#{n}"}, {"_id": 1}) \
                is not None

        n = first_false(taken)
        while True:
            try:
                self.merged_links.insert_one({"_id": f"{original_id}#{n}",
                                              "application_id": duplicate_id})
                return
            except DuplicateKeyError:  # another duplicate took it a moment ago
                n += 1

    def duplicates_of(self, application_id: str) -> list[dict]:
        """Applications merged into `application_id`, oldest first."""
        found = []
        for link in slots(self.merged_links, application_id):
            duplicate = self.get_application(link["application_id"])
            if duplicate is not None and (duplicate.get("merged_into") or {}).get(
                    "application_id") == application_id:
                found.append(duplicate)
        return sorted(found, key=lambda application: application["received_at"])

    # -- duplicates -----------------------------------------------------------------------

    def read_slots(self, sequences: list[str], ends: dict[str, int]) -> list[dict]:
        """The entries filed in each slot sequence from `ends[sequence]` (0 if absent) on.

        Each slot is read by `_id` until the first one missing; `ends` is moved past what was
        read, so calling again reads only what was filed since. A withdrawn slot is skipped.
        """
        found: list[dict] = []
        for sequence in sequences:
            n = ends.get(sequence, 0)
            while True:
                slot = self.slots.find_one({"_id": f"{sequence}#{n}"})
                if slot is None:
                    break
                if not slot.get("withdrawn"):
                    found.append(_entry_of(slot))
                n += 1
            ends[sequence] = n
        return found

    def file_slot(self, sequence: str, start: int, entry: dict) -> tuple[str, list[dict]]:
        """File `entry` in the first free slot of `sequence` at or after `start`.

        Returns the slot taken and the entries of the slots found taken on the way: whoever
        filed in this sequence before us, even a moment before (the insert of a slot succeeds
        for exactly one writer).
        """
        seen: list[dict] = []
        n = start
        while True:
            slot_id = f"{sequence}#{n}"
            try:
                self.slots.insert_one({"_id": slot_id, "entry": entry,
                                       "at": entry["received_at"], "filed_at": utcnow()})
                return slot_id, seen
            except DuplicateKeyError:
                slot = self.slots.find_one({"_id": slot_id})
                if slot is not None and not slot.get("withdrawn"):
                    seen.append(_entry_of(slot))
                n += 1

    def slot_withdrawn(self, slot_id: str) -> bool:
        slot = self.slots.find_one({"_id": slot_id}, {"withdrawn": 1})
        return slot is None or bool(slot.get("withdrawn"))

    def unfile(self, slots: list[str]) -> None:
        """Withdraw our own entries (the application was not stored, or became a duplicate).

        The slot stays, emptied: readers walk a sequence until the first missing slot, so a
        deleted one would hide every entry after it. Only the filer writes its slot.
        """
        for slot_id in slots:
            slot = self.slots.find_one({"_id": slot_id}, {"at": 1})
            if slot is not None:
                self.slots.replace_one({"_id": slot_id},
                                       {"withdrawn": True, "at": slot["at"]})

    # -- idempotency ----------------------------------------------------------------------

    def claim_key(self, key_id: str, fingerprint: str, application_id: str,
                  now: datetime) -> dict | None:
        """Claim an idempotency key for `application_id`; returns the existing claim if any."""
        try:
            self.idempotency.insert_one({"_id": key_id, "fingerprint": fingerprint,
                                         "application_id": application_id, "created_at": now,
                                         "answer": None})
        except DuplicateKeyError:
            return self.idempotency.find_one({"_id": key_id}) or {}
        return None

    def complete_key(self, key_id: str, answer: dict) -> None:
        # guarded: a take-over of the same key (below) must not undo the answer
        modify(self.idempotency, key_id,
               lambda current: None if current is None else dict(current, answer=answer))

    def take_over_key(self, key_id: str, stale_before: datetime, now: datetime) -> bool:
        """Take over an unanswered claim older than `stale_before` (its request died).

        Of two retries taking over at once exactly one succeeds: the guarded write lets one
        writer store the refreshed claim, and the other then reads it as fresh.
        """

        def take(current: dict | None) -> dict | None:
            if current is None or current.get("answer") is not None:
                return None
            if current["created_at"] >= stale_before:
                return None
            return dict(current, created_at=now)

        return modify(self.idempotency, key_id, take) is not None

    def release_key(self, key_id: str) -> None:
        """Drop an unanswered claim (the request was refused: a retry may be corrected)."""
        claim = self.idempotency.find_one({"_id": key_id}, {"answer": 1})
        if claim is not None and claim.get("answer") is None:
            self.idempotency.delete_one({"_id": key_id})

    # -- code deliveries ------------------------------------------------------------------

    def hold_codes(self, application_id: str, security_code: str, now: datetime) -> bool:
        """Keep the security code until the confirmation message has carried it.

        Once per application: False when a code is held already (a concurrent unlink holds
        its own; two holders would leave the citizen a code that does not match).
        """
        held = {"_id": application_id, "security_code": security_code, "created_at": now}
        try:
            self.code_deliveries.insert_one(held)
        except DuplicateKeyError:
            return False
        return True

    def drop_held_code(self, application_id: str, security_code: str) -> None:
        """Forget a held code we stored, if it is still ours (an unlink that did not happen)."""
        held = self.code_deliveries.find_one({"_id": application_id})
        if held is not None and held.get("security_code") == security_code:
            self.code_deliveries.delete_one({"_id": application_id})

    def held(self, application_id: str) -> dict | None:
        return self.code_deliveries.find_one({"_id": application_id})

    def held_code(self, application_id: str) -> str | None:
        held = self.code_deliveries.find_one({"_id": application_id})
        return held["security_code"] if held else None

    def purge_expired(self, codes_before: datetime, keys_before: datetime,
                      slots_before: datetime | None = None) -> tuple[int, int, int]:
        """Forget held codes, idempotency answers and duplicate slots older than the cut-offs.

        `slots_before` must be the start of a slot period (`DuplicateSlots.purge_before`): a
        period's slots go all together, never leaving a gap a reader would stop at.
        """
        codes = self.code_deliveries.delete_many({"created_at": {"$lt": codes_before}})
        keys = self.idempotency.delete_many({"created_at": {"$lt": keys_before}})
        slots = 0
        if slots_before is not None:
            slots = self.slots.delete_many({"at": {"$lt": slots_before}}).deleted_count
        return codes.deleted_count, keys.deleted_count, slots

    # -- inbound messages -----------------------------------------------------------------

    def save_inbound(self, inbound: dict, events: list[dict]) -> bool:
        """Record an inbound message (with the sender's address) and its events in one write;
        False if a message with this id was recorded before (a retried webhook)."""
        try:
            insert_with_events(self.inbound, inbound, events)
        except DuplicateKeyError:
            return False
        return True

    def reject_inbound(self, inbound_id: str, reason: str, events: list[dict]) -> bool:
        """Mark an inbound message refused, with its reply event, once (a retry adds nothing)."""
        return update_with_events(self.inbound, {"_id": inbound_id, "status": "processing"},
                                  {"status": "rejected", "reason": reason}, events)

    def accept_inbound(self, inbound_id: str, application_id: str) -> None:
        # guarded like every write to a document with an outbox (the relay clears it)
        update_with_events(self.inbound, {"_id": inbound_id},
                           {"status": "accepted", "application_id": application_id}, [])

    def answer_inbound(self, inbound_id: str, result: dict, **fields: Any) -> bool:
        """Mark an inbound reply (a score, an opt-out) answered with `result`, once: a retried
        webhook finds it and answers the same."""
        return update_with_events(self.inbound, {"_id": inbound_id, "status": "processing"},
                                  {"status": "answered", "result": result, **fields}, [])

    def get_inbound(self, inbound_id: str) -> dict | None:
        return self.inbound.find_one({"_id": inbound_id}, _HIDDEN)

    # -- contacts (for notify, at send time) ----------------------------------------------

    def contact_for(self, application_id: str) -> dict | None:
        """Where to reach the person behind an application, and a security code still owed.

        An application that came in as a message is answered where the message came from.
        """
        application = self.applications.find_one(
            {"_id": application_id},
            {"citizen_id": 1, "inbound_id": 1, "channel": 1, "codes_by_message": 1,
             "caller_type": 1, "tracking_code": 1})
        if not application:
            return None
        citizen = None
        if application.get("citizen_id"):
            citizen = self.citizens.find_one({"_id": application["citizen_id"]}, _CONTACT)
        contact: dict[str, Any] = {
            "phone": (citizen or {}).get("phone"),
            "email": (citizen or {}).get("email"),
            "preferred_channel": (citizen or {}).get("preferred_channel", "sms"),
            "channel": application.get("channel"),
            # notify keys opt-outs by the citizen's opaque ref (what events call `citizen_ref`)
            # and words a muhtar's messages differently
            "citizen_ref": application.get("citizen_id"),
            "caller_type": application.get("caller_type") or "citizen",
            "language": (citizen or {}).get("language") or DEFAULT_LANGUAGE,
            # public: a message about an event that does not carry it (a rating's thanks)
            "tracking_code": application.get("tracking_code"),
        }
        if application.get("inbound_id"):
            inbound = self.get_inbound(application["inbound_id"])
            if inbound and inbound.get("reply_channel") in ("sms", "email"):
                key = "phone" if inbound["reply_channel"] == "sms" else "email"
                contact[key] = inbound["address"]
                contact["preferred_channel"] = inbound["reply_channel"]
        # a preference the profile cannot honour falls back to the contact it has
        if contact["preferred_channel"] == "sms" and not contact["phone"] and contact["email"]:
            contact["preferred_channel"] = "email"
        elif contact["preferred_channel"] == "email" and not contact["email"] and contact["phone"]:
            contact["preferred_channel"] = "sms"
        if application.get("codes_by_message"):
            contact["security_code"] = self.held_code(application_id)
        if not citizen and not application.get("inbound_id"):
            return None
        return contact

    def citizen_contact(self, citizen_id: str) -> dict | None:
        citizen = self.citizens.find_one({"_id": citizen_id}, _CONTACT)
        if not citizen:
            return None
        return {"phone": citizen.get("phone"), "email": citizen.get("email"),
                "preferred_channel": citizen.get("preferred_channel", "sms"),
                "language": citizen.get("language") or DEFAULT_LANGUAGE}

    # -- audit ------------------------------------------------------------------------------

    def audit(self, entry: dict) -> None:
        """Record one staff read (or change) of personal data."""
        self.audit_log.insert_one(dict(entry, _id=new_event_id()))

    def audit_entries(self, citizen_id: str, limit: int = 200) -> list[dict]:
        cursor = self.audit_log.find({"citizen_id": citizen_id}).sort("at", -1).limit(limit)
        return list(cursor)


def _entry_of(slot: dict) -> dict:
    """A filed entry, with where it is filed and when (to tell a live filer from a dead one)."""
    return dict(slot["entry"], slot=slot["_id"], filed_at=slot.get("filed_at"))


class DuplicateSlots:
    """Where duplicate entries are filed: per key and period, a sequence of insert-once slots.

    A key (`cit:<category>:<citizen>`, `geo:<category>:<row>:<col>`) is split in periods of
    twice the duplicate window, so a probe reads the one or two periods its window overlaps and
    old periods are purged whole. Within a period, slot n is `<key>@<period start>#<n>`: filing
    inserts the first free slot, reading walks slots by `_id` until one is missing.
    """

    def __init__(self, window: timedelta):
        self.span = max(2 * window, timedelta(minutes=1)).total_seconds()

    def _start(self, at: datetime) -> int:
        return int(math.floor(at.timestamp() / self.span) * self.span)

    def sequences(self, key: str, since: datetime, until: datetime) -> list[str]:
        """The slot sequences of `key` holding entries received from `since` to `until`."""
        first, last = self._start(since), self._start(until)
        step = int(self.span)
        return [f"{key}@{start}" for start in range(first, last + 1, step)]

    def sequence(self, key: str, at: datetime) -> str:
        """The sequence an entry received at `at` is filed in."""
        return f"{key}@{self._start(at)}"

    def purge_before(self, window: timedelta, now: datetime) -> datetime:
        """The start of the oldest period a probe made at `now` still reads."""
        return datetime.fromtimestamp(self._start(now - window), tz=now.tzinfo)
