"""Tracking's repository: the read model per application and the tracking-code → application map.

Every lookup is keyed by `_id` (the embedded store scans collections for anything else): a
citizen's lookup reads `codes` by the canonical tracking code, then `applications` by id.
"""
from __future__ import annotations

import logging

from pymongo.database import Database

from services.common.mongo import Index, ensure_indexes
from services.common.outbox import BOOKKEEPING, Fold, fold_once, insert_once

log = logging.getLogger(__name__)

INDEXES: dict[str, list[Index]] = {
    # _id = application_id; nothing else is queried yet
    "applications": [],
    # _id = canonical tracking code: uniqueness and lookup without a secondary index
    "codes": [],
}
# An `_id` no application has, so a lookup of an unknown code reads as much as a known one.
_ABSENT = "-"


class TrackingStore:
    """Everything tracking persists, behind a narrow interface."""

    def __init__(self, db: Database):
        self.db = db
        self.applications = db["applications"]
        self.codes = db["codes"]

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    def apply(self, application_id: str, event_id: str, fold: Fold) -> bool:
        """Fold one event into an application's read model once (False if already applied)."""
        return fold_once(self.applications, application_id, event_id, fold)

    def register_code(self, tracking_code: str, application_id: str) -> bool:
        """Map a tracking code to its application; False if the mapping already exists."""
        if insert_once(self.codes, {"_id": tracking_code, "application_id": application_id}):
            return True
        existing = self.codes.find_one({"_id": tracking_code}) or {}
        if existing.get("application_id") != application_id:
            # Intake guarantees unique codes, so this is a bug upstream; never log the code.
            log.error("tracking code already maps to another application",
                      extra={"application_id": application_id})
        return False

    def get(self, application_id: str) -> dict | None:
        """An application's read model, without bookkeeping fields."""
        return self.applications.find_one({"_id": application_id}, dict.fromkeys(BOOKKEEPING, 0))

    def find_by_code(self, tracking_code: str) -> dict | None:
        """The read model behind a canonical tracking code.

        Always two `_id` reads, found or not, so the time taken does not tell whether a code
        exists.
        """
        mapping = self.codes.find_one({"_id": tracking_code})
        application_id = mapping["application_id"] if mapping else _ABSENT
        doc = self.get(application_id)
        return doc if mapping else None
