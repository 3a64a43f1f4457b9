"""Notify's repository: the outbound message log, with its outbox of outcome events.

`_id` is `<cause event id>:<template>`: one message per cause, claimed by inserting it (an insert
with a unique `_id` succeeds for exactly one writer, on MongoDB and on FerretDB alike). A claim
left by a crashed worker is taken over once its lease ran out; who takes it over is decided by
another insert, `<message id>@<abandoned claim>` in `message_takeovers`, never by a filtered
update (on FerretDB two workers would both match it and both send). Every later change of a
message goes through the guarded write (`outbox.modify`).

An application's messages are listed through `message_index`: slot `<application id>#<n>` names
its n-th message, read by `_id` until the first missing slot (on FerretDB a query on
`application_id` reads every message ever sent).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Index, ensure_indexes
from services.common.outbox import (
    BOOKKEEPING,
    OUTBOX_AT,
    insert_once,
    modify,
    update_with_events,
)
from services.notify.domain import FINAL, SENDING

INDEXES = {
    "messages": [Index([(OUTBOX_AT, 1)], {"sparse": True})],
}
_HIDDEN = dict.fromkeys(BOOKKEEPING, 0)


class MessageInFlight(Exception):
    """Another worker is sending this message right now; the event will be retried."""


class NotifyStore:
    """Everything notify persists, behind a narrow interface."""

    def __init__(self, db: Database):
        self.db = db
        self.messages = db["messages"]
        self.takeovers = db["message_takeovers"]
        self.index = db["message_index"]

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    def get_message(self, key: str) -> dict | None:
        return self.messages.find_one({"_id": key}, _HIDDEN)

    def claim(self, message: dict, lease: timedelta) -> bool:
        """Record `message` as being sent by us. False if it was already sent or failed.

        Raises `MessageInFlight` while another worker holds a fresh claim on it; a claim older
        than `lease` was abandoned by a crash and is taken over — by one worker only.
        """
        if insert_once(self.messages, message):
            self._list(message["application_id"], message["_id"])
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
        abandoned = existing["claim"]
        self._win_takeover(f"{message['_id']}@{abandoned}", message["claim"], now, lease)
        outcome: dict = {}

        def take(current: dict | None) -> dict | None:
            # the abandoned claim may have finished after all, just before we took it over
            if current is None or current.get("status") != SENDING \
                    or current.get("claim") != abandoned:
                outcome["final"] = current is not None and current.get("status") in FINAL
                return None
            return dict(current, claim=message["claim"], claimed_at=now,
                        destination=message["destination"], channel=message["channel"],
                        provider=message["provider"],
                        attempts=int(current.get("attempts", 1)) + 1)

        if modify(self.messages, message["_id"], take) is None:
            if outcome.get("final"):
                return False
            raise MessageInFlight(message["_id"])
        self._list(message["application_id"], message["_id"])
        return True

    def _win_takeover(self, token: str, claim: str, now: datetime, lease: timedelta) -> None:
        """Insert the take-over token of an abandoned claim, or raise `MessageInFlight`.

        A token whose worker died before finishing the take-over is itself taken over after the
        lease, by the token keyed by it: every contender follows the same chain, and at each
        link one insert wins.
        """
        for _ in range(10):
            try:
                self.takeovers.insert_one({"_id": token, "claim": claim, "at": now})
                return
            except DuplicateKeyError:
                held = self.takeovers.find_one({"_id": token})
            if held is not None and now - held["at"] < lease:
                raise MessageInFlight(token)  # another worker took it over
            if held is not None:
                token = f"{token}>{held['claim']}"
        raise MessageInFlight(token)

    def finish(self, key: str, claim: str, fields: dict, events: list[dict]) -> bool:
        """Record the outcome and its event in one write, if our claim still holds."""
        return update_with_events(
            self.messages, {"_id": key, "status": SENDING, "claim": claim}, fields, events)

    def _list(self, application_id: str, key: str) -> None:
        """Add message `key` to the application's list, once (a take-over finds it there)."""
        n = 0
        while True:
            slot = self.index.find_one({"_id": f"{application_id}#{n}"})
            if slot is None:
                try:
                    self.index.insert_one({"_id": f"{application_id}#{n}", "message": key})
                    return
                except DuplicateKeyError:
                    continue  # another message of the application took it: read it
            if slot["message"] == key:
                return
            n += 1

    def log_for(self, application_id: str, limit: int = 200) -> list[dict]:
        """An application's messages, oldest first."""
        found = []
        n = 0
        while len(found) < limit:
            slot = self.index.find_one({"_id": f"{application_id}#{n}"})
            if slot is None:
                break
            message = self.get_message(slot["message"])
            if message is not None:
                found.append(message)
            n += 1
        return sorted(found, key=lambda message: message["created_at"])
