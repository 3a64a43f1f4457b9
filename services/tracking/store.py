"""Tracking's repository: the read model, the code map, rate-limit counters, the Open311 index and
the muhtar portal's logins.

Every hot read is keyed by `_id` alone, and nothing that several writers share is updated in
place (on FerretDB an update is a read, a computation and a separate write): counts and lists
grow by insert-once *slots* (`<prefix>#<n>`, the writer whose insert succeeds owns slot n), a
one-time thing is spent by the one `delete_one` that removes it, and a document several writers
change goes through `services.common.outbox.modify` (a guarded write).

- `applications`: the read model, `_id` = application id, with its outbox (reopen requests and
  ratings are written together with the events that announce them);
- `codes`: `_id` = canonical tracking code → application id and the security code's digest;
- `muhtars`: `_id` = a muhtar's pseudonymous citizen ref → the ids of their applications;
- `public_index_<YYYYMM>`: Open311's listing index, one collection per month, slots
  `pub:<area>:<YYYYMMDD>#<n>` → an application received that day in that area (country `*`,
  province, province/district), filled when a receipt is folded; confidential applications are
  never in it;
- `limits_<p>` / `locks_<p>`: rate-limit slots `<counter>:<n|f>#<i>` (the slot won is the
  exact count) and the markers of clients and codes blocked for their window;
- `captchas_<p>`, `logins_<p>`, `tries_<p>`: the portal's challenges, logins and sessions (ids
  from `portal.new_id`, which carry their expiry) and the one-time code's attempt slots.

Expiring things live in collections per period of expiry (`<name>_<p>`): the sweep drops whole
collections once everything in them has expired — no TTL index, no scan, and the collections
read on every request stay small.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

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
    modify,
)
from services.tracking import domain

log = logging.getLogger(__name__)
DUPLICATE_KEY = 11000

INDEXES: dict[str, list[Index]] = {
    # _id = application_id; OUTBOX_AT serves the relay sweep. Nothing else queries this
    # collection by another field: Open311 lists through `public_index`, the portal through
    # `muhtars`.
    "applications": [Index([(OUTBOX_AT, 1)], {"sparse": True})],
    # _id = canonical tracking code: uniqueness and lookup without a secondary index
    "codes": [],
    "muhtars": [],
}
_HIDDEN = dict.fromkeys(BOOKKEEPING, 0)
# A muhtar's list keeps this many application ids (the portal shows the latest 500).
MUHTAR_KEEP = 2000
# Collections of earlier versions, swept away whole (their counters, challenges and logins are
# short-lived, and their ids cannot be read by this version).
LEGACY = ("limits", "captchas", "logins")


class Expiring:
    """Documents that expire, kept in one collection per `seconds` of expiry: `<name>_<p>` holds
    what expires in [p·seconds, (p+1)·seconds) and is dropped once that period is over."""

    def __init__(self, db: Database, name: str, seconds: int):
        self.db = db
        self.name = name
        self.seconds = seconds

    def at(self, expires_at: float) -> Collection:
        """The collection of what expires at `expires_at` (epoch seconds)."""
        return self.db[f"{self.name}_{int(expires_at // self.seconds)}"]

    def expired(self, names: Iterable[str], now: float) -> list[str]:
        """Those of `names` that are this family's and hold nothing alive at `now`."""
        gone = []
        for name in names:
            family, _, period = name.rpartition("_")
            if family == self.name and period.isdigit() and (
                    (int(period) + 1) * self.seconds <= now):
                gone.append(name)
        return gone


def claim_slot(collection: Collection, prefix: str, hints: dict[str, int], stop: int,
               body: dict | None = None, *, reserve: bool = False) -> int:
    """Win the lowest free slot `<prefix>#<n>` (n = 1 … stop) by inserting it; n, or stop + 1
    when every slot up to `stop` is taken (nothing is then inserted).

    `hints` remembers, per prefix, the next slot worth trying: every slot below it is known to
    be taken, so a process's own claims cost one insert each. With `reserve`, concurrent callers
    in this process take distinct slots without colliding (a failed insert may then leave a gap:
    right for counters, which must never count low; wrong for lists read up to the first gap) —
    except slot 1, which everyone tries until it is taken: whoever wins slot 1 was first.
    """
    if len(hints) > 100_000:
        hints.clear()  # bounded; a lost hint only costs a few duplicate-key inserts
    n = hints.get(prefix, 1)
    while True:
        if reserve:
            n = max(n, hints.get(prefix, 1))
        if n > stop:
            return stop + 1
        if reserve and n > 1:
            hints[prefix] = n + 1
        try:
            collection.insert_one({"_id": f"{prefix}#{n}", **(body or {})})
        except DuplicateKeyError:
            n += 1
            if not reserve or n == 2:
                hints[prefix] = max(hints.get(prefix, 1), n)
            continue
        if not reserve or n == 1:
            hints[prefix] = max(hints.get(prefix, 1), n + 1)
        return n


