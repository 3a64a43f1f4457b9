"""Notify's repository: the outbound message log, with its outbox of outcome events.

`_id` is `<cause event id>:<template>`: one message per cause, claimed by inserting it (an insert
with a unique `_id` succeeds for exactly one writer, on MongoDB and on FerretDB alike). A claim
left without a sender is taken over once its lease ran out, or at once by the process that
knows it never sent (`sending.EndedClaims`); who takes it over is decided by another insert,
`<message id>@<abandoned claim>` in `message_takeovers`, never by a filtered update (on
FerretDB two workers would both match it and both send). Every later change of a message goes
through the guarded write (`outbox.modify`).

A message held for later (the quiet hours, a retry after a passing failure) is `deferred` in
the log and has an entry in `deferred`, which holds only what is still to go (deleted when it
went): the sweep reads that small collection, never the log. The entry is written before the
message is marked, so a crash between the two leaves an entry whose message is not deferred
under its claim (dropped by the sweep), never a deferred message nobody will send. Resuming one
is decided like a take-over, by an insert-once token.

Administrators' texts replacing template files are kept in `template_overrides`, by the file's
path (`sms/case_closed.tr.j2`): a small collection, read whole.

Opt-outs are kept by the citizen's opaque reference in `opt_outs`; refused staff reads of a
delivery log (issue 13) in `audit_log`, codes and ids only.

An application's messages are listed through `message_index`: slot `<application id>#<n>` names
its n-th message, read by `_id` until the first missing slot (on FerretDB a query on
`application_id` reads every message ever sent).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.events import new_event_id
from services.common.mongo import Index, ensure_indexes, list_once, slots
from services.common.outbox import (
    BOOKKEEPING,
    OUTBOX_AT,
    insert_once,
    modify,
    update_with_events,
)
from services.notify.domain import DEFERRED, FINAL, SENDING

INDEXES = {
    "messages": [Index([(OUTBOX_AT, 1)], {"sparse": True})],
    "deferred": [Index([("due_at", 1)])],
    # refused reads of a delivery log (`services.common.audit`); searched by time window
    "audit_log": [Index([("at", -1)])],
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
        self.deferred = db["deferred"]
        self.opt_outs = db["opt_outs"]
        self.audit_log = db["audit_log"]
        self.overrides = db["template_overrides"]

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    def audit(self, entry: dict) -> None:
        """Record one staff access worth auditing (a refused read of a delivery log): an insert
        with a new `_id`, atomic on FerretDB too."""
        self.audit_log.insert_one(dict(entry, _id=new_event_id()))

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

    # -- held for later ----------------------------------------------------------------------

    def defer_new(self, message: dict, entry: dict) -> dict | None:
        """Record `message` (status `deferred`) to go at `entry["due_at"]`: None when it is
        ours, else the stored message someone recorded first (as `claim`)."""
        self.deferred.replace_one({"_id": message["_id"]}, entry, upsert=True)
        return self.claim(message)

    def defer_claimed(self, key: str, claim: str, entry: dict, fields: dict) -> bool:
        """Hold the message we are sending under `claim` for later: False when the claim was
        lost meanwhile (nothing held)."""
        self.deferred.replace_one({"_id": key}, entry, upsert=True)
        return update_with_events(self.messages, {"_id": key, "status": SENDING, "claim": claim},
                                  dict(fields, status=DEFERRED), [])

    def due(self, now: datetime, limit: int = 200) -> list[dict]:
        """Entries whose time came, oldest first."""
        return list(self.deferred.find({"due_at": {"$lte": now}}).sort("due_at", 1).limit(limit))

    def drop_deferred(self, key: str) -> None:
        self.deferred.delete_one({"_id": key})

    def resume(self, key: str, held: str, claim: str, now: datetime, lease: timedelta) -> bool:
        """Take the message held under claim `held` (deferred, or left `sending` by a releaser
        that died) to send it now under `claim`: True when it is ours (status `sending`), False
        when it is no longer so (sent, or held anew).

        Raises `MessageInFlight` when another worker is resuming it.
        """
        self._win_takeover(f"{key}@{held}", claim, now, lease, lambda other: False)

        def take(current: dict | None) -> dict | None:
            # deferred under `held`, or being sent under it by a releaser whose lease the
            # caller saw lapse (it died mid-send: the token above makes one of us its heir)
            if current is None or current.get("status") not in (DEFERRED, SENDING) \
                    or current.get("claim") != held:
                return None
            return dict(current, status=SENDING, claim=claim, claimed_at=now,
                        attempts=int(current.get("attempts", 0)) + 1)

        return modify(self.messages, key, take) is not None

    # -- the morning digest -------------------------------------------------------------------

    def digest_done(self, day: str) -> bool:
        return self.db["digests"].find_one({"_id": day}) is not None

    def mark_digest_done(self, day: str, now: datetime) -> None:
        insert_once(self.db["digests"], {"_id": day, "at": now})

    # -- template overrides (issue 13) ----------------------------------------------------------

    def template_overrides(self) -> list[dict]:
        """Every override: `_id` (the file's path), `text`, `updated_at`, `updated_by`."""
        return list(self.overrides.find({}))

    def put_template_override(self, path: str, text: str, by: str, now: datetime) -> None:
        self.overrides.replace_one(
            {"_id": path}, {"_id": path, "text": text, "updated_at": now, "updated_by": by},
            upsert=True)

    def delete_template_override(self, path: str) -> bool:
        """Remove the override of `path`; False when there was none."""
        return self.overrides.delete_one({"_id": path}).deleted_count > 0

    # -- opt-outs ------------------------------------------------------------------------------

    def set_opt_out(self, citizen_ref: str, opted_out: bool, source: str, now: datetime) -> None:
        self.opt_outs.replace_one({"_id": citizen_ref},
                                  {"_id": citizen_ref, "opted_out": opted_out,
                                   "source": source, "at": now}, upsert=True)

    def opted_out(self, citizen_ref: str | None) -> bool:
        if not citizen_ref:
            return False
        found = self.opt_outs.find_one({"_id": citizen_ref}, {"opted_out": 1})
        return bool(found and found.get("opted_out"))

    def opt_out_of(self, citizen_ref: str) -> dict | None:
        return self.opt_outs.find_one({"_id": citizen_ref})

    def _list(self, application_id: str, key: str) -> None:
        """Add message `key` to the application's list, once (a take-over finds it there)."""
        list_once(self.index, application_id, "message", key)

    def received_message(self, application_id: str) -> dict | None:
        """The application's "received" message (`status`), or None while there is none: read
        through its list, by `_id`, as the message's key names its template."""
        for slot in slots(self.index, application_id):
            if slot["message"].endswith(":application_received"):
                return self.messages.find_one({"_id": slot["message"]}, {"status": 1})
        return None

    def message_ids_of(self, application_id: str) -> list[str]:
        """The ids of an application's messages, through its list (by `_id`)."""
        return [slot["message"] for slot in slots(self.index, application_id)]

    def log_for(self, application_id: str, limit: int = 200) -> list[dict]:
        """An application's messages, oldest first."""
        found = []
        for slot in slots(self.index, application_id):
            if len(found) >= limit:
                break
            message = self.get_message(slot["message"])
            if message is not None:
                found.append(message)
        return sorted(found, key=lambda message: message["created_at"])
