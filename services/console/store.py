"""The console's store: staff accounts, sessions, pending second-factor logins and the login
throttle's counters, each by `_id` (on FerretDB only an `_id` filter reaches an index).

- `accounts`: `_id` = staff code; role, unit, institution, name, the argon2 hash, an optional
  TOTP secret, and `disabled` (True: the account cannot sign in; absent or False: it can).
- `sessions`: `_id` = SHA-256 of the session id (the id itself is only in the browser's
  cookie); user, role, unit, institution, name, csrf, created, last_seen, expires_at.
- `pending_logins`: `_id` = SHA-256 of the pending id; the user who gave the right password,
  its csrf token and `expires_at`. Taken once: a delete by `_id` has one winner.
- `password_resets`: `_id` = the reset id (`domain.reset_token`); the user, the SHA-256 of the
  link's token (never the token), `created`, `expires_at`, `used_at` (None until the link is
  used), and in the same insert the outbox entry of `staff_password_reset_requested` that the
  relay publishes. Consumed through `outbox.modify` (a version-guarded write: the relay
  clearing the outbox never undoes it, and of two uses one wins).
- `login_failures`: insert-once slots `<scope>|<window>|<n>` and markers `<scope>|<window>|limit`
  (domain.py says how they count), and the TOTP steps already used (`totp|<user>|<step>`: a
  code opens one login), each with `expires_at` for the purge.

FerretDB has no TTL index: `purge` deletes what has expired, from the service's timer.
"""
from __future__ import annotations

import contextlib
from datetime import datetime

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Index, ensure_indexes
from services.common.outbox import insert_with_events, modify

INDEXES: dict[str, list[Index]] = {
    "sessions": [Index([("expires_at", 1)])],
    "pending_logins": [Index([("expires_at", 1)])],
    "login_failures": [Index([("expires_at", 1)])],
    "password_resets": [Index([("expires_at", 1)])],
}
EXPIRING = ("sessions", "pending_logins", "login_failures", "password_resets")
# More slots than any limit needs: a scope past its limit is locked, never counted further.
MAX_SLOTS = 1000


