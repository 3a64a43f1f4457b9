"""Tracking's repository: the read model, the code map, rate-limit counters and portal logins.

Every hot lookup is keyed by `_id` (the embedded store scans collections for anything else):

- `applications`: the read model, `_id` = application id, with its outbox (reopen requests and
  ratings are written together with the events that announce them);
- `codes`: `_id` = canonical tracking code → application id;
- `muhtars`: `_id` = a muhtar's pseudonymous citizen ref → the ids of their applications;
- `limits`: rate-limit and failure counters, `_id` = bucket, keyed subject and window, so every
  replica counts in the same document; `expires_at` in epoch seconds, and expired ones are swept
  (no TTL index: the embedded store would scan for it on every insert);
- `captchas` and `logins`: the muhtar portal's challenges and one-time-code logins, `_id` = a
  random id; only digests are stored, never an answer or a code.
"""
from __future__ import annotations

import logging
from datetime import datetime

from pymongo import DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Index, ensure_indexes
from services.common.outbox import (
    BOOKKEEPING,
    HANDLED,
    OUTBOX,
    OUTBOX_AT,
    VERSION,
    Fold,
    fold_once,
    insert_once,
)

log = logging.getLogger(__name__)

INDEXES: dict[str, list[Index]] = {
    # _id = application_id. received_at serves Open311's date-range listing; citizen_ref is
    # declared for a real server (the portal reads `muhtars` by _id); OUTBOX_AT the relay sweep.
    "applications": [
        Index([("received_at", DESCENDING)]),
        Index([("citizen_ref", 1)], {"sparse": True}),
        Index([(OUTBOX_AT, 1)], {"sparse": True}),
    ],
    # _id = canonical tracking code: uniqueness and lookup without a secondary index
    "codes": [],
    "muhtars": [],
    "limits": [Index([("expires_at", 1)])],
    "captchas": [Index([("expires_at", 1)])],
    "logins": [Index([("expires_at", 1)])],
}
_HIDDEN = dict.fromkeys(BOOKKEEPING, 0)
# Swept by a datetime `expires_at` (counters expire in epoch seconds, see `sweep`).
SWEPT = ("captchas", "logins")


