"""Routing's repository: cases (the work state of each application) with their outbox."""
from __future__ import annotations

from pymongo.database import Database

from services.common.mongo import Index, ensure_indexes
from services.common.outbox import BOOKKEEPING, OUTBOX_AT, Fold, fold_once

INDEXES = {
    "cases": [
        Index([("unit", 1), ("state", 1), ("received_at", -1)]),
        Index([("institution", 1), ("state", 1)]),
        Index([(OUTBOX_AT, 1)], {"sparse": True}),
    ],
}


class RoutingStore:
    def __init__(self, db: Database):
        self.db = db
        self.cases = db["cases"]

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    def apply_to_case(self, application_id: str, event_id: str, fold: Fold) -> bool:
        """Fold one event into a case exactly once (False if already applied)."""
        return fold_once(self.cases, application_id, event_id, fold)

    def get_case(self, application_id: str) -> dict | None:
        return self.cases.find_one({"_id": application_id}, dict.fromkeys(BOOKKEEPING, 0))