def claim_slots(collection: Collection, claims: list[tuple[str, int]],
                hints: dict[str, int]) -> list[int]:
    """`claim_slot(…, reserve=True)` for several (prefix, stop) at once, their first tries sent
    as one insert (a lookup's two failure counts: half the round trips)."""
    results = [0] * len(claims)
    tried: list[tuple[int, str, int, int]] = []
    for index, (prefix, stop) in enumerate(claims):
        n = hints.get(prefix, 1)
        if n > stop:
            results[index] = stop + 1
            continue
        if n > 1:
            hints[prefix] = n + 1
        tried.append((index, prefix, stop, n))
    taken: set[int] = set()
    if tried:
        try:
            collection.insert_many([{"_id": f"{prefix}#{n}"} for _, prefix, _, n in tried],
                                   ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors") or []
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            taken = {e["index"] for e in errors}
    for position, (index, prefix, stop, n) in enumerate(tried):
        hints[prefix] = max(hints.get(prefix, 1), n + 1)
        results[index] = (claim_slot(collection, prefix, hints, stop, reserve=True)
                          if position in taken else n)
    return results


def expiry_of(doc_id: object) -> int | None:
    """The expiry (epoch seconds) a portal id carries (`portal.new_id`), None if it is not one."""
    if not isinstance(doc_id, str):
        return None
    head, dot, _ = doc_id.partition(".")
    if not dot or not 0 < len(head) <= 12:
        return None
    try:
        return int(head, 16)
    except ValueError:
        return None


class TrackingStore:
    """Everything tracking persists, behind a narrow interface."""

    def __init__(self, db: Database):
        self.db = db
        self.applications = db["applications"]
        self.codes = db["codes"]
        self.muhtars = db["muhtars"]
        # Counts are only ever inserted (never read): an hour per collection, so a lookup's two
        # failure counts usually go to the same one, in one insert.
        self.counters = Expiring(db, "limits", 3600)
        self.locks = Expiring(db, "locks", 300)
        self.captchas = Expiring(db, "captchas", 600)
        self.logins = Expiring(db, "logins", 3600)
        self.tries = Expiring(db, "tries", 3600)
        self._hints: dict[str, int] = {}

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

        def add_digest(current: dict | None) -> dict | None:
            if current is None or current.get("application_id") != application_id:
                # Intake guarantees unique codes, so this is a bug upstream; never log the code.
                log.error("tracking code already maps to another application",
                          extra={"application_id": application_id})
                return None
            if not security_digest or current.get("security_digest"):
                return None
            return dict(current, security_digest=security_digest)

        modify(self.codes, tracking_code, add_digest)
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
        """Whether the read model is still at `version` (it changes with every write): one read
        by `_id`, compared here (a filter with a second key would scan the collection)."""
        doc = self.applications.find_one({"_id": application_id}, {VERSION: 1})
        return doc is not None and doc.get(VERSION, 0) == version

    def get(self, application_id: str) -> dict | None:
        """An application's read model, without bookkeeping fields."""
        return self.applications.find_one({"_id": application_id}, _HIDDEN)

    def find_by_code(self, tracking_code: str) -> dict | None:
        """The read model behind a canonical tracking code, if any."""
        entry = self.codes.find_one({"_id": tracking_code})
        return self.get(entry["application_id"]) if entry else None

    # -- the muhtar portal's lists ------------------------------------------------------------

    def register_muhtar_application(self, citizen_ref: str, application_id: str) -> None:
        """Remember that `application_id` is one of this muhtar's requests (idempotent; a guarded
        write, so two applications filed at once both stay on the list)."""

        def append(current: dict | None) -> dict | None:
            ids = list((current or {}).get("applications") or [])
            if application_id in ids:
                return None
            return dict(current or {}, applications=[*ids, application_id][-MUHTAR_KEEP:])

        modify(self.muhtars, citizen_ref, append)

    def muhtar_applications(self, citizen_ref: str, limit: int = 500) -> list[dict]:
        """A muhtar's applications (read models), newest first: one `_id` read each."""
        entry = self.muhtars.find_one({"_id": citizen_ref}) or {}
        docs = [doc for doc in (self.get(application_id) for application_id in
                                list(entry.get("applications") or [])[-limit:]) if doc]
        return sorted(docs, key=lambda d: d.get("received_at") or d.get("updated_at"),
                      reverse=True)

    # -- Open311's listing index ----------------------------------------------------------------

    def index_public(self, application_id: str) -> bool:
        """Put a received, non-confidential application in the listing index of its day, in each
        area that covers it; idempotent (False when there was nothing to add).

        Each entry is an insert-once slot: concurrent receipts never overwrite each other. A
        crash between the slots and the marker adds the application again on redelivery, which
        the reader drops (`public_day` entries are de-duplicated by the listing).
        """
        doc = self.get(application_id)
        if not domain.is_visible(doc) or doc.get("confidential"):
            return False
        day = domain.day_key(doc["received_at"])
        index = self.public_index(day)
        marker = f"app:{application_id}"
        if index.find_one({"_id": marker}) is not None:
            return False
        entry = {"application_id": application_id, "received_at": doc["received_at"],
                 "category": doc.get("category")}
        for scope in domain.public_scopes(doc.get("area")):
            claim_slot(index, f"pub:{scope}:{day}", self._hints, 1 << 40, entry)
        insert_once(index, {"_id": marker})
        return True

    def public_index(self, day: str) -> Collection:
        """The listing index's collection for a day (`YYYYMMDD`): one per month, so a read in
        it never walks more than a month of entries."""
        return self.db[f"public_index_{day[:6]}"]

    def public_day(self, scope: str, day: str, start: int = 1) -> list[dict]:
        """The index entries of `scope` and `day` from slot `start` on (each with its `slot`),
        read by `_id` up to the first free slot."""
        found = []
        index = self.public_index(day)
        while True:
            entry = index.find_one({"_id": f"pub:{scope}:{day}#{start}"})
            if entry is None:
                return found
            entry["slot"] = start
            found.append(entry)
            start += 1

    # -- counters -----------------------------------------------------------------------------

    def claim(self, key: str, field: str, expires_at: int, stop: int) -> int:
        """Count one under `key`'s `field` (`n` attempts, `f` failures), all replicas together:
        the number of the slot won — the exact count — or `stop + 1` once `stop` are counted
        (then nothing more is stored). `expires_at` is in epoch seconds."""
        return claim_slot(self.counters.at(expires_at), f"{key}:{field}", self._hints, stop,
                          reserve=True)

    def claim_all(self, claims: list[tuple[str, str, int, int]]) -> list[int]:
        """`claim` for several (key, field, expires_at, stop) at once, in as few inserts as
        their collections allow."""
        results = [0] * len(claims)
        groups: dict[str, list[int]] = {}
        for index, (_, _, expires_at, _) in enumerate(claims):
            groups.setdefault(self.counters.at(expires_at).name, []).append(index)
        for name, indexes in groups.items():
            won = claim_slots(self.db[name], [(f"{claims[i][0]}:{claims[i][1]}", claims[i][3])
                                              for i in indexes], self._hints)
            for index, count in zip(indexes, won, strict=True):
                results[index] = count
        return results

    def locked(self, key: str, expires_at: int) -> bool:
        """Whether `key` was marked blocked for its window (one `_id` read of a small
        collection: only blocked clients and locked codes are in it)."""
        return self.locks.at(expires_at).find_one({"_id": key}) is not None

    def lock(self, key: str, expires_at: int) -> None:
        """Mark `key` blocked for its window (idempotent)."""
        insert_once(self.locks.at(expires_at), {"_id": key})

    # -- the muhtar portal ----------------------------------------------------------------------

    def _expiring(self, family: Expiring, doc_id: str) -> Collection | None:
        expires = expiry_of(doc_id)
        return None if expires is None else family.at(expires)

    def save_captcha(self, captcha_id: str, digest: str, expires_at: datetime) -> None:
        self.captchas.at(expiry_of(captcha_id) or expires_at.timestamp()).insert_one(
            {"_id": captcha_id, "digest": digest, "expires_at": expires_at})

    def take_captcha(self, captcha_id: str) -> dict | None:
        """A challenge, spent as it is read: of concurrent answers, only the one whose delete
        removed it gets it, so each challenge is answered once."""
        collection = self._expiring(self.captchas, captcha_id)
        challenge = collection.find_one({"_id": captcha_id}) if collection is not None else None
        if challenge is None or collection.delete_one({"_id": captcha_id}).deleted_count != 1:
            return None
        return challenge

    def save_login(self, login: dict) -> None:
        """Store a pending login or a session (its `_id` from `portal.new_id`)."""
        self.logins.at(expiry_of(login["_id"]) or login["expires_at"].timestamp()).insert_one(
            login)

    def get_login(self, login_id: str) -> dict | None:
        collection = self._expiring(self.logins, login_id)
        return collection.find_one({"_id": login_id}) if collection is not None else None

    def count_login_attempt(self, login_id: str, attempts: int) -> dict | None:
        """Count one code attempt on a pending login; the login with `attempts` set to this
        attempt's number (an insert-once slot, so concurrent attempts are all counted), or to
        `attempts + 1` once all are used."""
        entry = self.get_login(login_id)
        if entry is None:
            return None
        expires = expiry_of(login_id) or entry["expires_at"].timestamp()
        number = claim_slot(self.tries.at(expires), login_id, self._hints, attempts,
                            reserve=True)
        return dict(entry, attempts=number)

    def drop_login(self, login_id: str) -> bool:
        """Remove a login or session; True only for the one caller whose delete removed it."""
        collection = self._expiring(self.logins, login_id)
        return collection is not None and collection.delete_one(
            {"_id": login_id}).deleted_count == 1

    # -- housekeeping ---------------------------------------------------------------------------

    def sweep(self, now: datetime) -> int:
        """Drop the collections of expired counters, locks, challenges and logins (and those of
        earlier versions); returns how many documents went with them."""
        names = self.db.list_collection_names()
        expired = [name for family in (self.counters, self.locks, self.captchas, self.logins,
                                       self.tries)
                   for name in family.expired(names, now.timestamp())]
        removed = 0
        for name in [*expired, *(name for name in LEGACY if name in names)]:
            removed += self.db[name].estimated_document_count()
            self.db.drop_collection(name)
        return removed
