"""Reporting's rules: facts from events, a summary per application, and report periods.

Pure: no nameko, no pymongo. Two shapes are kept (design §3, "aggregates built from events"):

- a *fact* per handled event — what happened, when, and the dimensions the event carries
  (category, channel, kind, area, institution, unit) — for time series and later reports;
- a *summary* per application, folded from its events, which the counts are taken from: one
  application counts once whatever its event history, and its current status and unit are there.

Like tracking's read model the summary depends on the set of events, not on their order
(events arrive on separate queues): the status is that of the latest status-bearing event by
(time in whole milliseconds, lifecycle step, event id), and the routing outcome — the unit that
holds the case, moved by transfers and returns — is last-writer-wins by the same key. The case's
later life is folded the same way: when it was first concluded and how long that took, how
often it was reopened (a set of event ids), the highest escalation level, the latest SLA
outcome per deadline, and the citizen's rating. Nothing here carries personal data.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Case work: the state each of these says the case reached (`CaseChanged.state`).
from services.common.events import CASE_EVENTS

STATUS_OF_EVENT = {
    "application_received": "received",
    "application_routed": "assigned",
    "application_referred": "referred",
}
# Where the case is held now: moved by the routing outcome, a transfer and a return.
MOVES = ("application_routed", "application_referred", "case_transferred", "case_returned")
# The lifecycle order, for events that carry the same millisecond.
_STEP = {"application_received": 0, "application_routed": 1, "application_referred": 1,
         **{etype: 2 + i for i, etype in enumerate(CASE_EVENTS)}}
OTHER_EVENTS = ("sla_outcome_recorded", "sla_breached", "case_escalated",
                "satisfaction_recorded")

DEFAULT_TIMEZONE = "Europe/Istanbul"
# Türkiye has kept UTC+3 all year since 2016: the fallback where no tz database is installed.
_TURKEY = timezone(timedelta(hours=3), "+03")
DEFAULT_PERIOD_DAYS = 30


def to_millis(moment: datetime) -> datetime:
    """`moment` in UTC, cut to whole milliseconds (what the store keeps)."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


NOT_KEPT = ("security_digest", "citizen_ref")


def fact_from_event(event: dict) -> dict:
    """The event as reporting keeps it for the rebuild: the whole envelope under its event id,
    less what reporting has no use for and should not hold (the security code's keyed digest,
    the citizen's opaque reference)."""
    data = {key: value for key, value in event["data"].items() if key not in NOT_KEPT}
    return {**event, "data": data, "_id": event["event_id"]}


def new_summary(application_id: str) -> dict:
    """An application's summary before any event."""
    return {
        "application_id": application_id,
        "category": None,
        "kind": None,
        "channel": None,
        "priority": None,
        "province": None,
        "district": None,
        "neighbourhood": None,
        "received_at": None,
        "status": None,
        "status_at": None,
        "status_event": None,
        "outcome_at": None,
        "outcome_event": None,
        "tier": None,
        "institution": None,
        "institution_name": None,
        "unit": None,
        "unit_name": None,
        "routed_at": None,
        "referred_at": None,
        "concluded_at": None,
        "resolution_hours": None,
        "reopened": [],
        "level": 0,
        "sla": {},
        "breached": {},
        "satisfaction": None,
    }


def _key(at: datetime | None, etype: str | None, event_id: str | None) -> tuple:
    if at is None:
        return ()  # sorts before every real key
    return (at, _STEP.get(etype or "", 9), event_id or "")


