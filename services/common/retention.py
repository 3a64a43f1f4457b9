"""KVKK retention: which applications' personal data is due for anonymisation, found by `_id`
reads only, and the job each service holding personal data runs over them (design §9).

An application is *due* once it was concluded (`case_closed`) more than `KVKK_RETENTION_DAYS`
ago and not reopened since. Intake, notify and reporting each keep, in their own database
(each service reads only its own):

- `retention_apps`, `_id` = application id: the latest conclusion (`concluded_at`, None once
  reopened), the time of the latest event applied (`at`) and, once done, `anonymised_at` —
  the mark that makes the job idempotent. Folded from `case_closed` / `case_reopened` with
  `fold_once` (a redelivered event changes nothing).
- `retention_days`, slots `<YYYY-MM-DD>#<n>` (UTC day of the conclusion) → the application:
  insert-once, read by `_id` until the first missing slot, like sla's wake-up buckets. The job
  reads only the days that have passed the period: on FerretDB (which scans any filter but
  `{_id}`) its cost grows with what is due, not with what is stored.
- `retention_cursor`, `_id` `cursor`: the first day ever filed (`first`), the last day the
  job started reading (`closed`) and the last it finished (`done`).

Nothing missed: a filer inserts its slot, then reads the cursor; the job marks the days it is
about to read `closed` (all of them in one write), then reads their slots. One of the two sees
the other, and a filer that finds its day closed files the application again on the first day
not closed (only an event replayed long after the fact can meet a closed day: the job closes
days two years old). An empty day costs the job one read (its slot 0).

Safe with two replicas: a day with conclusions is taken by an insert-once lease (`lease:<day>`
in the cursor collection; one older than `LEASE` is taken over through the guarded write, its
holder having died), and every document is anonymised through `outbox.modify`, whose change
function finds the document already anonymised and writes nothing — so even two processes on
one day (a lease taken over from a slow holder) anonymise each document once. The mark on
`retention_apps` is written last: a crash in between leaves an application the next run
finishes.
"""
from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.events import new_event_id, utcnow
from services.common.mongo import VERSION, find_by_ids, first_false, insert_new, slots
from services.common.outbox import HANDLED, fold_once, modify

log = logging.getLogger(__name__)

APPS = "retention_apps"
DAYS = "retention_days"
CURSOR = "retention_cursor"
CURSOR_ID = "cursor"
FOLLOWED = ("case_closed", "case_reopened")  # where a period starts, and where it stops
DEFAULT_DAYS = 730
# A day's lease: longer than anonymising a day's applications takes, short enough that a
# replica that died holding it delays the work by minutes, not days.
LEASE = timedelta(minutes=10)
# The timer's interval: the period is counted in days, hourly is plenty.
RUN_SECONDS = 3600
ANONYMISED = "[anonimleştirildi / anonymised]"
Clock = Callable[[], datetime]


def retention_period(config: dict) -> timedelta:
    """`KVKK_RETENTION_DAYS` (default 730) as a period; at least one day."""
    days = int(config.get("KVKK_RETENTION_DAYS") or DEFAULT_DAYS)
    return timedelta(days=max(1, days))


def _day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def _folder(event: dict) -> Callable[[dict | None], tuple[dict | None, list[dict]]]:
    """How `event` (`case_closed` / `case_reopened`) changes an application's record."""
    at: datetime = event["occurred_at"]
    closed = event["type"] == "case_closed"

    def fold(current: dict | None) -> tuple[dict | None, list[dict]]:
        doc = dict(current or {})
        if doc.get("at") is not None and at < doc["at"]:
            return None, []  # an older event overtaken by a newer one
        doc.update(at=at, concluded_at=at if closed else None)
        return doc, []

    return fold


