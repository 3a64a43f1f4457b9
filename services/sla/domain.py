"""SLA rules: the deadlines of a routed case and how a re-routing changes them.

Pure: no nameko, no pymongo. A case has one timer set: `read` (the unit acknowledges it),
`resolve` (the citizen gets a result), `warn` at 75 % of the resolve time, and `delay_notice` at
48 hours — seed 001: "48 saat içerisinde çözülmeyen başvurularda, vatandaş … bilgilendirilir".
Hours are wall-clock hours from the routing (working-hour calendars come with SLA policies).

Re-routing (a later `application_routed` for an open set) keeps the citizen's clock: `started_at`,
the escalation level and the resolve / warn / delay-notice deadlines still count from the first
routing (re-planned with the new category's hours), so bouncing a case between units never buys
time. Only `read` restarts, because the new unit has not seen the case yet. A timer whose due
time did not change keeps its `fired_at`, so nothing fires twice for the same deadline.
"""
from __future__ import annotations

from datetime import datetime, timedelta

READ = "read"
WARN = "warn"
RESOLVE = "resolve"
DELAY_NOTICE = "delay_notice"
TIMER_KINDS = (READ, WARN, RESOLVE, DELAY_NOTICE)

WARN_FRACTION = 0.75
DELAY_NOTICE_AFTER = timedelta(hours=48)
OPEN = "open"


class InvalidDeadline(ValueError):
    """The routed event carries hours no deadline can be computed from."""


def due_times(
    started_at: datetime, read_hours: float, resolve_hours: float, *,
    read_from: datetime | None = None,
) -> dict[str, datetime]:
    """Due time of every timer kind; `read` counts from `read_from` (default `started_at`)."""
    if started_at.tzinfo is None:
        raise InvalidDeadline("started_at must be timezone-aware")
    if read_hours <= 0 or resolve_hours <= 0:
        raise InvalidDeadline(f"hours must be positive (read {read_hours}, "
                              f"resolve {resolve_hours})")
    resolve = timedelta(hours=resolve_hours)
    return {
        READ: (read_from or started_at) + timedelta(hours=read_hours),
        WARN: started_at + resolve * WARN_FRACTION,
        RESOLVE: started_at + resolve,
        DELAY_NOTICE: started_at + DELAY_NOTICE_AFTER,
    }


def plan_timers(due: dict[str, datetime], previous: list[dict] | None = None) -> list[dict]:
    """Timers for `due`; a kind whose due time is unchanged keeps its previous `fired_at`."""
    before = {timer["kind"]: timer for timer in previous or ()}
    timers = []
    for kind in TIMER_KINDS:
        old = before.get(kind)
        fired_at = old["fired_at"] if old and _same_instant(old["due_at"], due[kind]) else None
        timers.append({"kind": kind, "due_at": due[kind], "fired_at": fired_at})
    return timers


def next_due_at(timers: list[dict]) -> datetime | None:
    """The earliest unfired due time: what the (future) claim loop queries by."""
    pending = [timer["due_at"] for timer in timers if timer["fired_at"] is None]
    return min(pending) if pending else None


def on_routed(current: dict | None, routed: dict) -> tuple[dict | None, list[dict]]:
    """Fold `application_routed` into the case's timer set: open it, or re-plan it.

    Returns `(None, [])` — nothing to store — for a set that is no longer open and for a routing
    older than the one already applied (a retried event overtaken by a newer one).
    """
    data = routed["data"]
    at = routed["occurred_at"]
    if current is not None:
        if current["state"] != OPEN:
            return None, []
        if at < current["routed_at"]:
            return None, []
        started_at = current["started_at"]
        level = current["level"]
        previous = current["timers"]
    else:
        started_at, level, previous = at, 0, None
    timers = plan_timers(
        due_times(started_at, data["read_hours"], data["resolve_hours"], read_from=at), previous
    )
    timer_set = {
        "application_id": routed["application_id"],
        "tracking_code": data["tracking_code"],
        "institution": data["institution"],
        "unit": data["unit"],
        "category": data["category"],
        "priority": data["priority"],
        "read_hours": data["read_hours"],
        "resolve_hours": data["resolve_hours"],
        "level": level,
        "state": OPEN,
        "started_at": started_at,
        "routed_at": at,
        "timers": timers,
        "next_due_at": next_due_at(timers),
    }
    return timer_set, []


def _same_instant(a: datetime, b: datetime) -> bool:
    # The store keeps milliseconds (BSON dates), the domain computes microseconds.
    return abs(a - b) < timedelta(milliseconds=1)