def fold_summary(current: dict | None, event: dict) -> tuple[dict | None, list[dict]]:
    """Fold one validated envelope into an application's summary; `(None, [])` if no change."""
    etype = event["type"]
    if etype not in STATUS_OF_EVENT and etype not in CASE_EVENTS and etype not in OTHER_EVENTS:
        raise ValueError(f"reporting does not fold {etype}")
    # A shallow copy is enough: nested values (the reopen list, SLA outcomes, breaches) are
    # replaced below, never changed in place (and a deep copy was most of a rebuild's time).
    doc = new_summary(event["application_id"]) if current is None else dict(current)
    for name, empty in (("reopened", []), ("level", 0), ("sla", {}), ("breached", {})):
        doc.setdefault(name, empty)  # summaries written before these were kept
    data = event["data"]
    at = to_millis(event["occurred_at"])
    if etype == "application_received":
        if doc.get("received_at") is not None:
            return None, []  # a replay under a new event id: an application counts once
        location = data["location"]
        doc.update(
            tracking_code=data.get("tracking_code"),  # public: the call-back list shows it
            caller_type=data.get("caller_type") or "citizen",
            category=data["category"],
            kind=data["kind"],
            channel=data["channel"],
            priority=data.get("priority"),
            province=location.get("province"),
            district=location.get("district"),
            neighbourhood=location.get("neighbourhood"),
            received_at=to_millis(data["received_at"]),
        )
        _resolution(doc)
    elif etype in OTHER_EVENTS:
        _fold_other(doc, etype, data, at, event["event_id"])
        return doc, []
    if etype in ("application_routed", "application_referred"):
        doc["category"] = doc.get("category") or data["category"]
        stamp = "routed_at" if etype == "application_routed" else "referred_at"
        if doc.get(stamp) is None or at < doc[stamp]:
            doc[stamp] = at  # the first time it happened
        # the tier is the routing decision's: a later transfer moves the unit, not the tier
        if _key(at, etype, event["event_id"]) > _key(doc.get("tier_at"), etype,
                                                      doc.get("tier_event")):
            doc["tier"] = data.get("tier", "outside")
            doc["tier_at"], doc["tier_event"] = at, event["event_id"]
    if etype in MOVES:
        new_key = _key(at, etype, event["event_id"])
        if new_key > _key(doc.get("outcome_at"), "application_routed", doc.get("outcome_event")):
            doc["outcome_at"], doc["outcome_event"] = at, event["event_id"]
            doc["institution"] = data.get("institution") or doc.get("institution")
            doc["institution_name"] = data.get("institution_name") or doc.get(
                "institution_name")
            doc["unit"] = data.get("unit")
            doc["unit_name"] = data.get("unit_name")
    if etype == "case_closed" and (doc.get("concluded_at") is None or at < doc["concluded_at"]):
        doc["concluded_at"] = at  # first concluded: what the resolution time measures
        _resolution(doc)
    if etype == "case_reopened" and event["event_id"] not in doc["reopened"]:
        doc["reopened"] = sorted([*doc["reopened"], event["event_id"]])
    doc["reopen_count"] = len(doc["reopened"])
    status = STATUS_OF_EVENT.get(etype) or data.get("state")
    status_key = _key(doc.get("status_at"),
                      doc.get("status_type") or _status_type(doc.get("status")),
                      doc.get("status_event"))
    if status and _key(at, etype, event["event_id"]) > status_key:
        doc["status"] = status
        doc["status_at"], doc["status_event"], doc["status_type"] = at, event["event_id"], etype
    return doc, []


def _resolution(doc: dict) -> None:
    """Hours from receipt to the first conclusion (wall-clock), once both are known."""
    if doc.get("received_at") and doc.get("concluded_at"):
        seconds = (doc["concluded_at"] - doc["received_at"]).total_seconds()
        doc["resolution_hours"] = round(max(seconds, 0) / 3600, 3)


def _fold_other(doc: dict, etype: str, data: dict, at: datetime, event_id: str) -> None:
    """SLA outcomes (the latest per deadline), breaches, the highest escalation level, the
    rating."""
    if etype == "case_escalated":
        doc["level"] = max(doc["level"], data["to_level"])
    elif etype == "satisfaction_recorded":
        doc["satisfaction"] = data["score"]  # recorded once by tracking
    elif etype == "sla_breached":
        # the latest breach per deadline: open and breached since its last outcome = overdue
        breached = dict(doc.get("breached") or {})
        if breached.get(data["deadline"]) is None or at > breached[data["deadline"]]:
            breached[data["deadline"]] = at
        doc["breached"] = breached
    else:
        deadline = data["deadline"]
        kept = doc["sla"].get(deadline)
        if kept is None or (at, event_id) > (kept["at"], kept["event_id"]):
            doc["sla"] = dict(doc["sla"], **{deadline: {
                "outcome": data["outcome"], "overrun_hours": data["overrun_hours"],
                "at": at, "event_id": event_id}})


def _status_type(status: str | None) -> str | None:
    for etype, reached in STATUS_OF_EVENT.items():
        if reached == status:
            return etype
    return None


