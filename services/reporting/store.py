"""Reporting's repository: facts (one per event) and application summaries, and the counts.

Writes are keyed by `_id` (event id, application id), so idempotency needs no unique secondary
index. The counts are `$match` + `$group` + `$sum` pipelines, which both MongoDB and FerretDB
answer; MongoDB uses the `received_at` index, FerretDB scans (fine for a report, which is not a
hot path).
"""
from __future__ import annotations

from datetime import datetime

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Index, ensure_indexes
from services.common.outbox import (
    BOOKKEEPING,
    Fold,
    fold_once,
    insert_once,
    insert_with_events,
)

INDEXES: dict[str, list[Index]] = {
    "facts": [
        Index([("type", 1), ("occurred_at", 1)]),
        Index([("application_id", 1)]),
    ],
    "applications": [
        Index([("received_at", 1)]),
        Index([("concluded_at", 1)], {"sparse": True}),
    ],
}

# Report dimension -> summary field it groups by.
DIMENSIONS = {
    "by_category": "category",
    "by_channel": "channel",
    "by_district": "district",
    "by_status": "status",
    "by_neighbourhood": "neighbourhood",
    "by_level": "level",  # the highest escalation level reached (0: never escalated)
    "by_satisfaction": "satisfaction",  # the citizen's 1-5 rating (None: not rated)
    "by_read_sla": "sla.read.outcome",  # met / breached (None: not decided yet)
    "by_resolve_sla": "sla.resolve.outcome",
    "by_reopen_count": "reopen_count",  # how often the citizen had it reopened (the reopen rate)
    "by_caller_type": "caller_type",  # citizen, muhtar (seed 003), …
    "by_tier": "tier",  # where the routing sent it; `outside`: referred to another institution
}


class ReportingStore:
    """Everything reporting persists, behind a narrow interface."""

    def __init__(self, db: Database):
        self.db = db
        self.facts = db["facts"]
        self.applications = db["applications"]
        self.callback_notes = db["callback_notes"]
        self.files = db["report_files"]
        self.runs = db["report_runs"]
        self.audit_log = db["audit_log"]

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db, INDEXES)

    def record_fact(self, fact: dict) -> bool:
        """Store one fact (its `_id` is the event id); False if it was already recorded."""
        return insert_once(self.facts, fact)

    def apply(self, application_id: str, event_id: str, fold: Fold) -> bool:
        """Fold one event into an application's summary once (False if already applied)."""
        return fold_once(self.applications, application_id, event_id, fold)

    def get_summary(self, application_id: str) -> dict | None:
        """One application's summary, without bookkeeping fields."""
        return self.applications.find_one({"_id": application_id},
                                          dict.fromkeys(BOOKKEEPING, 0))

    def received_times(self, start: datetime, end: datetime, match: dict) -> list[datetime]:
        """When each application matching `match` was received in `[start, end)`."""
        found = self.applications.find({**match, "received_at": {"$gte": start, "$lt": end}},
                                        {"received_at": 1, "_id": 0})
        return [row["received_at"] for row in found]

    def concluded_times(self, start: datetime, end: datetime,
                        match: dict) -> list[tuple[datetime, float | None]]:
        """`(first concluded, resolution hours)` of each application matching `match` first
        concluded in `[start, end)`."""
        found = self.applications.find({**match, "concluded_at": {"$gte": start, "$lt": end}},
                                       {"concluded_at": 1, "resolution_hours": 1, "_id": 0})
        return [(row["concluded_at"], row.get("resolution_hours")) for row in found]

    def concluded_in(self, start: datetime, end: datetime, match: dict) -> list[dict]:
        """Summaries matching `match` first concluded in `[start, end)` (the call-back list's
        candidates): public codes and dimensions only."""
        return list(self.applications.find(
            {**match, "concluded_at": {"$gte": start, "$lt": end}},
            {"tracking_code": 1, "category": 1, "unit": 1, "unit_name": 1, "district": 1,
             "neighbourhood": 1, "concluded_at": 1, "satisfaction": 1}))

    def callback_note(self, week: str, application_id: str) -> dict | None:
        return self.callback_notes.find_one({"_id": f"{week}|{application_id}"})

    def save_callback_note(self, week: str, application_id: str, note: dict) -> None:
        self.callback_notes.replace_one({"_id": f"{week}|{application_id}"},
                                        {"_id": f"{week}|{application_id}", "week": week,
                                         "application_id": application_id, **note},
                                        upsert=True)

    def units_in(self, start: datetime, end: datetime) -> list[tuple[str, str | None]]:
        """`(unit, institution)` of the applications received in `[start, end)`."""
        rows = self.applications.aggregate([
            {"$match": {"received_at": {"$gte": start, "$lt": end}, "unit": {"$ne": None}}},
            {"$group": {"_id": {"unit": "$unit", "institution": "$institution"}}},
        ])
        return sorted({(row["_id"]["unit"], row["_id"].get("institution")) for row in rows})

    def has_run(self, run_id: str) -> bool:
        return self.runs.find_one({"_id": run_id}) is not None

    def mark_run(self, run_id: str, at: datetime) -> None:
        insert_once(self.runs, {"_id": run_id, "at": at})

    def save_file(self, doc: dict, events: list[dict]) -> bool:
        """Store a generated report once, with the event saying it is ready (False: another
        process stored it first)."""
        try:
            insert_with_events(self.files, doc, events)
        except DuplicateKeyError:
            return False
        return True

    def list_files(self, match: dict, limit: int = 200) -> list[dict]:
        hidden = {"content": 0, **dict.fromkeys(BOOKKEEPING, 0)}
        return list(self.files.find(match, hidden).sort("created_at", -1).limit(limit))

    def get_file(self, file_id: str, match: dict) -> dict | None:
        return self.files.find_one({**match, "_id": file_id})

    def audit(self, entry: dict) -> None:
        """Who read the call-back list (with the citizens' contacts), when, which week."""
        self.audit_log.insert_one(entry)

    def received_counts(self, start: datetime, end: datetime, match: dict | None = None) -> dict:
        """Applications received in `[start, end)` matching `match` (the caller's scope and
        filters): the total and the counts per dimension.

        Returns `{"total": n, "by_category": [{key, count}], …, "by_unit": [{key, name, count}]}`
        (unordered; the caller ranks them).
        """
        period = {**(match or {}), "received_at": {"$gte": start, "$lt": end}}
        result: dict = {}
        for name, field in DIMENSIONS.items():
            rows = self.applications.aggregate([
                {"$match": period},
                {"$group": {"_id": f"${field}", "count": {"$sum": 1}}},
            ])
            result[name] = [{"key": row["_id"], "count": row["count"]} for row in rows]
        result["total"] = sum(row["count"] for row in result["by_status"])
        # routed only: a unit acts on it. Grouped by unit *and* name (FerretDB 1.24 has no
        # `$first`); a unit renamed within the period counts once, under one of its names.
        rows = self.applications.aggregate([
            {"$match": period if "unit" in period else dict(period, unit={"$ne": None})},
            {"$group": {"_id": {"unit": "$unit", "name": "$unit_name"}, "count": {"$sum": 1}}},
        ])
        units: dict[str, dict] = {}
        for row in rows:
            unit = units.setdefault(row["_id"]["unit"], {"key": row["_id"]["unit"], "count": 0})
            unit["count"] += row["count"]
            unit["name"] = unit.get("name") or row["_id"].get("name")
        result["by_unit"] = list(units.values())
        return result
