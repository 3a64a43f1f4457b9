"""SLA's repository: case clocks, policy rules, calendars and the wake-up buckets.

Every read the sweep makes is by `_id`, because FerretDB answers only `_id` equality from an
index (a range or a secondary index is a scan: 2 s at 100,000 documents, measured). So a clock
is woken through *buckets*: `wakeups/<minute>|<n>` lists the cases that must be looked at
during that UTC minute. A minute's buckets form `SPREAD` (8) chains (n = slot, slot + SPREAD, …),
so concurrent writers of one minute rarely meet on one document; a full bucket (`BUCKET_SIZE`)
chains to the next. `wake_hours/<hour>` lists the minutes of the hour that have buckets, so an
hour with nothing due costs the sweep one read. Its cost grows with what is due, not with what
is open.

`sweep/cursor` says up to which minute buckets are `closed` (a writer that appends to a closed
minute handles the case itself) and up to which they are `done`. A writer lists the minute in
its hour, appends to the bucket, then reads the cursor; the sweeper closes, then reads the hour
and the buckets: one of the two always sees the other. A bucket is claimed with an insert-once
claim (`wake_claims`), so two sweepers share a minute's work; a claim older than the lease is
taken over, which is safe because firing is idempotent (domain: `fired`).

A clock is stored *packed*: the fields staff lists filter and sort on stay fields, the rest (policy,
calendar, deadlines, escalations, outcomes: most of its values) is one JSON text, and each event
in its outbox is JSON text too (`outbox.entries` reads them). FerretDB's cost
per read and write grows with a document's fields and values, not its bytes: a fired clock is
replaced 900 times a second as fields, 2,208 packed (`benchmarks.store_shapes`).
"""
from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Index, ensure_indexes, find_by_ids, pack, unpack
from services.common.outbox import (
    BOOKKEEPING,
    OUTBOX,
    Fold,
    fold_once,
    modify,
    packed_entries,
    replace_many_if_unchanged,
)

INDEXES = {
    # The staff lists (overdue, at risk, the mayor's) filter clocks; the sweep never does.
    "clocks": [Index([("clock", 1), ("unit", 1)]), Index([("level", 1)]),
               Index([("institutions", 1)])],
}
_HIDDEN = dict.fromkeys(BOOKKEEPING, 0)
MINUTE_FORMAT = "%Y%m%d%H%M"
BUCKET_SIZE = 100
SPREAD = 8
CLAIM_LEASE = timedelta(seconds=60)
CURSOR = "cursor"
# What stays a field of a stored clock: what staff lists filter and sort on, and the wake-up.
FIELDS = frozenset({"clock", "unit", "institution", "institutions", "level", "next_due_at",
                    "read_due_at", "resolve_due_at", "started_at", "wake", "_id", *BOOKKEEPING})
PACKED = "packed"


def pack_clock(doc: dict | None) -> dict | None:
    """A clock as stored: its list fields, and the rest as one JSON text."""
    if doc is None:
        return None
    stored = {k: v for k, v in doc.items() if k in FIELDS}
    if stored.get(OUTBOX):
        stored[OUTBOX] = packed_entries(stored[OUTBOX])
    rest = {k: v for k, v in doc.items() if k not in FIELDS and k != PACKED}
    if rest:
        stored[PACKED] = pack(rest)
    return stored


def unpack_clock(doc: dict | None) -> dict | None:
    """A stored clock as domain code reads it (a clock stored unpacked reads as it is)."""
    if doc is None or PACKED not in doc:
        return doc
    clock = {k: v for k, v in doc.items() if k != PACKED}
    clock.update(unpack(doc[PACKED]))
    return clock


def minute_key(moment: datetime) -> str:
    """The UTC minute a moment falls in, as a bucket key."""
    return moment.astimezone(UTC).strftime(MINUTE_FORMAT)


def minute_start(key: str) -> datetime:
    return datetime.strptime(key, MINUTE_FORMAT).replace(tzinfo=UTC)


def next_minute(key: str) -> str:
    return minute_key(minute_start(key) + timedelta(minutes=1))


def hours_between(first_minute: str, last_minute: str) -> list[str]:
    """The hour keys (`YYYYMMDDHH`) from `first_minute`'s hour to `last_minute`'s."""
    hour = minute_start(first_minute[:10] + "00")
    last = minute_start(last_minute[:10] + "00")
    hours = []
    while hour <= last:
        hours.append(minute_key(hour)[:10])
        hour += timedelta(hours=1)
    return hours