class TrackingStore:
    """Everything tracking persists, behind a narrow interface."""

    def __init__(self, db: Database):
        self.db = db
        self.applications = db["applications"]
        self.codes = db["codes"]
        self.muhtars = db["muhtars"]
        self.limits = db["limits"]
        self.captchas = db["captchas"]
        self.logins = db["logins"]

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    # -- the read model ---------------------------------------------------------------------

    def apply(self, application_id: str, event_id: str, fold: Fold) -> bool:
        """Fold one event into an application's read model once (False if already applied)."""
        return fold_once(self.applications, application_id, event_id, fold)

    def register_code(self, tracking_code: str, application_id: str,
                      security_digest: str | None = None) -> bool:
        """Map a tracking code to its application (and the security code's digest, so a
        lookup is checked from this one small document); False if it was mapped already."""
        entry = {"_id": tracking_code, "application_id": application_id}
        if security_digest:
            entry["security_digest"] = security_digest
        if insert_once(self.codes, entry):
            return True
        existing = self.codes.find_one({"_id": tracking_code}) or {}
        if existing.get("application_id") != application_id:
            # Intake guarantees unique codes, so this is a bug upstream; never log the code.
            log.error("tracking code already maps to another application",
                      extra={"application_id": application_id})
        elif security_digest and not existing.get("security_digest"):
            self.codes.update_one({"_id": tracking_code},
                                  {"$set": {"security_digest": security_digest}})
        return False

    def code_entry(self, tracking_code: str) -> dict | None:
        """`{application_id, security_digest}` behind a canonical tracking code; one `_id` read.

        Mappings made before digests were kept here lack `security_digest`: it is then taken
        from the read model.
        """
        entry = self.codes.find_one({"_id": tracking_code})
        if entry is not None and not entry.get("security_digest"):
            doc = self.get(entry["application_id"]) or {}
            entry["security_digest"] = doc.get("security_digest")
        return entry

    def get_versioned(self, application_id: str) -> tuple[dict, int] | None:
        """An application's read model and its version, read together."""
        doc = self.applications.find_one({"_id": application_id},
                                         {HANDLED: 0, OUTBOX: 0, OUTBOX_AT: 0})
        if doc is None:
            return None
        return doc, doc.pop(VERSION, 0)

    def has_version(self, application_id: str, version: int) -> bool:
        """Whether the read model is still at `version` (it changes with every write).

        Asked as a count of one `_id` (one indexed match on a server): the embedded store then
        copies nothing, where even a projected read copies and walks the document (three times
        the cost).
        """
        return self.applications.count_documents({"_id": application_id, VERSION: version},
                                                 limit=1) > 0

    def register_muhtar_application(self, citizen_ref: str, application_id: str) -> None:
        """Remember that `application_id` is one of this muhtar's requests (idempotent)."""
        self.muhtars.update_one({"_id": citizen_ref},
                                {"$addToSet": {"applications": application_id}}, upsert=True)

    def get(self, application_id: str) -> dict | None:
        """An application's read model, without bookkeeping fields."""
        return self.applications.find_one({"_id": application_id}, _HIDDEN)

    def find_by_code(self, tracking_code: str) -> dict | None:
        """The read model behind a canonical tracking code, if any."""
        entry = self.codes.find_one({"_id": tracking_code})
        return self.get(entry["application_id"]) if entry else None

    def muhtar_applications(self, citizen_ref: str, limit: int = 500) -> list[dict]:
        """A muhtar's applications (read models), newest first."""
        entry = self.muhtars.find_one({"_id": citizen_ref}) or {}
        ids = list(entry.get("applications") or [])[-limit:]
        if not ids:
            return []
        docs = list(self.applications.find({"_id": {"$in": ids}}, _HIDDEN))
        return sorted(docs, key=lambda d: d.get("received_at") or d.get("updated_at"),
                      reverse=True)

    def list_public(self, query: dict, limit: int) -> list[dict]:
        """Read models matching `query` (built by the Open311 rules), newest receipt first."""
        cursor = self.applications.find(query, _HIDDEN).sort("received_at", DESCENDING)
        return list(cursor.limit(limit))

    # -- counters -----------------------------------------------------------------------------

    def count(self, key: str, expires_at: int) -> dict:
        """Count one attempt under `key`; the counter so far (`n` attempts, `f` failures),
        all replicas together. `expires_at` is in epoch seconds.

        The attempt that creates the counter knows it is the first; any other increments it,
        then reads it (cheaper than find-and-modify on the embedded store): two concurrent
        attempts may both read the other's increment — counted high, never low.
        """
        if self._bump(key, "n", expires_at):
            return {"n": 1}
        # No projection: counters are tiny, and the embedded store's projection code costs
        # more than copying three fields.
        return self.limits.find_one({"_id": key}) or {"n": 1}

    def failed_at_least(self, key: str, times: int) -> bool:
        """Whether `times` failures or more were counted under `key`.

        Asked as a count of one `_id` (one indexed match on a server): the embedded store then
        copies no document — half a read's cost, and usually there is no such counter at all.
        """
        return self.limits.count_documents({"_id": key, "f": {"$gte": times}}, limit=1) > 0

    def fail(self, key: str, expires_at: int) -> None:
        """Count one failure under `key` (`expires_at` in epoch seconds)."""
        self._bump(key, "f", expires_at)

    def _bump(self, key: str, field: str, expires_at: int) -> bool:
        """Add one to `field` of the counter `key`, creating it if need be; True if this created it.

        An update, else an insert — not an upsert, which on the embedded store costs more than
        either (three times an insert for a new counter). Epoch seconds rather than a datetime
        for the same reason: the embedded store deep-copies a counter on every update.
        """
        while not self.limits.update_one({"_id": key}, {"$inc": {field: 1}}).matched_count:
            try:
                self.limits.insert_one({"_id": key, field: 1, "expires_at": expires_at})
                return True
            except DuplicateKeyError:
                continue  # a concurrent attempt created it in between: count in it
        return False

    # -- the muhtar portal ----------------------------------------------------------------------

    def save_captcha(self, captcha_id: str, digest: str, expires_at: datetime) -> None:
        self.captchas.insert_one({"_id": captcha_id, "digest": digest, "expires_at": expires_at})

    def take_captcha(self, captcha_id: str) -> dict | None:
        """A challenge, removed as it is read: each one answers once."""
        return self.captchas.find_one_and_delete({"_id": captcha_id})

    def save_login(self, login: dict) -> None:
        self.logins.insert_one(login)

    def get_login(self, login_id: str) -> dict | None:
        return self.logins.find_one({"_id": login_id})

    def count_login_attempt(self, login_id: str) -> dict | None:
        """Count one code attempt on a pending login; returns it after counting."""
        return self.logins.find_one_and_update(
            {"_id": login_id}, {"$inc": {"attempts": 1}}, return_document=ReturnDocument.AFTER)

    def drop_login(self, login_id: str) -> None:
        self.logins.delete_one({"_id": login_id})

    # -- housekeeping ---------------------------------------------------------------------------

    def sweep(self, now: datetime) -> int:
        """Remove expired counters, challenges and logins; returns how many."""
        removed = self.limits.delete_many(
            {"expires_at": {"$lt": now.timestamp()}}).deleted_count
        for name in SWEPT:
            removed += self.db[name].delete_many({"expires_at": {"$lt": now}}).deleted_count
        return removed