def report_timezone(name: str | None) -> tzinfo:
    """The timezone report dates are read in (municipal days, not UTC days)."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        if (name or DEFAULT_TIMEZONE) == DEFAULT_TIMEZONE:
            return _TURKEY
        raise


def resolve_period(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    """The report period asked for, with what was left out filled in.

    No `to`: up to today (or up to `from`, if that is later). No `from`: the
    `DEFAULT_PERIOD_DAYS` days ending at `to`.
    """
    if last is None:
        last = max(today, first) if first else today
    if first is None:
        first = last - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    return first, last


def period_bounds(first: date, last: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """`[first 00:00, day after last 00:00)` local time, as UTC datetimes to query with."""
    start = datetime.combine(first, time.min, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
    return start, end


def ranked(counts: list[dict]) -> list[dict]:
    """Counts largest first, ties by key (missing keys last), so answers are stable."""
    return sorted(counts, key=lambda row: (-row["count"], row["key"] is None,
                                           "" if row["key"] is None else str(row["key"])))


# -- who sees which figures (issue 12: the scope comes from the staff token) ------------------

UNIT_ROLES = ("expert", "supervisor", "director")
INSTITUTION_ROLES = ("deputy_mayor", "mayor", "governor")
CENTRAL_ROLES = ("coordinator", "admin")
REPORT_ROLES = (*UNIT_ROLES, *INSTITUTION_ROLES, *CENTRAL_ROLES)
FILTERS = ("category", "district", "institution", "unit")


class OutOfScope(Exception):
    """A filter asks for figures outside the caller's scope; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def report_scope(role: str, unit: str | None, institution: str | None, asked: dict,
                 family: Callable[[str], list[str]]) -> dict:
    """The summaries a caller may count, as a filter: the filters they `asked` for (category,
    district, institution, unit), within their scope.

    A unit role (expert, supervisor, director) sees its unit; an institution role (deputy mayor,
    mayor, governor) and a coordinator or administrator bound to an institution see that
    institution and those under it (`family`, from routing's directory); an unbound coordinator
    or administrator (the coordination centre) everything. Asking for a unit or an institution
    outside that is refused (`OutOfScope`), never answered with someone else's figures.
    """
    match = {name: asked[name] for name in FILTERS if asked.get(name)}
    if role in UNIT_ROLES:
        if not unit:
            raise OutOfScope("unit", "a unit role needs a unit in its token")
        if match.get("unit", unit) != unit:
            raise OutOfScope("unit", "only your own unit's figures")
        match["unit"] = unit
        return match
    if role in INSTITUTION_ROLES or (role in CENTRAL_ROLES and institution):
        if not institution:
            raise OutOfScope("institution", "an institution role needs an institution in its "
                                            "token")
        allowed = family(institution)
        if "institution" in match:
            if match["institution"] not in allowed:
                raise OutOfScope("institution", "only your institution's and those under it")
        else:
            match["institution"] = {"$in": list(allowed)}
        return match
    if role in CENTRAL_ROLES:
        return match
    raise OutOfScope("role", f"role {role} has no reports")


# -- time series -------------------------------------------------------------------------------

GRANULARITIES = ("day", "week", "month")


def period_key(moment: datetime, granularity: str, tz: tzinfo) -> str:
    """The local period `moment` falls in: `2026-12-02`, ISO week `2026-W49`, `2026-12`."""
    local = moment.astimezone(tz).date()
    if granularity == "day":
        return local.isoformat()
    if granularity == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local.year}-{local.month:02d}"


def periods(first: date, last: date, granularity: str) -> list[str]:
    """Every period key from `first` to `last`, in order (empty ones included)."""
    keys: list[str] = []
    day = first
    while day <= last:
        key = period_key(datetime.combine(day, time(12), tzinfo=UTC), granularity, UTC)
        if not keys or keys[-1] != key:
            keys.append(key)
        day += timedelta(days=1)
    return keys


# -- the mayor's weekly call-back list (seed 004) ----------------------------------------------

CALLBACK_ROLES = ("mayor", "coordinator", "admin")
CALLBACK_SIZE = 4  # "3-4 randomly chosen citizens a week"


def week_bounds(week: str) -> tuple[date, date]:
    """`2026-W49` → its Monday and Sunday; ValueError for anything else."""
    year, _, number = week.partition("-W")
    monday = date.fromisocalendar(int(year), int(number), 1)
    return monday, monday + timedelta(days=6)


def current_week(today: date) -> str:
    year, week, _ = today.isocalendar()
    return f"{year}-W{week:02d}"


def callback_sample(candidates: list[str], week: str, size: int = CALLBACK_SIZE) -> list[str]:
    """`size` of `candidates` (application ids), the same for the same week and candidates
    whoever asks and however often: seeded by the week, drawn from the sorted ids."""
    pool = sorted(set(candidates))
    # reproducible on purpose (the same list for the same week), not a secret: not a CSPRNG
    draw = random.Random(f"acikkapi-callback-{week}")  # noqa: S311
    return sorted(draw.sample(pool, min(size, len(pool))))


# -- scheduled reports (seed 004: weekly to each unit's supervisor, monthly to each directorate
# and the mayor) ----------------------------------------------------------------------------

def previous_week(today: date) -> tuple[str, date, date]:
    """The ISO week before `today`'s: `(2026-W48, its Monday, its Sunday)`."""
    monday = today - timedelta(days=today.weekday() + 7)
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}", monday, monday + timedelta(days=6)


def previous_month(today: date) -> tuple[str, date, date]:
    """The month before `today`'s: `(2026-11, its first day, its last day)`."""
    last = today.replace(day=1) - timedelta(days=1)
    return f"{last.year}-{last.month:02d}", last.replace(day=1), last


def report_file_id(kind: str, period: str, scope_type: str, scope: str) -> str:
    """One file per kind, period and scope: generated once whatever the number of processes."""
    return f"{kind}|{period}|{scope_type}|{scope}"