class Retention:
    """A service's record of conclusions (`retention_apps`), its day buckets and cursor."""

    def __init__(self, db: Database, lease: timedelta = LEASE):
        self.apps = db[APPS]
        self.days = db[DAYS]
        self.cursor = db[CURSOR]
        self.lease = lease

    # -- what the event handlers record -------------------------------------------------------

    def record(self, event: dict) -> None:
        """Fold `case_closed` (concluded at its time) or `case_reopened` (not concluded any
        more) into the application's record; a conclusion is filed under its day first, so a
        crash between the two leaves a spare slot (skipped), never a conclusion unfiled."""
        self.record_many([event])

    def record_many(self, events: list[dict], spawn_map: Callable | None = None) -> None:
        """`record` for a batch (the events it does not follow are skipped): the conclusions of
        a day filed with one insert, the records folded overlapped through `spawn_map`."""
        followed = [event for event in events if event["type"] in FOLLOWED]
        by_day: dict[date, list[tuple[str, datetime]]] = defaultdict(list)
        for event in followed:
            if event["type"] == "case_closed":
                by_day[_day(event["occurred_at"])].append(
                    (event["application_id"], event["occurred_at"]))
        for day, entries in sorted(by_day.items()):
            self.file_many(day, entries)
        rest = self._insert_first(followed)
        for _ in (spawn_map or map)(
                lambda event: fold_once(self.apps, event["application_id"], event["event_id"],
                                        _folder(event)), rest):
            pass

    def _insert_first(self, events: list[dict]) -> list[dict]:
        """Insert the records of the applications that have none yet, in one command (what
        `fold_once` would write for them, a read and a write each otherwise); returns the
        events left to fold one by one (on a record stored, or created meanwhile)."""
        ids = list(dict.fromkeys(event["application_id"] for event in events))
        stored = set(find_by_ids(self.apps, ids, {"_id": 1}))
        first: dict[str, dict] = {}
        rest = []
        for event in events:
            app = event["application_id"]
            if app in stored or app in first:
                rest.append(event)
            else:
                first[app] = event
        docs = [{**_folder(event)(None)[0], "_id": app, HANDLED: [event["event_id"]],
                 VERSION: 1} for app, event in first.items()]
        rest.extend(first[docs[i]["_id"]] for i in sorted(insert_new(self.apps, docs)))
        return rest

    def file(self, application_id: str, at: datetime) -> None:
        """List the application under the UTC day it was concluded (see the module's "Nothing
        missed")."""
        self.file_many(_day(at), [(application_id, at)])

    def file_many(self, day: date, entries: list[tuple[str, datetime]]) -> None:
        """List `(application, concluded at)` entries under `day`, and again under the next day
        open while the job has closed the one they were listed under meanwhile."""
        self._note_first(day)
        while True:
            self._insert_slots(day, entries)
            cursor = self.cursor.find_one({"_id": CURSOR_ID}) or {}
            closed = cursor.get("closed")
            if closed is None or date.fromisoformat(closed) < day:
                return
            day = date.fromisoformat(closed) + timedelta(days=1)

    def _note_first(self, day: date) -> None:
        def earlier(current: dict | None) -> dict | None:
            first = (current or {}).get("first")
            if first is not None and first <= day.isoformat():
                return None
            return dict(current or {}, first=day.isoformat())

        modify(self.cursor, CURSOR_ID, earlier)

    def _insert_slots(self, day: date, entries: list[tuple[str, datetime]]) -> None:
        """Take the next free slots of `day`, one insert for them all; the entries whose slot
        another conclusion of that day took a moment ago go on to the slots after."""
        while entries:
            n = self._free_slot(day)
            docs = [{"_id": f"{day.isoformat()}#{n + i}", "application_id": application_id,
                     "concluded_at": at} for i, (application_id, at) in enumerate(entries)]
            entries = [entries[i] for i in sorted(insert_new(self.days, docs))]

    def _free_slot(self, day: date) -> int:
        """The first free slot of `day`: doubling then halving (slots are taken 0…count-1)."""
        return first_false(lambda n: self.days.find_one(
            {"_id": f"{day.isoformat()}#{n}"}, {"_id": 1}) is not None)

    def filed(self, day: date) -> list[str]:
        """The applications filed under `day` (each once), read slot by slot by `_id`."""
        return list(dict.fromkeys(slot["application_id"]
                                  for slot in slots(self.days, day.isoformat())))

    # -- what the job reads and marks ------------------------------------------------------------

    def state(self, application_id: str) -> dict | None:
        return self.apps.find_one({"_id": application_id})

    def is_due(self, application_id: str, cutoff: datetime) -> bool:
        """Concluded at or before `cutoff`, not reopened since, not anonymised yet."""
        state = self.state(application_id) or {}
        concluded = state.get("concluded_at")
        return (not state.get("anonymised_at") and concluded is not None
                and concluded <= cutoff)

    def is_past(self, application_id: str, cutoff: datetime) -> bool:
        """Anonymised already, or due: nothing of it needs keeping any more."""
        state = self.state(application_id) or {}
        return bool(state.get("anonymised_at")) or self.is_due(application_id, cutoff)

    def mark(self, application_id: str, now: datetime) -> bool:
        """Mark the application anonymised; True for the one writer that marked it."""
        def done(current: dict | None) -> dict | None:
            if current is None or current.get("anonymised_at"):
                return None
            return dict(current, anonymised_at=now)

        return modify(self.apps, application_id, done) is not None

    def days_to_read(self, last: date) -> list[date]:
        """The days from the first not done up to `last` (nothing filed yet: none)."""
        cursor = self.cursor.find_one({"_id": CURSOR_ID}) or {}
        if not cursor.get("first"):
            return []
        start = date.fromisoformat(cursor["first"])
        if cursor.get("done"):
            start = max(start, date.fromisoformat(cursor["done"]) + timedelta(days=1))
        return [start + timedelta(days=i) for i in range((last - start).days + 1)]

    def _advance(self, name: str, day: date) -> None:
        def later(current: dict | None) -> dict | None:
            held = (current or {}).get(name)
            if held is not None and held >= day.isoformat():
                return None
            return dict(current or {}, **{name: day.isoformat()})

        modify(self.cursor, CURSOR_ID, later)

    def close(self, day: date) -> None:
        self._advance("closed", day)

    def done(self, day: date) -> None:
        self._advance("done", day)

    def take_lease(self, day: date, token: str, now: datetime) -> bool:
        """Take `day` for this run: an insert-once lease, or one whose holder died."""
        lease_id = f"lease:{day.isoformat()}"
        try:
            self.cursor.insert_one({"_id": lease_id, "by": token, "at": now})
            return True
        except DuplicateKeyError:
            pass

        def take(current: dict | None) -> dict | None:
            if current is not None and (current.get("by") == token
                                        or now - current["at"] < self.lease):
                return None
            return dict(current or {}, by=token, at=now)

        held = modify(self.cursor, lease_id, take)
        return held is not None or (self.cursor.find_one({"_id": lease_id}) or {}).get(
            "by") == token


