"""Notify's repository: the outbound message log, with its outbox of outcome events.

`_id` is `<cause event id>:<template>`: one message per cause, claimed by inserting it (an insert
with a unique `_id` succeeds for exactly one writer, on MongoDB and on FerretDB alike). A claim
left without a sender is taken over once its lease ran out, or at once by the process that
knows it never sent (`sending.EndedClaims`); who takes it over is decided by another insert,
`<message id>@<abandoned claim>` in `message_takeovers`, never by a filtered update (on
FerretDB two workers would both match it and both send). Every later change of a message goes
through the guarded write (`outbox.modify`).

An application's messages are listed through `message_index`: slot `<application id>#<n>` names
its n-th message, read by `_id` until the first missing slot (on FerretDB a query on
`application_id` reads every message ever sent).
"""
from __future__ import annotations

from collections.abc import Callable
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

    def claim(self, message: dict) -> dict | None:
        """Record `message` as being sent under its claim: None when it is ours now, else the
        stored message (`status`, `claim`, `claimed_at`) someone recorded first.

        A write that raises may have been stored all the same (the answer was lost); the
        caller remembers the claim as its own and never sent (`sending.EndedClaims`).
        """
        while True:
            if insert_once(self.messages, message):
                self._list(message["application_id"], message["_id"])
                return None
            existing = self.messages.find_one({"_id": message["_id"]},
                                              {"status": 1, "claim": 1, "claimed_at": 1})
            if existing is not None:
                return existing
            # removed between our insert and our read: claim afresh

    def take_over(self, message: dict, abandoned: str, lease: timedelta,
                  dead: Callable[[str], bool] = lambda claim: False) -> bool:
        """Replace claim `abandoned` — lapsed, or one `dead` says has no sender — by
        `message`'s. True when it is ours; False when it was finished meanwhile.

        Raises `MessageInFlight` when another worker took it over first.
        """
        now: datetime = message["claimed_at"]
        self._win_takeover(f"{message['_id']}@{abandoned}", message["claim"], now, lease, dead)
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

    def _win_takeover(self, token: str, claim: str, now: datetime, lease: timedelta,
                      dead: Callable[[str], bool]) -> None:
        """Insert the take-over token of an abandoned claim, or raise `MessageInFlight`.

        A token whose worker died before finishing the take-over is itself taken over after the
        lease (or at once when `dead` knows its claim never sent), by the token keyed by it:
        every contender follows the same chain, and at each link one insert wins.
        """
        for _ in range(10):
            try:
                self.takeovers.insert_one({"_id": token, "claim": claim, "at": now})
                return
            except DuplicateKeyError:
                held = self.takeovers.find_one({"_id": token})
            if held is not None and now - held["at"] < lease and not dead(held["claim"]):
                raise MessageInFlight(token)  # another worker took it over
            if held is not None:
                token = f"{token}>{held['claim']}"
        raise MessageInFlight(token)

    def finish(self, key: str, claim: str, fields: dict, events: list[dict]) -> bool:
        """Record the outcome and its event in one write, if our claim still holds.

        True too when this claim's outcome is recorded already: a write whose answer the
        database lost, tried again.
        """
        if update_with_events(
                self.messages, {"_id": key, "status": SENDING, "claim": claim}, fields, events):
            return True
        stored = self.messages.find_one({"_id": key}, {"status": 1, "claim": 1})
        return stored is not None and stored.get("claim") == claim \
            and stored.get("status") in FINAL

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
