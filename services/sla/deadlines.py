"""SLA's use cases: the clock follows each case, the sweep fires what falls due, staff read
deadlines and lists, admins set policies and calendars.

Shared by the nameko side (event handlers, the sweep timer) and the Flask side (the staff and
admin API) through the service's composition root. Who may see which unit's cases is the HTTP
layer's concern, not decided here.

Order of writes, so that no deadline is lost (store: wake-up buckets): a clock's new wake-up is
put in its bucket *before* the clock is written. A crash in between leaves a spare wake-up,
which finds nothing due; the other order could leave a clock nobody wakes.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from eventlet.greenpool import GreenPool

from services.common.events import utcnow
from services.common.outbox import BOOKKEEPING, VERSION, attach_events
from services.sla import domain
from services.sla.domain import Ladder
from services.sla.policy import (
    Policy,
    calendar_of,
    check_settings,
    clock_calendar,
    effective_policy,
    rule_id,
)
from services.sla.store import SlaStore, hours_between, minute_key, minute_start, next_minute

log = logging.getLogger(__name__)

RULES_TTL_SECONDS = 5.0  # an admin's change reaches every process within this
LADDER_TTL_SECONDS = 60.0
LADDER_RETRY_SECONDS = 10.0
HOURS_PER_SWEEP = 24 * 7  # catching up after a week down takes one sweep
LAZY_MINUTES = 10  # with nothing due, the cursor is written once per this many minutes
SWEEP_CONCURRENCY = 16
BUCKETS_AT_ONCE = 4
# Events that put the case somewhere: the policy and calendar of where it went apply.
MOVES = ("application_routed", "case_transferred", "case_returned", "case_reopened")
LadderSource = Callable[[str], list[str | None]]
AncestrySource = Callable[[str], list[str]]


@dataclass
class SweepReport:
    """What one sweep did, for metrics and the benchmark."""

    minutes: int = 0
    buckets: int = 0
    woken: int = 0
    fired: int = 0
    busy: int = 0  # buckets another sweeper held
    seconds: float = 0.0
    caught_up: bool = False  # every ended minute is done (else: a week at a time, or busy)
    lag_seconds: float = 0.0  # from the end of the minute swept last to now
    failed: list[str] = field(default_factory=list)


class Deadlines:
    """Case clocks over sla's store."""

    def __init__(self, store: SlaStore, ladders: LadderSource,
                 clock: Callable[[], datetime] = utcnow, worker: str | None = None,
                 ancestry: AncestrySource | None = None):
        self.store = store
        self.ladders = ladders
        self.ancestry = ancestry or (lambda institution: [institution])
        self.clock = clock
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._rules: tuple[float, list[dict]] | None = None
        self._ladder_cache: dict[str, tuple[float, Ladder]] = {}
        self._ancestry_cache: dict[str, tuple[float, list[str]]] = {}

    # -- policies -------------------------------------------------------------------------------

    def rules(self) -> list[dict]:
        """Every policy rule, re-read at most every few seconds."""
        if self._rules is None or time.monotonic() - self._rules[0] > RULES_TTL_SECONDS:
            self._rules = (time.monotonic(), self.store.rules.all())
        return self._rules[1]

    def policy_for(self, *, category: str, priority: str, institution: str, unit: str | None,
                   read_hours: float, resolve_hours: float) -> tuple[Policy, dict]:
        """The policy and calendar of a case in `unit` of `institution`."""
        policy = effective_policy(self.rules(), category=category, priority=priority,
                                  institution=institution, read_hours=read_hours,
                                  resolve_hours=resolve_hours)
        owned = (self.store.calendars.get(unit) if unit else None) or \
            self.store.calendars.get(institution)
        spec = {k: v for k, v in (owned or {}).items() if k != "_id"}
        return policy, clock_calendar(policy, spec)

    def save_rule(self, scope: dict, settings: dict) -> dict:
        """Create or replace the rule of `scope` (raises `InvalidPolicy` naming the field)."""
        check_settings(settings)
        scope = {k: scope.get(k) for k in ("category", "priority", "institution")}
        rule = {"_id": rule_id(scope), "scope": scope,
                "settings": {k: v for k, v in settings.items() if v is not None},
                "updated_at": self.clock()}
        self.store.rules.save(rule)
        self._rules = None
        return rule

    def delete_rule(self, rule: str) -> bool:
        self._rules = None
        return self.store.rules.delete(rule)

    def save_calendar(self, owner: str, spec: dict) -> dict:
        """Working hours of an institution or a unit (raises `InvalidPolicy`)."""
        calendar_of(spec)  # refuse what cannot be a calendar before storing it
        self.store.calendars.save({"_id": owner, **spec})
        return {"owner": owner, **spec}

    # -- the clock follows the case -------------------------------------------------------------

    def on_event(self, event: dict) -> bool:
        """Fold one routing event into the case's clock (False if already applied)."""
        app_id = event["application_id"]
        late: list[str] = []
        # Asked before the fold (which may run again on a conflict), never inside it.
        where = event["data"].get("institution")
        above = self.institutions_over(where) if where else None

        def fold(current: dict | None) -> tuple[dict | None, list[dict]]:
            late.clear()
            if current is None or current.get(domain.WAITING_FOR_ROUTING):
                if event["type"] != "application_routed":
                    # Before its routing (queues are consumed in parallel; sla may be catching
                    # up): kept, and applied once the clock opens.
                    return domain.hold_for_routing(current, event), []
                new, events = self._open(event, (current or {}).get("held", []))
            else:
                new, events = self._fold_case_event(current, event)
            if new is not None:
                if new["institution"] != (current or {}).get("institution"):
                    new["institutions"] = (above if new["institution"] == where
                                           else [new["institution"]])
                late.extend(self._wake(app_id, current, new))
            return new, events

        applied = self.store.fold_clock(app_id, event["event_id"], fold)
        if not applied:
            # A redelivery after a crash between the write and the wake-up: wake it again
            # (a spare wake-up finds nothing to do).
            stored = self.store.get_clock(app_id)
            if stored and stored.get("wake"):
                late.extend(self._schedule(app_id, stored["wake"]))
        if late:
            self.wake(app_id, late[0])
        return applied

    def _open(self, routed: dict, held: list[dict]) -> tuple[dict, list[dict]]:
        """A new clock, with the case events that arrived before the routing applied in
        order after it."""
        policy, spec = self._policy_of_event(routed, None)
        clock = domain.open_clock(routed, policy, spec)
        events = domain.deadline_events(None, clock, clock["started_at"])
        for early in sorted(held, key=lambda e: e["occurred_at"]):
            new, more = self._fold_case_event(clock, early)
            if new is not None:
                clock, events = new, events + more
        return clock, events

    def _fold_case_event(self, clock: dict, event: dict) -> tuple[dict | None, list[dict]]:
        policy = spec = None
        if event["type"] in MOVES:
            policy, spec = self._policy_of_event(event, clock)
        return domain.on_case_event(clock, event, policy, spec)

    def _policy_of_event(self, event: dict, current: dict | None) -> tuple[Policy, dict]:
        data = event["data"]
        base = current or {}
        old_policy = base.get("policy") or {}
        return self.policy_for(
            category=data.get("category") or base["category"],
            priority=data.get("priority") or base.get("priority") or "normal",
            institution=data.get("institution") or base["institution"],
            unit=data.get("unit") or base.get("unit"),
            read_hours=data.get("read_hours") or old_policy.get("read_hours") or
            base["read"]["hours"],
            resolve_hours=data.get("resolve_hours") or old_policy.get("resolve_hours") or
            base["resolve"]["hours"],
        )

    def _wake(self, app_id: str, current: dict | None, new: dict) -> list[str]:
        """Give `new` its wake-up minute; schedule it if it moved. Returns the minute when the
        case must be looked at now (already due, or its minute already swept)."""
        due = new.get("next_due_at")
        new["wake"] = _wake_minute(new)
        if due is None:
            return []
        if new["wake"] == (current or {}).get("wake") and (current or {}).get("next_due_at"):
            return [] if due > self.clock() else [new["wake"]]
        return self._schedule(app_id, new["wake"]) or ([new["wake"]] if due <= self.clock()
                                                        else [])

    def _schedule(self, app_id: str, minute: str) -> list[str]:
        return [] if self.store.schedule([app_id], minute) else [minute]

    # -- firing ---------------------------------------------------------------------------------

    def wake(self, app_id: str, minute: str | None = None) -> int:
        """Look at one case now and fire what is due, once. `minute` is the wake-up it was
        woken by: a clock since moved elsewhere ignores it. Returns the events emitted."""
        now = self.clock()
        emitted = 0
        late: list[str] = []

        def change(current: dict) -> dict | None:
            nonlocal emitted
            late.clear()
            ticked = self._tick(current, minute, now)
            if ticked is None:
                return None
            new, events = ticked
            late.extend(self._wake(app_id, current, new))
            emitted = len(events)
            return new

        self.store.change_clock(app_id, change)
        if late and late[0] != minute:
            emitted += self.wake(app_id, late[0])
        return emitted

    def _tick(self, current: dict, minute: str | None, now: datetime
              ) -> tuple[dict, list[dict]] | None:
        """The stored clock after firing what is due by `now` (bookkeeping kept, events in its
        outbox, `wake` set), and the events; None when there is nothing to do."""
        if minute is not None and current.get("wake") != minute:
            return None  # a spare or superseded wake-up
        plain = {k: v for k, v in current.items() if k not in BOOKKEEPING and k != "_id"}
        new, events = domain.tick(plain, now, self.ladder(current["unit"]))
        if new is None:
            return None
        new["wake"] = _wake_minute(new)
        kept = {k: current[k] for k in BOOKKEEPING if k in current and k != VERSION}
        return attach_events({**new, **kept}, events), events

    def institutions_over(self, institution: str) -> list[str]:
        """The institution and those above it, from routing's directory (cached a minute; if
        routing cannot say, the institution alone: its own staff still see the case)."""
        cached = self._ancestry_cache.get(institution)
        if cached and time.monotonic() - cached[0] < LADDER_TTL_SECONDS:
            return cached[1]
        try:
            chain = list(self.ancestry(institution)) or [institution]
        except Exception:  # the case must not wait for the directory
            log.warning("institutions over %s unavailable; scoping to it alone", institution)
            found = cached[1] if cached else [institution]
            self._ancestry_cache[institution] = (time.monotonic() - LADDER_TTL_SECONDS
                                                 + LADDER_RETRY_SECONDS, found)
            return found
        self._ancestry_cache[institution] = (time.monotonic(), chain)
        return chain

    def ladder(self, unit: str) -> Ladder:
        """Who stands at each level of `unit`'s ladder, from routing (cached a minute; an
        unreachable routing names nobody and the level still climbs)."""
        cached = self._ladder_cache.get(unit)
        if cached and time.monotonic() - cached[0] < LADDER_TTL_SECONDS:
            return cached[1]
        try:
            codes = self.ladders(unit)
        except Exception:  # the deadline must not wait for the directory
            log.warning("escalation ladder of %s unavailable; escalating without names", unit)
            # Remembered for a little while: a batch of cases must not each wait for the
            # same unreachable routing.
            found = cached[1] if cached else {}
            self._ladder_cache[unit] = (time.monotonic() - LADDER_TTL_SECONDS
                                        + LADDER_RETRY_SECONDS, found)
            return found
        ladder = dict(enumerate(codes))
        self._ladder_cache[unit] = (time.monotonic(), ladder)
        return ladder

    def sweep(self, now: datetime | None = None) -> SweepReport:
        """Wake every case whose minute has ended, each minute's buckets shared with other
        sweepers through claims.

        Cost: one cursor read when no minute has ended; one more read per hour passed when
        nothing is due (the cursor is written every `LAZY_MINUTES` then); then it grows with
        what is due. Before `done` passes a minute, `closed` covers it and the hour's minute
        list is read again, so a writer that listed it meanwhile is never skipped.
        """
        started = time.perf_counter()
        report = SweepReport()
        now = now or self.clock()
        target = minute_key(now - timedelta(minutes=1))  # the last minute that has ended
        cursor = self.store.cursor()
        done = cursor["done"]
        if done >= target:
            report.caught_up = True
            report.seconds = time.perf_counter() - started
            return report
        hours = hours_between(next_minute(done), target)[:HOURS_PER_SWEEP]
        reached = min(target, hours[-1] + "59")
        pending = self._pending_minutes(hours, done, reached)
        idle = minute_start(reached) - minute_start(done) < timedelta(minutes=LAZY_MINUTES)
        if not pending and idle:
            report.caught_up = True
            report.seconds = time.perf_counter() - started
            return report
        if cursor["closed"] < reached:
            self.store.advance_cursor("closed", reached)
        for minute in self._pending_minutes(hours, done, reached):
            report.minutes += 1
            if not self._sweep_minute(minute, now, report):
                # another sweeper still works on it: the cursor waits before it
                reached = minute_key(minute_start(minute) - timedelta(minutes=1))
                break
        report.caught_up = reached >= target
        report.lag_seconds = (now - minute_start(reached)).total_seconds() - 60
        if reached > done:
            self.store.advance_cursor("done", reached)
            for hour in hours:
                if hour + "59" <= reached:
                    self.store.forget_hour(hour)
        report.seconds = time.perf_counter() - started
        return report

    def _pending_minutes(self, hours: list[str], done: str, reached: str) -> list[str]:
        return [minute for hour in hours for minute in self.store.minutes_with_buckets(hour)
                if done < minute <= reached]

    def _sweep_minute(self, minute: str, now: datetime, report: SweepReport) -> bool:
        buckets = list(self.store.buckets(minute))

        def sweep_bucket(bucket: dict) -> bool:
            report.buckets += 1
            state = self.store.claim_bucket(bucket["_id"], self.worker, now)
            if state == "busy":
                report.busy += 1
                return False
            if state == "done":
                return True
            if not self._wake_bucket(minute, bucket["apps"], report):
                return False
            self.store.finish_bucket(bucket["_id"])
            return True

        # A few buckets at once: one's firing (this process's CPU) overlaps another's writes
        # (the database's), 10,000 due took 10.9 s one at a time, 9.9 s so (docs/benchmarks.md).
        swept = list(GreenPool(BUCKETS_AT_ONCE).imap(sweep_bucket, buckets))
        complete = all(swept)
        if complete:
            self.store.forget_minute(minute, [bucket["_id"] for bucket in buckets])
        return complete

    def _wake_bucket(self, minute: str, app_ids: list[str], report: SweepReport) -> bool:
        """Wake a bucket's cases in a batch: read them all (one read), fire what is due, put
        every new wake-up in its bucket (one write per bucket, not per case), then write the clocks,
        each guarded by the version read. A clock changed meanwhile is woken the careful way
        (`wake`). Returns False if any case failed (the bucket is swept again)."""
        now = self.clock()
        pool = GreenPool(SWEEP_CONCURRENCY)
        planned: list[tuple[dict, dict, list[dict]]] = []
        ok = True
        for current in self.store.read_clocks(app_ids):
            try:
                ticked = self._tick(current, minute, now)
            except Exception:  # one bad clock must not stop the others
                log.exception("waking case %s failed; the next sweep retries it",
                              current["_id"])
                report.failed.append(current["_id"])
                ok = False
                continue
            if ticked is not None:
                planned.append((current, *ticked))
        moved: dict[str, list[str]] = defaultdict(list)
        for current, new, _ in planned:
            if new["wake"] and new["wake"] != current.get("wake"):
                moved[new["wake"]].append(current["_id"])
        late = {app for wake, apps in moved.items() if not self.store.schedule(apps, wake)
                for app in apps}

        try:
            stored = self.store.replace_clocks([(c, n) for c, n, _ in planned], pool.imap)
        except Exception:  # the database is away: the bucket is swept again
            log.exception("storing a bucket's firings failed; the next sweep retries it")
            return False

        def settle(item: tuple[tuple[dict, dict, list[dict]], bool]) -> int | None:
            (current, new, events), written = item
            app_id = current["_id"]
            try:
                if not written:  # changed meanwhile (a case event landed): the careful way
                    return self.wake(app_id, minute)
                if app_id in late:
                    return len(events) + self.wake(app_id, new["wake"])
                return len(events)
            except Exception:  # one bad clock must not stop the others
                log.exception("waking case %s failed; the next sweep retries it", app_id)
                report.failed.append(app_id)
                return None

        for emitted in pool.imap(settle, zip(planned, stored, strict=True)):
            if emitted is None:
                ok = False
            else:
                report.fired += emitted
        report.woken += len(app_ids)
        return ok

    # -- reading --------------------------------------------------------------------------------

    def clock_view(self, app_id: str) -> dict | None:
        """A case's clock as staff read it: deadlines, percent used, escalation steps."""
        found = self.store.get_clock(app_id)
        if found is None or found.get(domain.WAITING_FOR_ROUTING):
            return None
        return self._view(found, self.clock())

    def _view(self, clock: dict, now: datetime) -> dict:
        view = dict(clock, application_id=clock["_id"])
        for deadline in domain.DEADLINES:
            view[f"{deadline}_percent_used"] = domain.percent_used(clock, deadline, now)
        view["escalations"] = domain.waited_at_each_step(clock, now)
        return view

    def lists(self, kind: str, *, unit: str | None = None, institution: str | None = None,
              within: str | None = None, limit: int = 100) -> dict:
        """`overdue` (a deadline passed), `at_risk` (past the first warning, not yet due) or
        `mayor` (reached level 4), most urgent first; of `unit`, of `institution`, and of
        cases held by `within` or an institution under it."""
        now = self.clock()
        query: dict = {}
        if unit:
            query["unit"] = unit
        if institution:
            query["institution"] = institution
        if within:
            query["institutions"] = within
        if kind == "mayor":
            query["level"] = 4
            sort = "started_at"
        else:
            query["clock"] = domain.RUNNING
            sort = "resolve_due_at"
        items = []
        for clock in self.store.find_clocks(query, limit=10 * limit, sort=sort):
            view = self._view(clock, now)
            if kind == "overdue" and not _overdue(clock, now):
                continue
            if kind == "at_risk" and (_overdue(clock, now) or not _at_risk(view)):
                continue
            items.append(view)
            if len(items) >= limit:
                break
        return {"as_of": now, "count": len(items), "items": items}

    def top_of_ladder(self, institution: str, limit: int = 200) -> list[dict]:
        """Open cases of `institution` at level 4 (the mayor's list, without the closed ones),
        longest waiting first: `{application_id, tracking_code, unit, category, level,
        waited_hours}` (hours at the top, wall-clock)."""
        now = self.clock()
        found = []
        for clock in self.store.find_clocks({"institution": institution, "level": 4},
                                            limit=limit, sort="started_at"):
            if clock.get("clock") == domain.STOPPED:
                continue
            steps = domain.waited_at_each_step(clock, now)
            found.append({"application_id": clock["_id"],
                          "tracking_code": clock.get("tracking_code"),
                          "unit": clock.get("unit"), "category": clock.get("category"),
                          "level": clock.get("level", 4),
                          "waited_hours": steps[-1]["waited_hours"] if steps else None})
        return sorted(found, key=lambda item: -(item["waited_hours"] or 0))


def _wake_minute(clock: dict) -> str | None:
    """The minute whose bucket wakes the clock: that of its next due time."""
    due = clock.get("next_due_at")
    return minute_key(due) if due else None


def _overdue(clock: dict, now: datetime) -> bool:
    return any(clock.get(f"{d}_due_at") and clock[f"{d}_due_at"] <= now
               for d in domain.DEADLINES)


def _at_risk(view: dict) -> bool:
    first_warning = (view["policy"].get("warn_at") or [80])[0]
    return view["resolve_percent_used"] >= first_warning
