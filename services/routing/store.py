"""Routing's repository: cases (the work state of each application) with their outbox, and the
organisation directory and category catalogue as data.

Directory records live in one collection per kind, keyed by their code (`_id`), so every lookup
and every uniqueness check is by `_id` (the embedded-store rule of services/common/mongo.py).
`directory_meta` holds one document, `{_id: "directory", version}`: every change bumps it, and a
process rebuilds its in-memory directory when the version it holds is not the stored one.

A category changed through the admin API carries its `category_saved` event in the write that
stores it (outbox rule; the relay publishes `directory_categories` too). A removed category
therefore stays as a tombstone (`removed: true`) holding that event; reads skip tombstones.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Index, ensure_indexes
from services.common.outbox import (
    BOOKKEEPING,
    OUTBOX_AT,
    VERSION,
    ConcurrentUpdate,
    Fold,
    fold_once,
    replace_with_events,
    update_with_events,
)

INDEXES = {
    "cases": [
        Index([("unit", 1), ("state", 1), ("received_at", 1)]),
        Index([("institution", 1), ("state", 1), ("received_at", 1)]),
        Index([(OUTBOX_AT, 1)], {"sparse": True}),
    ],
    # the relay's sweep looks for waiting `category_saved` events here
    "directory_categories": [Index([(OUTBOX_AT, 1)], {"sparse": True})],
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


class RoutingStore:
    def __init__(self, db: Database):
        self.db = db
        self.cases = db["cases"]
        self.meta = db[META]

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    # -- cases --------------------------------------------------------------------------------

    def apply_to_case(self, application_id: str, event_id: str, fold: Fold) -> bool:
        """Fold one event into a case exactly once (False if already applied)."""
        return fold_once(self.cases, application_id, event_id, fold)

    def get_case(self, application_id: str) -> dict | None:
        return self.cases.find_one({"_id": application_id}, dict.fromkeys(BOOKKEEPING, 0))

    def change_case(self, application_id: str,
                    step: Callable[[dict], tuple[dict, list[dict]]],
                    attempts: int = 10) -> dict | None:
        """Apply `step(case) -> (new case, events)` and store both in one write.

        The write is conditional on the version read, so two staff acting at once never lose
        an update: the loser re-reads and `step` judges the new state. Returns the new case,
        or None when there is no such case. Whatever `step` raises propagates, nothing stored.
        """
        for _ in range(attempts):
            current = self.cases.find_one({"_id": application_id})
            if current is None:
                return None
            case = {k: v for k, v in current.items() if k not in BOOKKEEPING}
            new, events = step(case)
            fields = {k: v for k, v in new.items() if k not in BOOKKEEPING and k != "_id"}
            if update_with_events(self.cases, {"_id": application_id,
                                               VERSION: current.get(VERSION)}, fields, events):
                return new
        raise ConcurrentUpdate(f"case {application_id}: too many concurrent updates")

    def inbox(self, *, units: list[str] | None, institutions: list[str] | None,
              states: list[str], category: str | None, received_from: datetime | None,
              received_to: datetime | None, skip: int, limit: int) -> tuple[list[dict], int]:
        """One page of cases, oldest first, and how many match in all."""
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

    def delete_record(self, kind: str, code: str, events: list[dict] = ()) -> bool:
        """Remove one record; a category becomes a tombstone carrying its `events`."""
        collection = self.db[DIRECTORY_COLLECTIONS[kind]]
        if kind != "categories":
            return collection.delete_one({"_id": code}).deleted_count == 1
        existing = collection.find_one({"_id": code, REMOVED: {"$ne": True}}, {"order": 1})
        if existing is None:
            return False
        replace_with_events(collection, {"_id": code, REMOVED: True,
                                         "order": existing.get("order", 0)}, list(events))
        return True

    def bump_version(self) -> int:
        """Mark the directory changed; returns the new version."""
        meta = self.meta.find_one_and_update(
            {"_id": META_ID}, {"$inc": {"version": 1}, "$set": {"source": "admin"}},
            upsert=True, return_document=ReturnDocument.AFTER)
        return int(meta["version"])


def _events_for(events: dict[str, dict], code: str) -> list[dict]:
    return [events[code]] if code in events else []
