"""Routing's repository: cases (the work state of each application) with their outbox, and the
organisation directory and category catalogue as data.

Directory records live in one collection per kind, keyed by their code (`_id`), so every lookup
and every uniqueness check is by `_id` (the only filter FerretDB answers from an index; a create
is an insert, so two replicas creating one code cannot both succeed).
`directory_meta` holds one document, `{_id: "directory", version}`: every change bumps it, and a
process rebuilds its in-memory directory when the version it holds is not the stored one.

A category changed through the admin API carries its `category_saved` event in the write that
stores it (outbox rule; the relay publishes `directory_categories` too). A removed category
therefore stays as a tombstone (`removed: true`) holding that event; reads skip tombstones.

The unit inbox is answered from one small collection per unit, `inbox.<unit code>`, holding a
document per open case of the unit with what the inbox filters and sorts on. On FerretDB any
query other than by `_id` reads every document of its collection: a query on `cases` would read
every case ever stored, a read of `inbox.<unit>` reads that unit's open cases only, and the page's
cases are then read by `_id`. A case's stay in a unit's inbox (from entering the unit, or
reopening, until it leaves or closes) is a *stint*, named in the case (`inbox`) and keyed
`<application id>@<stint>` in the unit's collection: the writer that starts a stint inserts its
document *before* storing the case, and the writer that ends it deletes it after (both atomic,
no document shared between cases, so no contention). A crash in between leaves an entry too
many, never one too few; a reader drops and deletes any entry its case no longer names.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.events import new_event_id, utcnow
from services.common.mongo import Index, ensure_indexes
from services.common.outbox import (
    BOOKKEEPING,
    HANDLED,
    OUTBOX,
    OUTBOX_AT,
    Fold,
    attach_events,
    fold_once,
    modify,
    replace_with_events,
)
from services.routing.cases import OPEN_STATES

INDEXES = {
    "cases": [
        Index([("unit", 1), ("state", 1), ("received_at", 1)]),
        Index([("institution", 1), ("state", 1), ("received_at", 1)]),
        Index([(OUTBOX_AT, 1)], {"sparse": True}),
    ],
    # the relay's sweep looks for waiting `category_saved` events here
    "directory_categories": [Index([(OUTBOX_AT, 1)], {"sparse": True})],
    # refused case reads (`services.common.audit`); searched by time window
    "audit_log": [Index([("at", -1)])],
}
# directory kind → collection; each document is keyed by the record's code (provinces by name)
DIRECTORY_COLLECTIONS = {
    "institutions": "directory_institutions",
    "units": "directory_units",
    "staff": "directory_staff",
    "locations": "directory_locations",
    "categories": "directory_categories",
}
KEY_OF_KIND = {"locations": "province"}
META = "directory_meta"
META_ID = "directory"
REMOVED = "removed"  # a category tombstone: deleted, kept for the event it carries
INBOX = "inbox"  # in a case: {unit, stint} while it is open in a unit's inbox


class RecordExists(Exception):
    """A directory record with this code exists already (HTTP 409)."""


def inbox_collection(unit: str) -> str:
    return f"inbox.{unit}"


def _entry(case_id: str, case: dict, stint: str) -> dict:
    return {"_id": f"{case_id}@{stint}", "case": case_id, "received_at": case.get("received_at"),
            "state": case.get("state"), "category": case.get("category"),
            "institution": case.get("institution")}


def _placement(case: dict) -> dict | None:
    return case.get(INBOX) if isinstance(case.get(INBOX), dict) else None


class RoutingStore:
    def __init__(self, db: Database):
        self.db = db
        self.cases = db["cases"]
        self.meta = db[META]
        self.audit_log = db["audit_log"]

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    # -- the audit log --------------------------------------------------------------------------

    def audit(self, entry: dict) -> None:
        """Record one staff access worth auditing (a refused case read): an insert with a new
        `_id`, atomic on FerretDB too."""
        self.audit_log.insert_one(dict(entry, _id=new_event_id()))

    # -- cases --------------------------------------------------------------------------------

    def apply_to_case(self, application_id: str, event_id: str, fold: Fold) -> bool:
        """Fold one event into a case exactly once (False if already applied), keeping the
        unit inboxes it leaves and enters up to date."""
        moves = _Moves(self, application_id)
        outcome: dict = {}

        def placed(current: dict | None) -> tuple[dict | None, list[dict]]:
            new, events = fold(current)
            if new is not None:
                new = moves.place(current, new)
            outcome["stored"] = current if new is None else new  # what this attempt leaves
            return new, events

        applied = False
        try:
            applied = fold_once(self.cases, application_id, event_id, placed)
        finally:
            # an applied fold stored its last attempt; otherwise read what is there
            moves.settle(outcome.get("stored") if applied else
                         self.cases.find_one({"_id": application_id}, {INBOX: 1}))
        return applied

    def get_case(self, application_id: str) -> dict | None:
        return self.cases.find_one({"_id": application_id}, dict.fromkeys(BOOKKEEPING, 0))

    def change_case(self, application_id: str,
                    step: Callable[[dict], tuple[dict, list[dict]]]) -> dict | None:
        """Apply `step(case) -> (new case, events)` and store both in one write.

        The write is guarded by the version read (`outbox.modify`), so of two staff acting at
        once one wins and the other's `step` judges the state the winner left (and refuses,
        when the action no longer applies). Returns the new case, or None when there is no
        such case. Whatever `step` raises propagates, nothing stored.
        """
        moves = _Moves(self, application_id)
        result: dict = {}

        def change(current: dict | None) -> dict | None:
            if current is None:
                return None
            case = {k: v for k, v in current.items() if k not in BOOKKEEPING}
            new, events = step(case)
            new = moves.place(case, new)
            result["case"] = new
            fields = {k: v for k, v in new.items() if k not in BOOKKEEPING and k != "_id"}
            return attach_events(dict(current, **fields), events)

        stored = None
        try:
            stored = modify(self.cases, application_id, change)
        finally:
            moves.settle(stored if stored is not None else
                         self.cases.find_one({"_id": application_id}))
        return None if stored is None else result["case"]

    # -- the unit inbox -------------------------------------------------------------------------

    def inbox(self, *, units: list[str] | None, institutions: list[str] | None,
              holders: Iterable[str], states: list[str], category: str | None,
              received_from: datetime | None, received_to: datetime | None, skip: int,
              limit: int) -> tuple[list[dict], int]:
        """One page of cases, oldest first, and how many match in all.

        `units` / `institutions` limit the cases (None: no limit); `holders` are the units
        whose inboxes can hold them (the caller knows the directory). Open states are answered
        from the units' inbox collections; asking for a closed state queries the cases.
        """
        if not set(states) <= set(OPEN_STATES):
            return self._inbox_by_query(units=units, institutions=institutions, states=states,
                                        category=category, received_from=received_from,
                                        received_to=received_to, skip=skip, limit=limit)
        scoped = units is not None or institutions is not None
        unit_set, inst_set, wanted = set(units or ()), set(institutions or ()), set(states)
        matching = []
        for unit in sorted(set(holders)):
            for entry in self.db[inbox_collection(unit)].find({}):
                in_scope = not scoped or unit in unit_set or entry.get("institution") in inst_set
                at = entry["received_at"]
                if in_scope and entry.get("state") in wanted \
                        and (not category or entry.get("category") == category) \
                        and (not received_from or at >= received_from) \
                        and (not received_to or at < received_to):
                    matching.append((unit, entry))
        matching.sort(key=lambda pair: (pair[1]["received_at"], pair[1]["case"]))
        total = len(matching)
        projection = dict.fromkeys((*BOOKKEEPING, "history"), 0)
        page = []
        for unit, entry in matching[skip:skip + limit]:
            case = self.cases.find_one({"_id": entry["case"]}, projection)
            if not self._current(unit, entry, case) or case.get("state") not in wanted:
                total -= 1
                continue
            page.append(case)
        return page, total

    def _current(self, unit: str, entry: dict, case: dict | None) -> bool:
        """Whether `entry` is the case's current stint in `unit`; if not, it is deleted, and
        an entry whose state lags behind the case's is brought up to date."""
        placement = _placement(case or {})
        if placement is None or placement.get("unit") != unit \
                or entry["_id"] != f"{entry['case']}@{placement.get('stint')}":
            self.db[inbox_collection(unit)].delete_one({"_id": entry["_id"]})
            return False
        if case.get("state") != entry.get("state"):
            _refresh(self, unit, entry["case"], placement["stint"])
        return True

    def _inbox_by_query(self, *, units: list[str] | None, institutions: list[str] | None,
                        states: list[str], category: str | None,
                        received_from: datetime | None, received_to: datetime | None,
                        skip: int, limit: int) -> tuple[list[dict], int]:
        # Closed cases are not listed in the inbox documents (they would grow forever): a
        # query over every case, for the rare look back.
        query: dict = {"state": {"$in": states}}
        scope = []
        if units:
            scope.append({"unit": {"$in": units}})
        if institutions:
            scope.append({"institution": {"$in": institutions}})
        if len(scope) == 1:
            query.update(scope[0])
        elif scope:
            query["$or"] = scope
        if category:
            query["category"] = category
        if received_from or received_to:
            query["received_at"] = {}
            if received_from:
                query["received_at"]["$gte"] = received_from
            if received_to:
                query["received_at"]["$lt"] = received_to
        projection = dict.fromkeys((*BOOKKEEPING, "history"), 0)
        total = self.cases.count_documents(query)
        cursor = self.cases.find(query, projection).sort(
            [("received_at", 1), ("_id", 1)]).skip(skip).limit(limit)
        return list(cursor), total

    def has_open_cases(self, *, unit: str | None = None, institution: str | None = None,
                       open_states: tuple[str, ...]) -> bool:
        """Whether any open case is held by `unit` / `institution` (admin deletions only)."""
        if unit and not institution:
            for entry in self.db[inbox_collection(unit)].find({}):
                case = self.cases.find_one({"_id": entry["case"]}, {INBOX: 1, "state": 1})
                if self._current(unit, entry, case) and case.get("state") in open_states:
                    return True
            return False
        query: dict = {"state": {"$in": list(open_states)}}
        if unit:
            query["unit"] = unit
        if institution:
            query["institution"] = institution
        return self.cases.find_one(query, {"_id": 1}) is not None

    # -- the directory ------------------------------------------------------------------------

    def directory_version(self) -> int | None:
        """The stored directory version; None before the directory was ever seeded."""
        meta = self.meta.find_one({"_id": META_ID}, {"version": 1})
        return None if meta is None else int(meta["version"])

    def load_directory(self) -> tuple[dict, list[dict], int]:
        """(flat directory, category records, version), read back from the database."""
        version = self.directory_version() or 0
        flat = {kind: self._all(kind) for kind in ("locations", "institutions", "units", "staff")}
        return flat, self._all("categories"), version

    def _all(self, kind: str) -> list[dict]:
        projection = dict.fromkeys(("_id", *BOOKKEEPING), 0)
        docs = sorted(self.db[DIRECTORY_COLLECTIONS[kind]].find({REMOVED: {"$ne": True}},
                                                                projection),
                      key=lambda doc: doc.get("order", 0))
        for doc in docs:
            doc.pop("order", None)
        return docs

    def seed_directory(self, flat: dict, categories: list[dict]) -> bool:
        """Store the directory if none is stored yet; False when one already was.

        No events: every service reads the same files itself.
        """
        if self.directory_version() is not None:
            return False
        self._write_all(flat, categories, remove_others=False)
        try:
            self.meta.insert_one({"_id": META_ID, "version": 1, "source": "files"})
        except DuplicateKeyError:
            return False  # seeded concurrently, with the same files
        return True

    def replace_directory(self, flat: dict, categories: list[dict],
                          category_events: dict[str, dict] | None = None) -> int:
        """Replace the stored directory wholesale (an explicit reload); returns the version.

        `category_events` (code → `category_saved`) go with the writes of the categories the
        reload changed or removed.
        """
        self._write_all(flat, categories, remove_others=True, category_events=category_events)
        return self.bump_version()

    def _write_all(self, flat: dict, categories: list[dict], remove_others: bool,
                   category_events: dict[str, dict] | None = None) -> None:
        records = dict(flat, categories=categories)
        events = category_events or {}
        for kind, collection_name in DIRECTORY_COLLECTIONS.items():
            collection = self.db[collection_name]
            key = KEY_OF_KIND.get(kind, "code")
            docs = records.get(kind) or []
            if kind == "categories":
                for order, doc in enumerate(docs):
                    self.save_record(kind, doc, order, _events_for(events, doc[key]))
                if remove_others:
                    kept = [doc[key] for doc in docs]
                    for gone in collection.find({"_id": {"$nin": kept}, REMOVED: {"$ne": True}},
                                                {"_id": 1}):
                        self.delete_record(kind, gone["_id"], _events_for(events, gone["_id"]))
                continue
            for order, doc in enumerate(docs):
                collection.replace_one({"_id": doc[key]}, dict(doc, _id=doc[key], order=order),
                                       upsert=True)
            if remove_others:
                collection.delete_many({"_id": {"$nin": [doc[key] for doc in docs]}})

    def save_record(self, kind: str, record: dict, order: int | None = None,
                    events: list[dict] = ()) -> None:
        """Insert or replace one directory record (keyed by its code).

        A category is written with its `events` (and any still waiting) in the same write.
        """
        key = record[KEY_OF_KIND.get(kind, "code")]
        collection = self.db[DIRECTORY_COLLECTIONS[kind]]
        if order is None:
            existing = collection.find_one({"_id": key}, {"order": 1})
            order = existing["order"] if existing else collection.count_documents({})
        doc = dict(record, _id=key, order=order)
        if kind == "categories":
            replace_with_events(collection, doc, list(events))
        else:
            collection.replace_one({"_id": key}, doc, upsert=True)

    def create_record(self, kind: str, record: dict, events: list[dict] = ()) -> None:
        """Store a new directory record; `RecordExists` if one with its code is stored.

        An insert with the code as `_id`: of two replicas creating the same code at once,
        exactly one succeeds. (A removed category's tombstone is taken over, keeping the events
        it still holds.)
        """
        key = record[KEY_OF_KIND.get(kind, "code")]
        collection = self.db[DIRECTORY_COLLECTIONS[kind]]
        doc = dict(record, _id=key, order=collection.count_documents({}))
        if kind != "categories":
            try:
                collection.insert_one(doc)
            except DuplicateKeyError:
                raise RecordExists(key) from None
            return

        def create(current: dict | None) -> dict:
            if current is not None and not current.get(REMOVED):
                raise RecordExists(key)
            new = dict(doc)
            if current is not None:
                new["order"] = current.get("order", new["order"])
                for kept in (OUTBOX, OUTBOX_AT, HANDLED):
                    if current.get(kept):
                        new[kept] = current[kept]
            return attach_events(new, list(events))

        modify(collection, key, create)

    def delete_record(self, kind: str, code: str, events: list[dict] = ()) -> bool:
        """Remove one record; a category becomes a tombstone carrying its `events`."""
        collection = self.db[DIRECTORY_COLLECTIONS[kind]]
        if kind != "categories":
            return collection.delete_one({"_id": code}).deleted_count == 1
        existing = collection.find_one({"_id": code}, {"order": 1, REMOVED: 1})
        if existing is None or existing.get(REMOVED):
            return False
        replace_with_events(collection, {"_id": code, REMOVED: True,
                                         "order": existing.get("order", 0)}, list(events))
        return True

    def bump_version(self) -> int:
        """Mark the directory changed; returns the new version.

        Through the guarded write: two changes on two replicas at once get two versions (an
        `$inc` on FerretDB can lose one, and a replica at the lost number never rebuilds).
        """
        stored = modify(self.meta, META_ID, lambda current: {
            "version": int((current or {}).get("version", 0)) + 1, "source": "admin",
            "changed_at": utcnow()})
        return int(stored["version"])


