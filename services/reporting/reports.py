"""Reporting's use cases: record what an event tells, and answer the summary report.

Shared by the nameko side (the event handlers) and the Flask side (the staff API) through the
service's composition root, so both read report dates in the one timezone configured for it.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from services.common.codes import display_tracking_code
from services.common.events import make_event, utcnow
from services.reporting import domain, exports
from services.reporting.store import ReportingStore

RANKED = ("by_category", "by_channel", "by_district", "by_neighbourhood", "by_unit",
          "by_status", "by_level", "by_satisfaction", "by_read_sla", "by_resolve_sla",
          "by_reopen_count", "by_caller_type", "by_tier")


class Reports:
    """Facts, application summaries and the counts over them, in reporting's store."""

    def __init__(self, store: ReportingStore, timezone_name: str | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.timezone_name = timezone_name or domain.DEFAULT_TIMEZONE
        # Resolved once, at composition: a wrong name stops the service from starting.
        self.tz = domain.report_timezone(self.timezone_name)
        self.clock = clock

    def record(self, event: dict) -> None:
        """Fold a status-bearing event into its application's summary and keep it as a fact."""
        # Two idempotent writes, each keyed by the event: a redelivery after a crash between
        # them completes the missing one and repeats nothing.
        self.store.apply(event["application_id"], event["event_id"],
                         lambda current: domain.fold_summary(current, event))
        self.store.record_fact(domain.fact_from_event(event))

    def record_fact(self, event: dict) -> bool:
        """Keep an event as a fact only (False if already kept): it counts no application."""
        return self.store.record_fact(domain.fact_from_event(event))

    def summary(self, first: date | None = None, last: date | None = None,
                match: dict | None = None) -> dict:
        """Applications received from `first` to `last` (inclusive, local days; defaults as
        `domain.resolve_period`) that `match` (`domain.report_scope`), their total and their
        counts per dimension, ranked."""
        first, last = domain.resolve_period(first, last,
                                            today=self.clock().astimezone(self.tz).date())
        start, end = domain.period_bounds(first, last, self.tz)
        counts = self.store.received_counts(start, end, match)
        return {
            "first": first,
            "last": last,
            "timezone": self.timezone_name,
            "total": counts["total"],
            **{name: domain.ranked(counts[name]) for name in RANKED},
        }

    def series(self, first: date | None, last: date | None, granularity: str,
               match: dict | None = None) -> dict:
        """Received and concluded per day, ISO week or month (local), with the resolution
        time's median and p90, for what `match` allows."""
        first, last = domain.resolve_period(first, last,
                                            today=self.clock().astimezone(self.tz).date())
        start, end = domain.period_bounds(first, last, self.tz)
        match = match or {}
        rows = domain.series(self.store.received_times(start, end, match),
                             self.store.concluded_times(start, end, match),
                             first, last, granularity, self.tz)
        return {"first": first, "last": last, "timezone": self.timezone_name,
                "granularity": granularity, "items": rows}

    def callbacks(self, week: str | None, match: dict,
                  contact: Callable[[str], dict | None]) -> dict:
        """The week's call-back list: a sample (seeded by the week) of the applications first
        concluded in the week before, across units within `match`, each with the citizen's
        contact asked through `contact` at read time (never stored here) and the note kept."""
        today = self.clock().astimezone(self.tz).date()
        week = week or domain.current_week(today)
        monday, _ = domain.week_bounds(week)
        start, end = domain.period_bounds(monday - timedelta(days=7), monday - timedelta(days=1),
                                          self.tz)
        found = {row["_id"]: row for row in self.store.concluded_in(start, end, match)}
        items = []
        for application_id in domain.callback_sample(list(found), week):
            row = found[application_id]
            note = self.store.callback_note(week, application_id) or {}
            items.append({"application_id": application_id,
                          "tracking_code": display_tracking_code(row["tracking_code"])
                          if row.get("tracking_code") else None,
                          "category": row.get("category"), "unit": row.get("unit"),
                          "unit_name": row.get("unit_name"), "district": row.get("district"),
                          "concluded_at": row.get("concluded_at"),
                          "satisfaction": row.get("satisfaction"),
                          "contact": contact(application_id),
                          "note": note.get("note"), "reached": note.get("reached"),
                          "noted_by": note.get("by"), "noted_at": note.get("at")})
        return {"week": week, "concluded_from": monday - timedelta(days=7),
                "concluded_to": monday - timedelta(days=1), "candidates": len(found),
                "items": items}

    def note_callback(self, week: str, application_id: str, note: str | None, reached: bool,
                      by: str) -> dict:
        """Record how a call went; it goes back to the desk with the list."""
        self.store.save_callback_note(week, application_id, {
            "note": note, "reached": reached, "by": by, "at": self.clock()})
        return {"week": week, "application_id": application_id, "note": note,
                "reached": reached, "noted_by": by}

    def generate_due(self) -> list[str]:
        """Generate the reports whose period has ended and that do not exist yet: last week's
        for each unit (its supervisor's), last month's for each unit (the directorate's) and
        each institution (the mayor's); XLSX, stored once each. Returns the new files' ids."""
        today = self.clock().astimezone(self.tz).date()
        made = []
        for kind, (period, first, last) in (("weekly", domain.previous_week(today)),
                                            ("monthly", domain.previous_month(today))):
            run_id = f"{kind}|{period}"
            if self.store.has_run(run_id):
                continue
            start, end = domain.period_bounds(first, last, self.tz)
            pairs = self.store.units_in(start, end)
            scopes = [("unit", unit, institution) for unit, institution in pairs]
            if kind == "monthly":
                scopes += [("institution", inst, inst)
                           for inst in sorted({i for _, i in pairs if i})]
            for scope_type, scope, institution in scopes:
                file_id = domain.report_file_id(kind, period, scope_type, scope)
                summary = self.summary(first, last, {scope_type: scope})
                described = {"file_id": file_id, "kind": kind, "period": period,
                             "scope_type": scope_type, "scope": scope,
                             "total": summary["total"]}
                ready = make_event("report_generated", f"report:{file_id}", described,
                                   occurred_at=self.clock())
                if self.store.save_file({
                        "_id": file_id, "kind": kind, "period": period,
                        "scope_type": scope_type, "scope": scope,
                        "unit": scope if scope_type == "unit" else None,
                        "institution": institution, "total": summary["total"],
                        "created_at": self.clock(), "content": exports.to_xlsx(summary)},
                        [ready]):
                    made.append(file_id)
            self.store.mark_run(run_id, self.clock())
        return made
