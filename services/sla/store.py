"""SLA's repository: one timer set per case, keyed by application id."""
from __future__ import annotations

from datetime import datetime

from pymongo.database import Database

from services.common.mongo import Index, ensure_indexes
from services.common.outbox import BOOKKEEPING, Fold, fold_once
from services.sla.domain import OPEN

# `_id` is the application id: one timer set per case without a unique secondary index.
INDEXES = {
    "timers": [
        # what the claim loop and the overdue list ask: open sets due before now, oldest first
        Index([("state", 1), ("next_due_at", 1)]),
        Index([("unit", 1), ("state", 1), ("next_due_at", 1)]),
    ],
}
_HIDDEN = dict.fromkeys(BOOKKEEPING, 0)


class SlaStore:
    """Everything sla persists, behind a narrow interface."""

    def __init__(self, db: Database):
        self.db = db
        self.timers = db["timers"]

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    def apply_to_timers(self, application_id: str, event_id: str, fold: Fold) -> bool:
        """Fold one event into a case's timer set exactly once (False if already applied)."""
        return fold_once(self.timers, application_id, event_id, fold)

    def get_timers(self, application_id: str) -> dict | None:
        """A case's timer set, without bookkeeping fields."""
        return self.timers.find_one({"_id": application_id}, _HIDDEN)

    def overdue(self, now: datetime, unit: str | None = None, limit: int = 100) -> list[dict]:
        """Open timer sets with a timer due before `now`, the longest overdue first."""
        query: dict = {"state": OPEN, "next_due_at": {"$lte": now}}
        if unit is not None:
            query = {"unit": unit, **query}
        cursor = self.timers.find(query, _HIDDEN).sort("next_due_at", 1).limit(limit)
        return list(cursor)