class _Moves:
    """One case write's inbox bookkeeping: the stint each attempt placed the case in, and, once
    the write is stored, the stints it ended.

    `place` runs inside the guarded write, before the case is stored: a case entering a unit
    (or reopened in one) starts a stint, whose inbox entry is inserted there and then. An
    attempt that lost to a concurrent writer leaves its entry behind; `settle` deletes it and
    the entry of the stint the stored write ended, and shows a changed state in the entry of
    a stint that goes on.
    """

    def __init__(self, store: RoutingStore, case_id: str):
        self.store, self.case_id = store, case_id
        self.started: list[tuple[str, str]] = []  # (unit, stint) entries inserted
        self.left: list[tuple[str, str]] = []  # (unit, stint) the attempts' cases were in
        self.restated: set[str] = set()  # stints that went on in another state

    def place(self, current: dict | None, new: dict) -> dict:
        before = _placement(current or {})
        if before is not None:
            self.left.append((before["unit"], before["stint"]))
        unit = new.get("unit")
        if not unit or new.get("state") not in OPEN_STATES:
            return dict(new, **{INBOX: None})
        if before is not None and before.get("unit") == unit:
            if new.get("state") != (current or {}).get("state"):
                self.restated.add(before["stint"])
            return dict(new, **{INBOX: before})  # the same stay goes on
        stint = new_event_id()
        entry = _entry(self.case_id, new, stint)
        self.store.db[inbox_collection(unit)].insert_one(entry)
        self.started.append((unit, stint))
        return dict(new, **{INBOX: {"unit": unit, "stint": stint}})

    def settle(self, stored: dict | None) -> None:
        now = _placement(stored or {})
        current = (now["unit"], now["stint"]) if now else None
        for unit, stint in {*self.started, *self.left}:
            if (unit, stint) != current:
                self.store.db[inbox_collection(unit)].delete_one(
                    {"_id": f"{self.case_id}@{stint}"})
        if current is not None and current[1] in self.restated:
            _refresh(self.store, current[0], self.case_id, current[1])


def _refresh(store: RoutingStore, unit: str, case_id: str, stint: str) -> None:
    """Show the stored case's state in its inbox entry (never creating the entry: it may have
    just been deleted by the writer that ended the stint)."""

    def change(entry: dict | None) -> dict | None:
        if entry is None:
            return None
        case = store.cases.find_one({"_id": case_id}, {"state": 1, INBOX: 1})
        placement = _placement(case or {})
        if placement is None or placement.get("stint") != stint \
                or case.get("state") == entry.get("state"):
            return None
        return dict(entry, state=case.get("state"))

    modify(store.db[inbox_collection(unit)], f"{case_id}@{stint}", change)


def _events_for(events: dict[str, dict], code: str) -> list[dict]:
    return [events[code]] if code in events else []
