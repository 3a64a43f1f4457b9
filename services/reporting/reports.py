"""Reporting's use cases: keep what an event tells, and answer the reports from the buckets.

Shared by the nameko side (the event handlers) and the Flask side (the staff API) through the
service's composition root, so both read report dates in the one timezone configured for it.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from services.common.codes import display_tracking_code
from services.common.events import make_event, utcnow
from services.reporting import aggregates, domain, exports
from services.reporting.projector import Projector
from services.reporting.store import ReportingStore

RANKED = ("by_category", "by_channel", "by_kind", "by_district", "by_neighbourhood", "by_unit",
          "by_status", "by_level", "by_satisfaction", "by_read_sla", "by_resolve_sla",
          "by_reopen_count", "by_caller_type", "by_tier")
CATCH_UP_SECONDS = 2.0
# report list -> counter family in the buckets
FAMILIES = {name: name[3:] for name in RANKED}
FAMILIES.update(by_read_sla="read_sla", by_resolve_sla="resolve_sla")


class Reports:
    """The events reporting keeps, and the reports read from the buckets they are folded into."""

    def __init__(self, store: ReportingStore, timezone_name: str | None = None,
                 clock: Callable[[], datetime] = utcnow, spawn_map: Callable | None = None):
        self.store = store
        self.timezone_name = timezone_name or domain.DEFAULT_TIMEZONE
        # Resolved once, at composition: a wrong name stops the service from starting.
        self.tz = domain.report_timezone(self.timezone_name)
        self.clock = clock
        self.spawn_map = spawn_map
        self.projector = Projector(store, self.tz, spawn_map, clock)

    def record_batch(self, events: list[dict]) -> None:
        """Fold a batch of events off the bus at once when this process holds the projector's
        lease (a batch writes each bucket it touches once); else keep them for the process
        that holds it, whose timer folds them within a second."""
        if not self.projector.fold(events):
            self.store.enqueue_many(events)

    def catch_up(self) -> None:
        """Before answering: fold what this process can, so an answer includes every event
        stored before it was asked (unless another process holds the projector's lease). A
        batch being folded here is waited for `CATCH_UP_SECONDS` at most: a backlog's batches
        take seconds each, and a page should not."""
        self.projector.run(wait=CATCH_UP_SECONDS)

    def _period(self, first: date | None, last: date | None) -> tuple[date, date]:
        return domain.resolve_period(first, last, today=self.today())

    def today(self) -> date:
        return self.clock().astimezone(self.tz).date()

    def _buckets(self, pieces: list[tuple[str, str]], match: dict
                 ) -> tuple[dict[tuple[str, str], list[dict]], list[str] | None]:
        """The buckets answering `match` for each `(granularity, period)` piece, and the keys
        to add up in them (None: every key within `match`, in the cells' documents)."""
        level, keys = aggregates.level_for(match)
        if level != "cell":
            ids = {piece: [aggregates.bucket_id(*piece, level, key) for key in keys]
                   for piece in pieces}
            found = self.store.read_buckets([i for each in ids.values() for i in each])
            return {piece: [found[i] for i in each if i in found]
                    for piece, each in ids.items()}, keys
        return self._cells(pieces, match), None

    def _cells(self, pieces: list[tuple[str, str]], match: dict
               ) -> dict[tuple[str, str], list[dict]]:
        """The cell documents of each piece holding a cell within `match`: the period's index
        names its cells, and only the units' documents holding one within are read (the
        caller adds up the cells that pass, `aggregates.passes`)."""
        indexes = self.store.read_buckets([f"{g}|{p}|cells" for g, p in pieces])
        wanted = {piece: sorted({aggregates.bucket_id(*piece, "cell", key) for key in
                                 indexes.get(f"{piece[0]}|{piece[1]}|cells", {}).get("keys", {})
                                 if aggregates.passes(match, key)}) for piece in pieces}
        found = self.store.read_buckets([i for ids in wanted.values() for i in ids])
        return {piece: [found[i] for i in ids if i in found] for piece, ids in wanted.items()}

    def _counters(self, pieces: list[tuple[str, str]], match: dict
                  ) -> tuple[aggregates.Counters, dict[str, str]]:
        by_piece, keys = self._buckets(pieces, match)
        found = [bucket for buckets in by_piece.values() for bucket in buckets]
        names: dict[str, str] = {}
        for bucket in found:
            names.update(bucket.get("names") or {})
        return aggregates.sum_keys(found, keys, match), names

    def summary(self, first: date | None = None, last: date | None = None,
                match: dict | None = None) -> dict:
        """Applications received from `first` to `last` (inclusive, local days; defaults as
        `domain.resolve_period`) that `match` (`domain.report_scope`): their total, their counts
        per dimension (ranked), and what was concluded in the period and how fast."""
        first, last = self._period(first, last)
        match = match or {}
        self.catch_up()
        counters, names = self._counters(aggregates.period_buckets(first, last), match)
        answer = {"first": first, "last": last, "timezone": self.timezone_name,
                  "total": counters.get("received", 0)}
        groups = aggregates.families(counters)
        for name in RANKED:
            rows = aggregates.breakdown(groups, FAMILIES[name])
            if name == "by_unit":  # routed only: a unit acts on it
                rows = [dict(row, name=names.get(f"unit:{row['key']}"))
                        for row in rows if row["key"] is not None]
            answer[name] = domain.ranked(rows)
        hours = aggregates.histogram(groups)
        rated = aggregates.breakdown(groups, "satisfaction")
        scored = sum(row["count"] for row in rated if row["key"] is not None)
        answer.update(
            open=counters.get("open", 0), overdue=counters.get("overdue", 0),
            concluded=counters.get("concluded", 0), referred=counters.get("referred", 0),
            escalated=counters.get("escalated", 0),
            resolution_hours_median=aggregates.quantile_of_histogram(hours, 0.5),
            resolution_hours_p90=aggregates.quantile_of_histogram(hours, 0.9),
            satisfaction_average=round(sum(row["key"] * row["count"] for row in rated
                                           if row["key"] is not None) / scored, 2)
            if scored else None,
            sla_by_unit=sorted(aggregates.sla_table(groups, "sla_unit"),
                               key=lambda row: str(row["key"])),
            sla_by_category=sorted(aggregates.sla_table(groups, "sla_category"),
                                   key=lambda row: str(row["key"])),
        )
        for row in answer["sla_by_unit"]:
            row["name"] = names.get(f"unit:{row['key']}")
        return answer

    def backlog(self, match: dict | None = None) -> dict:
        """What is open now, within `match`, by age (days since received), and how much of it
        is overdue (mixed filters, e.g. a unit's scope and a category, from the all-time cells)."""
        match = match or {}
        self.catch_up()
        counters, _ = self._counters([("e", "all")], match)
        return {"open": counters.get("open", 0), "overdue": counters.get("overdue", 0),
                "by_age": aggregates.backlog_ages(aggregates.families(counters), self.today())}

    def institution_gauges(self) -> list[tuple[str, int, int]]:
        """`(institution, open, overdue)` for every institution with something open
        (`none`: not routed yet, at the desk; Prometheus labels are strings)."""
        bucket = self.store.read_buckets(["e|all|all"]).get("e|all|all")
        groups = aggregates.families(aggregates.sum_keys([bucket] if bucket else [], None, {}))
        overdue = groups.get("overdue_in", {})
        rows = [("none" if key == aggregates.NONE else key, count, overdue.get(key, 0))
                for key, count in groups.get("open_in", {}).items()]
        return sorted(rows)

    def series(self, first: date | None, last: date | None, granularity: str,
               match: dict | None = None) -> dict:
        """Received and concluded per day, ISO week or month (local), with the resolution
        time's median and p90 in whole hours, for what `match` allows."""
        first, last = self._period(first, last)
        match = match or {}
        self.catch_up()
        pieces = aggregates.period_buckets(
            first, last, {"day": (), "week": ("w",), "month": ("m",)}[granularity])
        by_piece, keys = self._buckets(pieces, match)
        rows = {key: {"period": key, "received": 0, "concluded": 0, "_hours": {}}
                for key in domain.periods(first, last, granularity)}
        for (granularity_of, period), buckets in by_piece.items():
            day = aggregates.piece_start(granularity_of, period)
            row = rows[domain.period_key(datetime.combine(day, time(12), tzinfo=UTC),
                                         granularity, UTC)]
            counters = aggregates.sum_keys(buckets, keys, match)
            row["received"] += counters.get("received", 0)
            row["concluded"] += counters.get("concluded", 0)
            for hours, count in aggregates.histogram(aggregates.families(counters)).items():
                row["_hours"][hours] = row["_hours"].get(hours, 0) + count
        items = []
        for row in rows.values():
            hours = row.pop("_hours")
            row.update(resolution_hours_median=aggregates.quantile_of_histogram(hours, 0.5),
                       resolution_hours_p90=aggregates.quantile_of_histogram(hours, 0.9))
            items.append(row)
        return {"first": first, "last": last, "timezone": self.timezone_name,
                "granularity": granularity, "items": items}

    def callbacks(self, week: str | None, match: dict,
                  contact: Callable[[str], dict | None]) -> dict:
        """The week's call-back list: a sample (seeded by the week) of the applications first
        concluded in the week before, across units within `match`, each with the citizen's
        contact asked through `contact` at read time (never stored here) and the note kept."""
        self.catch_up()
        today = self.clock().astimezone(self.tz).date()
        week = week or domain.current_week(today)
        monday, _ = domain.week_bounds(week)
        candidates = self._concluded_in_week(monday - timedelta(days=7), match)
        items = []
        for application_id in domain.callback_sample(candidates, week):
            row = self.store.get_summary(application_id) or {}
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
                "concluded_to": monday - timedelta(days=1), "candidates": len(candidates),
                "items": items}

    def _concluded_in_week(self, monday: date, match: dict) -> list[str]:
        """The applications first concluded in the ISO week starting `monday` (local days),
        within `match`: listed in that week's cells, which the week's index names."""
        piece = ("w", domain.current_week(monday))
        prefix = aggregates.LISTED[0]
        return sorted({name[len(prefix):] for bucket in self._cells([piece], match)[piece]
                       for key, counters in bucket.get("keys", {}).items()
                       if aggregates.passes(match, key)
                       for name, count in counters.items()
                       if count > 0 and name.startswith(prefix)})

    def note_callback(self, week: str, application_id: str, note: str | None, reached: bool,
                      by: str) -> dict:
        """Record how a call went; it goes back to the desk with the list."""
        self.store.save_callback_note(week, application_id, {
            "note": note, "reached": reached, "by": by, "at": self.clock()})
        return {"week": week, "application_id": application_id, "note": note,
                "reached": reached, "noted_by": by}

    def units_in(self, first: date, last: date) -> list[tuple[str, str | None]]:
        """`(unit, institution)` of the applications received from `first` to `last`."""
        self.catch_up()
        ids = [f"{g}|{p}|cells" for g, p in aggregates.period_buckets(first, last)]
        pairs = set()
        for bucket in self.store.read_buckets(ids).values():
            for key in bucket["keys"]:
                institution, unit, _, _ = key.split("|", 3)
                if unit != aggregates.NONE:
                    pairs.add((unit, None if institution == aggregates.NONE else institution))
        return sorted(pairs, key=lambda pair: (pair[0], pair[1] or ""))

    def generate_due(self) -> list[str]:
        """Generate the reports whose period has ended and that do not exist yet: last week's
        for each unit (its supervisor's), last month's for each unit (the directorate's) and
        each institution (the mayor's); XLSX and PDF, stored once each. Returns the new files'
        ids."""
        today = self.clock().astimezone(self.tz).date()
        made = []
        for kind, (period, first, last) in (("weekly", domain.previous_week(today)),
                                            ("monthly", domain.previous_month(today))):
            run_id = f"{kind}|{period}"
            if self.store.has_run(run_id):
                continue
            pairs = self.units_in(first, last)
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
                        "created_at": self.clock(), "content": exports.to_xlsx(summary),
                        "pdf": exports.to_pdf(summary)},
                        [ready]):
                    made.append(file_id)
            self.store.mark_run(run_id, self.clock())
        return made
