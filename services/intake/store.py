"""Intake's repository: citizens, applications (with their outbox), inbound messages (with their
outbox), tracking-code claims, duplicate buckets, idempotency keys, code deliveries, the staff
audit log and attachments.

Every hot-path lookup is by `_id`, the only filter FerretDB answers from an index (see
`services.common.mongo`): citizens by the keyed hash of their TCKN, tracking codes, idempotency
keys and duplicate buckets by their own value, so uniqueness is the `_id`'s. No TTL indexes
(FerretDB has none): expiry is a timer in the service (`purge_expired`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bson import Binary
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.events import new_event_id, utcnow
from services.common.mongo import Index, ensure_indexes
from services.common.outbox import BOOKKEEPING, OUTBOX_AT, insert_with_events, update_with_events

INDEXES = {
    "applications": [
        Index([("citizen_id", 1), ("received_at", -1)]),
        Index([("tracking_code", 1)]),
        Index([("merged_into.application_id", 1)], {"sparse": True}),
        Index([(OUTBOX_AT, 1)], {"sparse": True}),
    ],
    "citizens": [Index([("caller_type", 1)], {"sparse": True})],
    # _id is the tracking code: uniqueness without a secondary unique index
    "tracking_codes": [],
    "inbound": [Index([(OUTBOX_AT, 1)], {"sparse": True})],
    "duplicate_buckets": [],
    "idempotency": [Index([("created_at", 1)])],
    "code_deliveries": [Index([("created_at", 1)])],
    "audit_log": [Index([("citizen_id", 1), ("at", -1)]), Index([("at", -1)])],
}
BUCKET_KEEP = 50  # entries per duplicate bucket; older ones fall off the end
_HIDDEN = dict.fromkeys(BOOKKEEPING, 0)


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

    def __init__(self, db: Database):
        self.db = db
        self.applications = db["applications"]
        self.citizens = db["citizens"]
        self.tracking_codes = db["tracking_codes"]
        self.inbound = db["inbound"]
        self.buckets = db["duplicate_buckets"]
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
        """Give back a code claimed for an application that was not stored as its owner."""
        self.tracking_codes.delete_one({"_id": code, "application_id": application_id})

    # -- citizens -------------------------------------------------------------------------

    def save_citizen(self, citizen: dict) -> None:
        """Register the citizen, or refresh the details this submission carries.

        An insert is tried first: most submissions come from someone new, and on the embedded
        store an insert costs a fifth of an upsert. Someone known gets the update instead.
        """
        now = utcnow()
        fixed = ("_id", "tckn", "identity", "handles")
        fields = {k: v for k, v in citizen.items() if k not in fixed and v is not None}
        identity = citizen.get("identity") or ("tckn" if citizen.get("tckn") else "no_tckn")
        handles = citizen.get("handles") or {}
        try:
            self.citizens.insert_one(dict(
                fields, _id=citizen["_id"], tckn=citizen.get("tckn"), identity=identity,
                created_at=now, updated_at=now, **({"handles": dict(handles)} if handles else {})))
            return
        except DuplicateKeyError:
            pass
        for channel, handle in handles.items():
            fields[f"handles.{channel}"] = handle
        self.citizens.update_one(
            {"_id": citizen["_id"]},
            {"$set": dict(fields, updated_at=now),
             "$setOnInsert": {"tckn": citizen.get("tckn"), "identity": identity,
                              "created_at": now}},
            upsert=True,
        )

    def get_citizen(self, citizen_id: str) -> dict | None:
        return self.citizens.find_one({"_id": citizen_id})

    def update_citizen(self, citizen_id: str, fields: dict) -> dict | None:
        """Set profile fields; returns the profile after, None if there is no such citizen."""
        return self.citizens.find_one_and_update(
            {"_id": citizen_id}, {"$set": dict(fields, updated_at=utcnow())},
            return_document=ReturnDocument.AFTER)

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

    def duplicates_of(self, application_id: str) -> list[dict]:
        """Applications merged into `application_id`, oldest first."""
        cursor = self.applications.find({"merged_into.application_id": application_id},
                                        _HIDDEN)
        return list(cursor.sort("received_at", 1))

    # -- duplicates -----------------------------------------------------------------------

    def file_and_probe(self, own: list[str], entry: dict, probe: list[str]) -> list[dict]:
        """File `entry` under `own` keys, and return every entry filed before under `probe`.

        Each own bucket is created with our entry, or, if it exists, updated and read in one
        atomic step (the entries before ours), so of two simultaneous submissions with the same
        key the later always sees the earlier; the neighbouring cells are read after. Own buckets
        are never read back whole (on the embedded store, copying documents out is what costs).
        """
        found: list[dict] = []
        for key in own:
            try:  # a new bucket: nothing was filed before ours (and an insert is cheap)
                self.buckets.insert_one({"_id": key, "entries": [entry]})
                continue
            except DuplicateKeyError:
                pass
            before = self.buckets.find_one_and_update(
                {"_id": key},
                {"$push": {"entries": {"$each": [entry], "$slice": -BUCKET_KEEP}}},
                upsert=True, return_document=ReturnDocument.BEFORE)
            found.extend((before or {}).get("entries") or [])
        others = [key for key in probe if key not in own]
        if others:
            for bucket in self.buckets.find({"_id": {"$in": others}}):
                found.extend(bucket.get("entries") or [])
        return found

    def unfile(self, keys: list[str], application_id: str) -> None:
        """Remove an application's entries (it was not stored, or became a duplicate)."""
        for key in keys:
            self.buckets.update_one({"_id": key},
                                    {"$pull": {"entries": {"application_id": application_id}}})

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
        self.idempotency.update_one({"_id": key_id}, {"$set": {"answer": answer}})

    def take_over_key(self, key_id: str, stale_before: datetime, now: datetime) -> bool:
        """Take over an unanswered claim older than `stale_before` (its request died)."""
        result = self.idempotency.update_one(
            {"_id": key_id, "answer": None, "created_at": {"$lt": stale_before}},
            {"$set": {"created_at": now}})
        return bool(result.matched_count)

    def release_key(self, key_id: str) -> None:
        """Drop an unanswered claim (the request was refused: a retry may be corrected)."""
        self.idempotency.delete_one({"_id": key_id, "answer": None})

    # -- code deliveries ------------------------------------------------------------------

    def hold_codes(self, application_id: str, security_code: str, now: datetime) -> None:
        """Keep the security code until the confirmation message has carried it."""
        held = {"_id": application_id, "security_code": security_code, "created_at": now}
        try:
            self.code_deliveries.insert_one(held)
        except DuplicateKeyError:  # fresh codes for the same application (unlink)
            self.code_deliveries.replace_one({"_id": application_id}, held)

    def held_code(self, application_id: str) -> str | None:
        held = self.code_deliveries.find_one({"_id": application_id})
        return held["security_code"] if held else None

    def purge_expired(self, codes_before: datetime, keys_before: datetime) -> tuple[int, int]:
        """Forget held codes and idempotency answers older than the cut-offs."""
        codes = self.code_deliveries.delete_many({"created_at": {"$lt": codes_before}})
        keys = self.idempotency.delete_many({"created_at": {"$lt": keys_before}})
        return codes.deleted_count, keys.deleted_count

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
        self.inbound.update_one({"_id": inbound_id},
                                {"$set": {"status": "accepted",
                                          "application_id": application_id}})

    def get_inbound(self, inbound_id: str) -> dict | None:
        return self.inbound.find_one({"_id": inbound_id}, _HIDDEN)

    # -- contacts (for notify, at send time) ----------------------------------------------

    def contact_for(self, application_id: str) -> dict | None:
        """Where to reach the person behind an application, and a security code still owed.

        An application that came in as a message is answered where the message came from.
        """
        application = self.applications.find_one(
            {"_id": application_id},
            {"citizen_id": 1, "inbound_id": 1, "channel": 1, "codes_by_message": 1})
        if not application:
            return None
        citizen = None
        if application.get("citizen_id"):
            citizen = self.citizens.find_one({"_id": application["citizen_id"]},
                                             {"phone": 1, "email": 1, "preferred_channel": 1})
        contact: dict[str, Any] = {
            "phone": (citizen or {}).get("phone"),
            "email": (citizen or {}).get("email"),
            "preferred_channel": (citizen or {}).get("preferred_channel", "sms"),
            "channel": application.get("channel"),
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
        citizen = self.citizens.find_one({"_id": citizen_id},
                                         {"phone": 1, "email": 1, "preferred_channel": 1})
        if not citizen:
            return None
        return {"phone": citizen.get("phone"), "email": citizen.get("email"),
                "preferred_channel": citizen.get("preferred_channel", "sms")}

    # -- audit ------------------------------------------------------------------------------

    def audit(self, entry: dict) -> None:
        """Record one staff read (or change) of personal data."""
        self.audit_log.insert_one(dict(entry, _id=new_event_id()))

    def audit_entries(self, citizen_id: str, limit: int = 200) -> list[dict]:
        cursor = self.audit_log.find({"citizen_id": citizen_id}).sort("at", -1).limit(limit)
        return list(cursor)
