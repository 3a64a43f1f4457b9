"""The copy of the category catalogue intake and tracking keep (routing owns the catalogue).

Routing owns the catalogue: it seeds its database from `CATALOGUE_PATH` and lets admins create,
change and remove categories through its API, emitting `category_saved` (the category's public
definition, `removed` when deleted) in the write that stores each change.

Intake (to validate `category` / `kind`, default the priority, offer the web form's list and
classify text messages) and tracking (category names, reopen days, Open311 services) must work
while routing is down, so each keeps its own copy: `CatalogueCache` is the file's categories
overridden and extended by the admin changes it has stored in its **own** database
(`catalogue_categories`, one document per category keyed by code, latest `occurred_at` wins;
`catalogue_meta` holds a version every stored change bumps). One cache per service process, made
by its composition root, is shared by the nameko side (the `category_saved` handler calls
`apply`) and the Flask side (which calls `get` at use time). `get` costs a clock read: it looks
at the stored version at most every `CATALOGUE_CHECK_SECONDS` (one `_id` lookup) and re-reads
the stored categories only when the version moved, so another replica's change shows within
that time, this process's at once.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from pymongo.database import Database

from services.common.catalogue import Category, load_categories
from services.common.outbox import fold_once

CATEGORIES = "catalogue_categories"
META = "catalogue_meta"
META_ID = "catalogue"
DEFAULT_CHECK_SECONDS = 2.0
DEFINITION = tuple(Category("-", "-", "-", (), "named").to_dict())  # the fields of an event


class CatalogueCache:
    """The catalogue as one service process holds it: `get()` for readers, `apply()` for the
    `category_saved` handler. Without a database it is just the file's (fixed)."""

    def __init__(self, file_categories: dict[str, Category], db: Database | None = None,
                 *, check_seconds: float = DEFAULT_CHECK_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.file_categories = dict(file_categories)
        self.check_seconds = check_seconds
        self.clock = clock
        self._stored = db[CATEGORIES] if db is not None else None
        self._meta = db[META] if db is not None else None
        self._current = dict(self.file_categories)
        self._version: int | None = None
        self._checked = float("-inf")

    def get(self) -> dict[str, Category]:
        """The categories by code (treat as read-only: it is shared)."""
        if self._stored is None:
            return self._current
        now = self.clock()
        if now - self._checked >= self.check_seconds:
            self._checked = now  # first, so concurrent readers do not all check at once
            version = self._stored_version()
            if version != self._version:
                self._rebuild(version)
        return self._current

    def apply(self, data: dict, occurred_at: datetime, event_id: str) -> bool:
        """Store one `category_saved` (its `data`), unless a later change of the same category
        is stored already; True when stored. A redelivered event changes nothing."""
        if self._stored is None:
            raise RuntimeError("a catalogue without a database cannot store changes")
        # MongoDB keeps milliseconds: compare what will read back equal
        occurred_at = occurred_at.replace(microsecond=occurred_at.microsecond // 1000 * 1000)
        stamp = (occurred_at, event_id)
        stored: list[bool] = []

        def fold(current: dict | None) -> tuple[dict | None, list[dict]]:
            if current is not None and (current["occurred_at"], current["event_id"]) >= stamp:
                return None, []  # an older change arriving late: the newer one stays
            stored.append(True)
            return {"category": {k: data[k] for k in DEFINITION},
                    "removed": bool(data.get("removed")),
                    "occurred_at": occurred_at, "event_id": event_id}, []

        first_time = fold_once(self._stored, data["code"], event_id, fold)
        if stored or not first_time:
            # Bumped on a redelivery too: a crash may have come between the write and the bump,
            # and re-reading an unchanged catalogue is harmless.
            self._meta.update_one({"_id": META_ID}, {"$inc": {"version": 1}}, upsert=True)
            self._checked = float("-inf")  # this process sees it at its next read
        return bool(stored)

    def _stored_version(self) -> int:
        meta = self._meta.find_one({"_id": META_ID}, {"version": 1})
        return int(meta["version"]) if meta else 0

    def _rebuild(self, version: int) -> None:
        # Read after the version: the documents are at least that new (writers bump after).
        current = dict(self.file_categories)
        for doc in self._stored.find({}, {"category": 1, "removed": 1}):
            if doc.get("removed"):
                current.pop(doc["_id"], None)
            else:
                current[doc["_id"]] = Category.from_dict(doc["category"])
        self._current = current
        self._version = version


def open_catalogue(config: dict, db: Database) -> CatalogueCache:
    """The catalogue for a service's own database: the file's categories, then its changes."""
    return CatalogueCache(load_categories(config["CATALOGUE_PATH"]), db,
                          check_seconds=float(config.get("CATALOGUE_CHECK_SECONDS",
                                                         DEFAULT_CHECK_SECONDS)))