class ConsoleStore:
    """Accounts, sessions, pending logins and failure slots in the console's database."""

    def __init__(self, db: Database):
        self.db = db
        self.accounts = db["accounts"]
        self.sessions = db["sessions"]
        self.pending = db["pending_logins"]
        self.failures = db["login_failures"]
        self.resets = db["password_resets"]

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    # -- accounts -----------------------------------------------------------------------------

    def get_account(self, user: str) -> dict | None:
        return self.accounts.find_one({"_id": user})

    def add_account(self, account: dict) -> bool:
        """Store a new account; False if the staff code has one already."""
        try:
            self.accounts.insert_one(account)
        except DuplicateKeyError:
            return False
        return True

    def replace_account(self, account: dict) -> None:
        """Store `account` over the one with its `_id` (the CLI's `--replace`)."""
        self.accounts.replace_one({"_id": account["_id"]}, account, upsert=True)

    def list_accounts(self) -> list[dict]:
        """Every account by staff code, without its secrets: no hash, no TOTP secret, only
        `totp` (whether one is set). Scans: the administrators' page, a few hundred accounts."""
        return [dict({key: value for key, value in account.items()
                      if key not in ("password_hash", "totp_secret")},
                     totp=bool(account.get("totp_secret")))
                for account in self.accounts.find({}).sort("_id", 1)]

    def set_disabled(self, user: str, disabled: bool) -> bool:
        """Disable or enable `user`'s account; False if there is no such account."""
        return self.accounts.update_one({"_id": user},
                                        {"$set": {"disabled": disabled}}).matched_count == 1

    def set_password_hash(self, user: str, password_hash: str) -> None:
        """A rehash with today's parameters; the last writer wins, both hashes are valid."""
        self.accounts.update_one({"_id": user}, {"$set": {"password_hash": password_hash}})

    # -- sessions -----------------------------------------------------------------------------

    def add_session(self, session: dict) -> None:
        self.sessions.insert_one(session)

    def get_session(self, digest: str) -> dict | None:
        return self.sessions.find_one({"_id": digest})

    def touch_session(self, digest: str, now: datetime, expires_at: datetime) -> None:
        """Record a use. Not guarded: two touches race only to write nearly the same time."""
        self.sessions.update_one({"_id": digest},
                                 {"$set": {"last_seen": now, "expires_at": expires_at}})

    def delete_session(self, digest: str) -> bool:
        return self.sessions.delete_one({"_id": digest}).deleted_count == 1

    def end_sessions_of(self, user: str) -> int:
        """Delete every session and pending login of `user` (a password reset). Scans: it
        runs once per reset, and FerretDB indexes only `_id`."""
        return (self.sessions.delete_many({"user": user}).deleted_count
                + self.pending.delete_many({"user": user}).deleted_count)

    # -- password resets -----------------------------------------------------------------------

    def add_reset(self, reset: dict, events: list[dict]) -> None:
        """Store a new reset and its event in one write (the relay publishes the event)."""
        insert_with_events(self.resets, reset, events)

    def get_reset(self, reset_id: str) -> dict | None:
        return self.resets.find_one({"_id": reset_id})

    def use_reset(self, reset_id: str, now: datetime) -> dict | None:
        """Mark the reset used if it is unused and unexpired: the reset for exactly one
        caller, None for every other."""
        def change(current: dict | None) -> dict | None:
            if current is None or current.get("used_at") or current["expires_at"] <= now:
                return None
            return dict(current, used_at=now)

        return modify(self.resets, reset_id, change)

    def drop_resets_of(self, user: str, keep: str) -> int:
        """Delete `user`'s other resets (their links open nothing once the password changed).
        Scans the few live resets."""
        return self.resets.delete_many({"user": user, "_id": {"$ne": keep}}).deleted_count

    # -- pending second-factor logins ----------------------------------------------------------

    def add_pending(self, pending: dict) -> None:
        self.pending.insert_one(pending)

    def get_pending(self, digest: str) -> dict | None:
        return self.pending.find_one({"_id": digest})

    def take_pending(self, digest: str) -> bool:
        """Consume a pending login: True for exactly one caller."""
        return self.pending.delete_one({"_id": digest}).deleted_count == 1

    # -- login failures -----------------------------------------------------------------------

    def is_marked(self, marker_id: str) -> bool:
        """Whether the lock marker `marker_id` exists (one read by `_id`)."""
        return self.failures.find_one({"_id": marker_id}, {"_id": 1}) is not None

    def claim_slot(self, prefix: str, expires_at: datetime) -> int:
        """Win the first free slot `<prefix>|<n>`: n is this attempt's number in its window."""
        for n in range(1, MAX_SLOTS + 1):
            try:
                self.failures.insert_one({"_id": f"{prefix}|{n}", "expires_at": expires_at})
            except DuplicateKeyError:
                continue
            return n
        return MAX_SLOTS + 1

    def release_slot(self, slot: str) -> None:
        self.failures.delete_one({"_id": slot})

    def mark(self, marker_id: str, expires_at: datetime) -> None:
        """Store the lock marker (once; a second writer finds it there)."""
        with contextlib.suppress(DuplicateKeyError):
            self.failures.insert_one({"_id": marker_id, "expires_at": expires_at})

    def claim_once(self, key: str, expires_at: datetime) -> bool:
        """True for the first caller of `key` only (a used TOTP step, kept until it expires)."""
        try:
            self.failures.insert_one({"_id": key, "expires_at": expires_at})
        except DuplicateKeyError:
            return False
        return True

    def count_slots(self, prefix: str) -> int:
        """How many slots of `<prefix>|n` are held (tests and operators; scans the window)."""
        return sum(1 for doc in self.failures.find({}, {"_id": 1})
                   if doc["_id"].startswith(prefix + "|") and not doc["_id"].endswith("|limit"))

    # -- housekeeping -------------------------------------------------------------------------

    def purge(self, now: datetime) -> int:
        """Delete expired sessions, pending logins, failure slots and password resets (no TTL
        on FerretDB)."""
        return sum(self.db[name].delete_many({"expires_at": {"$lt": now}}).deleted_count
                   for name in EXPIRING)