class Settings:
    """An administrator's small collection of settings documents, keyed by `_id`."""

    def __init__(self, collection: Collection):
        self.collection = collection

    def all(self) -> list[dict]:
        return list(self.collection.find({}, _HIDDEN).sort("_id", 1))

    def get(self, key: str) -> dict | None:
        return self.collection.find_one({"_id": key}, _HIDDEN)

    def save(self, doc: dict) -> None:
        self.collection.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    def delete(self, key: str) -> bool:
        return self.collection.delete_one({"_id": key}).deleted_count == 1


class SlaStore:
    """Everything sla persists, behind a narrow interface."""

    def __init__(self, db: Database, claim_lease: timedelta = CLAIM_LEASE):
        self.db = db
        self.claim_lease = claim_lease
        self.clocks = db["clocks"]
        self.rules = Settings(db["policy_rules"])  # policy rules by rule id
        self.calendars = Settings(db["calendars"])  # working hours by institution or unit
        self.wakeups = db["wakeups"]
        self.claims = db["wake_claims"]
        self.hours = db["wake_hours"]
        self.sweep_state = db["sweep"]
        # where this process last found room, per (minute, chain)
        self._next_slot: dict[tuple[str, int], int] = {}
        self._listed: set[str] = set()  # minutes this process has listed in their hour

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    def ensure_cursor(self, now: datetime) -> None:
        """Start sweeping from the minute before `now` on a new store (no-op on an old one)."""
        before = minute_key(now - timedelta(minutes=1))
        with contextlib.suppress(DuplicateKeyError):
            self.sweep_state.insert_one({"_id": CURSOR, "closed": before, "done": before})

    # -- clocks ---------------------------------------------------------------------------------

    def fold_clock(self, application_id: str, event_id: str, fold: Fold) -> bool:
        """Fold one event into a case's clock exactly once (False if already applied)."""
        def packed(current: dict | None) -> tuple[dict | None, list[dict]]:
            new, events = fold(unpack_clock(current))
            return pack_clock(new), events

        return fold_once(self.clocks, application_id, event_id, packed)

    def change_clock(self, application_id: str, change: Callable[[dict], dict | None]
                     ) -> dict | None:
        """Replace a clock by `change(clock)` under its version guard (None: nothing written)."""
        return unpack_clock(modify(self.clocks, application_id, lambda current: (
            None if current is None else pack_clock(change(unpack_clock(current))))))

    def read_clocks(self, application_ids: list[str]) -> list[dict]:
        """A bucket's clocks with their bookkeeping, as `replace_clocks` needs them, in one read
        (absent ones left out)."""
        return [unpack_clock(doc) for doc in find_by_ids(self.clocks, application_ids).values()]

    def replace_clocks(self, pairs: list[tuple[dict, dict]], spawn_map: Callable | None = None
                       ) -> list[bool]:
        """Store each `new` unless its clock changed since `current` was read (False)."""
        return replace_many_if_unchanged(
            self.clocks, [(current, pack_clock(new)) for current, new in pairs], spawn_map)

    def get_clock(self, application_id: str) -> dict | None:
        """A case's clock, without bookkeeping fields."""
        return unpack_clock(self.clocks.find_one({"_id": application_id}, _HIDDEN))

    def find_clocks(self, query: dict, limit: int, sort: str = "next_due_at") -> list[dict]:
        """Clocks matching a staff list's filter (a scan on FerretDB: staff lists only)."""
        cursor = self.clocks.find(query, _HIDDEN).sort(sort, 1).limit(limit)
        return [unpack_clock(doc) for doc in cursor]

    # -- wake-ups -------------------------------------------------------------------------------

    def schedule(self, application_ids: list[str], minute: str) -> bool:
        """Put the cases in `minute`'s buckets; False when that minute is already closed to
        the sweep (the caller must then look at the cases itself)."""
        self._list_minute(minute)
        # The chain by the case, so that concurrent writers of one minute spread over the
        # chains; within it, where this process last found room.
        chain = (minute, zlib.crc32(application_ids[0].encode()) % SPREAD)
        slot = self._next_slot.get(chain, chain[1])
        left = list(application_ids)
        while left:
            left = self._append(f"{minute}|{slot}", left)
            if left:
                slot += SPREAD
        if len(self._next_slot) > 10_000:  # a hint only: forget old minutes wholesale
            self._next_slot.clear()
        self._next_slot[chain] = slot
        # Read after the write: a sweeper closes a minute before it reads the buckets, so
        # either it saw these entries, or this read sees the minute closed.
        return minute > self.cursor()["closed"]

    def _list_minute(self, minute: str) -> None:
        if minute in self._listed:
            return
        hour = minute[:10]
        found = self.hours.find_one({"_id": hour})
        if found is None or minute not in found.get("minutes", []):
            modify(self.hours, hour, lambda current: (
                None if current and minute in current.get("minutes", [])
                else {"minutes": sorted({*(current or {}).get("minutes", []), minute})}))
        if len(self._listed) > 10_000:
            self._listed.clear()
        self._listed.add(minute)

    def minutes_with_buckets(self, hour: str) -> list[str]:
        """The minutes of `hour` (`YYYYMMDDHH`) that have wake-ups."""
        found = self.hours.find_one({"_id": hour})
        return list(found.get("minutes", [])) if found else []

    def forget_hour(self, hour: str) -> None:
        self.hours.delete_one({"_id": hour})
        self._listed = {m for m in self._listed if not m.startswith(hour)}

    def _append(self, bucket_id: str, application_ids: list[str]) -> list[str]:
        """Add what fits to the bucket; returns what did not."""
        left: list[str] = []

        def change(current: dict | None) -> dict | None:
            apps = list((current or {}).get("apps", []))
            new = [a for a in dict.fromkeys(application_ids) if a not in apps]
            room = max(BUCKET_SIZE - len(apps), 0)
            left[:] = new[room:]
            if not new[:room]:
                return None
            return {"apps": apps + new[:room]}

        modify(self.wakeups, bucket_id, change)
        return left

    def cursor(self) -> dict:
        found = self.sweep_state.find_one({"_id": CURSOR})
        if found is None:
            raise LookupError("the sweep cursor is missing: call ensure_cursor at start")
        return found

    def advance_cursor(self, field: str, minute: str) -> None:
        """Move `closed` or `done` forward to `minute` (never back)."""
        modify(self.sweep_state, CURSOR, lambda current: (
            None if current is None or current[field] >= minute
            else dict(current, **{field: minute})))

    def reset_cursor(self, minute: str) -> None:
        """Put the cursor at `minute`, back or forth (tests, benchmarks; an operator who must
        sweep minutes again: firing twice is impossible, `fired` says what has been)."""
        modify(self.sweep_state, CURSOR, lambda current: dict(
            current or {}, closed=minute, done=minute))

    def buckets(self, minute: str) -> Iterator[dict]:
        """The minute's buckets, chain by chain, each read by `_id`."""
        for base in range(SPREAD):
            slot = base
            while True:
                bucket = self.wakeups.find_one({"_id": f"{minute}|{slot}"})
                if bucket is None:
                    break
                yield bucket
                slot += SPREAD

    def claim_bucket(self, bucket_id: str, by: str, now: datetime) -> str:
        """`mine`, `done`, or `busy` (another sweeper holds a fresh claim)."""
        try:
            self.claims.insert_one({"_id": bucket_id, "by": by, "at": now, "done": False})
            return "mine"
        except DuplicateKeyError:
            pass
        held = self.claims.find_one({"_id": bucket_id})
        if held is None:
            return self.claim_bucket(bucket_id, by, now)
        if held.get("done"):
            return "done"
        if held["by"] != by and held["at"] > now - self.claim_lease:
            return "busy"
        # Its sweeper died (or it is ours, from before a restart): take it over.
        self.claims.replace_one({"_id": bucket_id}, {"by": by, "at": now, "done": False})
        return "mine"

    def finish_bucket(self, bucket_id: str) -> None:
        self.claims.update_one({"_id": bucket_id}, {"$set": {"done": True}})

    def forget_minute(self, minute: str, bucket_ids: list[str]) -> None:
        """Drop a done minute's buckets and claims (by `_id`, one by one: no scan)."""
        for bucket_id in bucket_ids:
            self.wakeups.delete_one({"_id": bucket_id})
            self.claims.delete_one({"_id": bucket_id})
        for chain in range(SPREAD):
            self._next_slot.pop((minute, chain), None)