class Anonymiser(Protocol):
    """What a service anonymises of one application: True when this call changed anything."""

    def __call__(self, application_id: str, cutoff: datetime) -> bool: ...


@dataclass
class RunResult:
    """What one run did: the days read, the applications it anonymised (marked by this run),
    and whether it stopped at a day another process holds."""

    days: list[str] = field(default_factory=list)
    anonymised: list[str] = field(default_factory=list)
    stopped_at: str | None = None

    def to_dict(self) -> dict:
        return {"days": len(self.days), "anonymised": len(self.anonymised),
                "stopped_at": self.stopped_at}


class RetentionJob:
    """Anonymise what is due: walk the days past the period, oldest first, each under a lease."""

    def __init__(self, retention: Retention, anonymise: Anonymiser, period: timedelta,
                 clock: Clock = utcnow, service: str = ""):
        self.retention = retention
        self.anonymise = anonymise
        self.period = period
        self.clock = clock
        self.service = service

    def run(self) -> RunResult:
        """One run; safe to start in any number of processes at once, and again and again."""
        now = self.clock()
        cutoff = now - self.period
        # a day whose every conclusion is at or before the cutoff: the days before its own
        last = _day(cutoff) - timedelta(days=1)
        result = RunResult()
        days = self.retention.days_to_read(last)
        if not days:
            return result
        # closed first, in one write for the whole stretch: a conclusion filed under one of
        # these days from now on is filed again after it (see "Nothing missed"), and an empty
        # day then costs one read
        self.retention.close(last)
        token = new_event_id()
        finished: date | None = None
        for day in days:
            filed = self.retention.filed(day)
            if filed:
                if not self.retention.take_lease(day, token, now):
                    result.stopped_at = day.isoformat()  # another replica is on it
                    break
                for application_id in filed:
                    if not self.retention.is_due(application_id, cutoff):
                        continue  # reopened since, concluded again later, or done
                    self.anonymise(application_id, cutoff)
                    if self.retention.mark(application_id, self.clock()):
                        result.anonymised.append(application_id)
            finished = day
            result.days.append(day.isoformat())
        if finished is not None:
            self.retention.done(finished)
        if result.anonymised:
            # a count only: an operator needs to know what was done, the log needs no ids
            log.info("retention run", extra={"service": self.service, **result.to_dict()})
        return result


def main(service: str, build: Callable[[dict], Any], argv: list[str] | None = None) -> int:
    """`python -m services.<service>.retention --once`: one run for an operator; prints what
    it did as JSON. `build(config)` is the service's composition root (its `retention_job`)."""
    from services.common.config import load_config

    parser = argparse.ArgumentParser(prog=f"python -m services.{service}.retention",
                                     description="KVKK: anonymise the personal data of "
                                                 "applications concluded before the period.")
    parser.add_argument("--once", action="store_true", required=True,
                        help="run the job once and exit")
    parser.parse_args(argv)
    parts = build(load_config())
    try:
        result = parts.retention_job.run()
    finally:
        parts.close()
    print(json.dumps(dict(result.to_dict(), service=service)))
    return 0
