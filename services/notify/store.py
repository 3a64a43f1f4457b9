"""Notify's repository: the outbound message log, with its outbox of outcome events."""
from __future__ import annotations

from datetime import datetime, timedelta

from pymongo.database import Database

from services.common.mongo import Index, ensure_indexes
from services.common.outbox import BOOKKEEPING, OUTBOX_AT, insert_once, update_with_events
from services.notify.domain import SENDING

# `_id` is `<cause event id>:<channel>:<template>`: exactly-once without a unique index.
INDEXES = {
    "messages": [
        Index([("application_id", 1), ("created_at", 1)]),
        Index([(OUTBOX_AT, 1)], {"sparse": True}),
    ],
}
_HIDDEN = dict.fromkeys(BOOKKEEPING, 0)


class MessageInFlight(Exception):
    """Another worker is sending this message right now; the event will be retried."""


class NotifyStore:
    """Everything notify persists, behind a narrow interface."""

    def __init__(self, db: Database):
        self.db = db
        self.messages = db["messages"]

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    def get_message(self, key: str) -> dict | None:
        return self.messages.find_one({"_id": key}, _HIDDEN)

    def claim(self, message: dict, lease: timedelta) -> bool:
        """Record `message` as being sent by us. False if it was already sent or failed.

        Raises `MessageInFlight` while another worker holds a fresh claim on it; a claim older
        than `lease` was abandoned by a crash and is taken over.
        """
        if insert_once(self.messages, message):
            return True
        existing = self.messages.find_one({"_id": message["_id"]},
                                          {"status": 1, "claim": 1, "claimed_at": 1})
        if existing is None:  # removed between our insert and our read: claim afresh
            return self.claim(message, lease)
        if existing["status"] != SENDING:
            return False
        now: datetime = message["claimed_at"]
        if now - existing["claimed_at"] < lease:
            raise MessageInFlight(message["_id"])
        taken = self.messages.update_one(
            {"_id": message["_id"], "status": SENDING, "claim": existing["claim"]},
            {"$set": {"claim": message["claim"], "claimed_at": now,
                      "destination": message["destination"]},
             "$inc": {"attempts": 1}},
        )
        if not taken.matched_count:
            raise MessageInFlight(message["_id"])
        return True

    def finish(self, key: str, claim: str, fields: dict, events: list[dict]) -> bool:
        """Record the outcome and its event in one write, if our claim still holds."""
        return update_with_events(
            self.messages, {"_id": key, "status": SENDING, "claim": claim}, fields, events)

    def log_for(self, application_id: str, limit: int = 200) -> list[dict]:
        """An application's messages, oldest first."""
        cursor = self.messages.find({"application_id": application_id}, _HIDDEN)
        return list(cursor.sort("created_at", 1).limit(limit))
