"""SLA rules: one clock per case, which follows the case and says what falls due when.

Pure: no nameko, no pymongo. A case's clock holds two *ledgers* of working time — `read` (the
unit must acknowledge) and `resolve` (the citizen must get a result) — each with its budget in
hours, the working seconds spent in earlier stretches, and the instant it has been running
since (None while paused or done). Everything that can fall due is a *trigger* at a number of
working seconds spent on a ledger:

- `resolve:warn:<p>` at p % of the resolve time (`sla_warned`);
- `<deadline>:breach` at the budget (`sla_breached`);
- `<deadline>:level:<k>` at the budget plus the ladder's offsets (`case_escalated`, step by step
  up to level k; an unread case under an `unread_to_mayor` policy goes to level 4 at once).

The citizen's 48-hour notice (`delay_notice_due`) counts wall-clock hours from the start, less
the time spent waiting for the citizen. A trigger fires once: its key is kept in `fired`, and a
fold that finds it there emits nothing, so two sweepers, a redelivery or a restart never send
anything twice. `next_due_at` is the earliest instant something can fall due; the store wakes
the case then. How each case event moves the clock is in `on_case_event` and in
docs/architecture.md ("SLA").
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common.events import make_event
from services.sla.calendar import RoundTheClock, WorkingCalendar
from services.sla.policy import MAX_LEVEL, Policy, calendar_of

READ = "read"
RESOLVE = "resolve"
DEADLINES = (READ, RESOLVE)
RUNNING, PAUSED, STOPPED = "running", "paused", "stopped"
LEVEL_ROLES = {0: "unit", 1: "supervisor", 2: "director", 3: "deputy_mayor", 4: "mayor"}
Calendar = WorkingCalendar | RoundTheClock
Ladder = dict[int, str | None]  # level → the staff code routing's directory names for it


class InvalidDeadline(ValueError):
    """An event carries times or hours no deadline can be computed from."""


# -- ledgers ------------------------------------------------------------------------------------

def new_ledger(hours: float, since: datetime | None) -> dict:
    return {"hours": float(hours), "spent": 0.0, "since": since, "done_at": None}


def spent(ledger: dict, calendar: Calendar, now: datetime) -> float:
    """Working seconds the ledger has used by `now`."""
    if ledger["since"] is None:
        return ledger["spent"]
    return ledger["spent"] + calendar.between(ledger["since"], now).total_seconds()


def when_spent(ledger: dict, calendar: Calendar, seconds: float) -> datetime | None:
    """The instant the running ledger reaches `seconds` spent (None if it is not running)."""
    if ledger["since"] is None:
        return None
    left = max(seconds - ledger["spent"], 0.0)
    return calendar.add(ledger["since"], left / 3600)


def due_at(ledger: dict, calendar: Calendar) -> datetime | None:
    """When the ledger's deadline falls while it runs (None if paused or done)."""
    return when_spent(ledger, calendar, ledger["hours"] * 3600)


def _pause(ledger: dict, calendar: Calendar, at: datetime) -> None:
    if ledger["since"] is not None:
        ledger["spent"] = spent(ledger, calendar, at)
        ledger["since"] = None


def _resume(ledger: dict, at: datetime) -> None:
    if ledger["done_at"] is None and ledger["since"] is None:
        ledger["since"] = at


# -- triggers -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Trigger:
    key: str
    deadline: str
    seconds: float  # working seconds spent on the deadline's ledger
    action: str  # "warn" | "breach" | "escalate"
    value: int = 0  # percent for a warning, the level reached for an escalation


def triggers(policy: Policy, clock: dict) -> list[Trigger]:
    """Everything that can fall due on the case's two ledgers, in order of working time."""
    read_s = clock[READ]["hours"] * 3600
    resolve_s = clock[RESOLVE]["hours"] * 3600
    found = [Trigger(f"resolve:warn:{p}", RESOLVE, resolve_s * p / 100, "warn", p)
             for p in policy.warn_at]
    offsets = policy.escalation_offsets()
    for deadline, budget in ((READ, read_s), (RESOLVE, resolve_s)):
        found.append(Trigger(f"{deadline}:breach", deadline, budget, "breach"))
        if deadline == READ and policy.unread_to_mayor:
            found.append(Trigger("read:level:4", READ, budget, "escalate", MAX_LEVEL))
            continue
        found += [Trigger(f"{deadline}:level:{level}", deadline, budget + hours * 3600,
                          "escalate", level)
                  for level, hours in enumerate(offsets, start=1)]
    return sorted(found, key=lambda t: t.seconds)


def _pending(policy: Policy, clock: dict) -> list[Trigger]:
    fired = set(clock["fired"])
    return [t for t in triggers(policy, clock)
            if t.key not in fired and clock[t.deadline]["done_at"] is None
            and not (t.action == "escalate" and t.value <= clock["level"])]


def next_due_at(clock: dict) -> datetime | None:
    """The earliest instant anything on the clock can fall due (None: nothing can)."""
    if clock["clock"] != RUNNING:
        return None
    policy = Policy.from_dict(clock["policy"])
    calendar = calendar_of(clock["calendar"])
    times = [when_spent(clock[t.deadline], calendar, t.seconds) for t in _pending(policy, clock)]
    if clock.get("notice_due_at") and clock.get("notice_sent_at") is None:
        times.append(clock["notice_due_at"])
    times = [t for t in times if t is not None]
    return min(times) if times else None


# -- opening a clock ----------------------------------------------------------------------------

WAITING_FOR_ROUTING = "waiting_for_routing"
HELD_MAX = 50  # case events kept before a routing; a case never routed keeps no more


def hold_for_routing(current: dict | None, event: dict) -> dict | None:
    """Keep a case event that arrived before its `application_routed` (or for a case sla
    will never see routed: referred or answered at once), to apply when the clock opens."""
    held = list((current or {}).get("held", []))
    if len(held) >= HELD_MAX:
        return None
    return {"application_id": event["application_id"], WAITING_FOR_ROUTING: True,
            "held": [*held, event]}


def open_clock(routed: dict, policy: Policy, calendar: dict) -> dict:
    """A new clock for a case `application_routed` just assigned."""
    at = _aware(routed["occurred_at"])
    data = routed["data"]
    clock = {
        "application_id": routed["application_id"],
        "correlation_id": routed.get("correlation_id") or routed["application_id"],
        "tracking_code": data["tracking_code"],
        "institution": data["institution"], "unit": data["unit"],
        "category": data["category"], "priority": data.get("priority", "normal"),
        "policy": policy.to_dict(), "calendar": calendar,
        "case_state": "assigned", "clock": RUNNING,
        "started_at": at, "last_at": at, "paused_at": None, "attempt": 1,
        READ: new_ledger(policy.read_hours, at), RESOLVE: new_ledger(policy.resolve_hours, at),
        "fired": [], "level": 0, "escalations": [], "outcomes": {},
        "notice_due_at": at + timedelta(hours=policy.delay_notice_hours),
        "notice_sent_at": None,
    }
    return _planned(clock)


def _planned(clock: dict) -> dict:
    calendar = calendar_of(clock["calendar"])
    clock["read_due_at"] = due_at(clock[READ], calendar) if clock[READ]["done_at"] is None else None
    clock["resolve_due_at"] = (due_at(clock[RESOLVE], calendar)
                               if clock[RESOLVE]["done_at"] is None else None)
    clock["next_due_at"] = next_due_at(clock)
    return clock


# -- the case moves -----------------------------------------------------------------------------

STALE_TOLERATED = ("case_acknowledged", "case_started")


def on_case_event(clock: dict, event: dict, policy: Policy | None = None,
                  calendar_spec: dict | None = None) -> tuple[dict | None, list[dict]]:
    """Fold one case event (routing's `application_routed` again, `application_referred`,
    `case_*`) into the clock. `policy`/`calendar_spec` are the ones for where the case is now
    (given on a move to another unit). Returns `(None, [])` when nothing changes.

    An event older than the last one applied is ignored (a retried delivery overtaken by a
    newer one), except an acknowledgement, which only ever marks the read deadline met.
    """
    etype, at, data = event["type"], _aware(event["occurred_at"]), event["data"]
    if at < clock["last_at"] and etype not in STALE_TOLERATED:
        return None, []
    new = _copy(clock)
    new["last_at"] = max(at, clock["last_at"])
    calendar = calendar_of(new["calendar"])
    events: list[dict] = []
    if new["clock"] == STOPPED and etype not in ("case_rejected", "case_reopened",
                                                 "case_closed"):
        return None, []

    if etype in ("case_acknowledged", "case_started"):
        if new[READ]["done_at"] is not None:
            return None, []
        events += _finish(new, READ, calendar, at)
        new["case_state"] = data.get("state", new["case_state"])
    elif etype == "case_waiting":
        if new["clock"] != RUNNING:
            return None, []
        for deadline in DEADLINES:
            _pause(new[deadline], calendar, at)
        new["clock"], new["paused_at"], new["case_state"] = PAUSED, at, "waiting_citizen"
    elif etype == "case_resumed":
        if new["clock"] != PAUSED:
            return None, []
        for deadline in DEADLINES:
            _resume(new[deadline], at)
        if new["notice_due_at"] and new["paused_at"]:
            new["notice_due_at"] += at - new["paused_at"]
        new["clock"], new["paused_at"] = RUNNING, None
        new["case_state"] = data.get("state", "in_progress")
    elif etype == "case_resolved":
        for deadline in DEADLINES:
            if new[deadline]["done_at"] is None:
                events += _finish(new, deadline, calendar, at)
        new["clock"], new["case_state"] = STOPPED, "resolved"
    elif etype == "case_rejected":
        # The supervisor sent the result back: the unit's resolve time runs on.
        if new["case_state"] != "resolved":
            return None, []
        new[RESOLVE]["done_at"] = None
        _resume(new[RESOLVE], at)
        new["clock"], new["case_state"] = RUNNING, data.get("state", "in_progress")
    elif etype in ("case_closed", "application_referred"):
        if new["clock"] == STOPPED and new["case_state"] in ("closed", "referred"):
            return None, []
        if etype == "case_closed":
            for deadline in DEADLINES:
                if new[deadline]["done_at"] is None:
                    events += _finish(new, deadline, calendar, at)
        for deadline in DEADLINES:
            _pause(new[deadline], calendar, at)
        new["clock"] = STOPPED
        new["case_state"] = "closed" if etype == "case_closed" else "referred"
    elif etype in ("case_transferred", "case_returned", "application_routed"):
        if policy is None or calendar_spec is None:
            raise InvalidDeadline(f"{etype} needs the policy of where the case went")
        _move(new, data, policy, calendar_spec, at)
    elif etype == "case_reopened":
        if policy is None or calendar_spec is None:
            raise InvalidDeadline("case_reopened needs the case's policy")
        _reopen(new, policy, calendar_spec, at)
    else:
        return None, []
    new = _planned(new)
    return new, events + deadline_events(clock, new, at)


def deadline_events(before: dict | None, after: dict, at: datetime) -> list[dict]:
    """`deadline_planned` when the deadlines the citizen and staff see have moved."""
    keys = ("read_due_at", "resolve_due_at", "clock")
    if before is not None and all(before.get(k) == after.get(k) for k in keys):
        return []
    return [_event(after, "deadline_planned", at, {
        "read_due_at": after["read_due_at"], "resolve_due_at": after["resolve_due_at"],
        "clock": after["clock"], **_case_fields(after)})]


def _move(clock: dict, data: dict, policy: Policy, calendar_spec: dict, at: datetime) -> None:
    """Another unit holds the case. It has not read it: the read time starts again. The
    resolve time is the citizen's and keeps running (`on_transfer: keep`, so bouncing a case
    never buys time), or starts again by policy (`restart`). The level never goes down."""
    old_calendar = calendar_of(clock["calendar"])
    for deadline in DEADLINES:
        _pause(clock[deadline], old_calendar, at)
    clock["unit"] = data.get("unit") or clock["unit"]
    clock["institution"] = data.get("institution") or clock["institution"]
    clock["policy"], clock["calendar"] = policy.to_dict(), calendar_spec
    running = clock["clock"] == RUNNING
    clock[READ] = new_ledger(policy.read_hours, at if running else None)
    fired = [key for key in clock["fired"] if not key.startswith("read:")]
    if policy.on_transfer == "restart":
        clock[RESOLVE] = new_ledger(policy.resolve_hours, at if running else None)
        fired = [key for key in fired if not key.startswith("resolve:")]
    else:
        clock[RESOLVE]["hours"] = float(policy.resolve_hours)
        if running:
            _resume(clock[RESOLVE], at)
    clock["fired"] = fired
    clock["case_state"] = data.get("state") or "assigned"


def _reopen(clock: dict, policy: Policy, calendar_spec: dict, at: datetime) -> None:
    """The citizen reopened the case: the unit must read it again; the resolve time starts
    again (`on_reopen: restart`) or continues from where it stopped (`continue`)."""
    clock["policy"], clock["calendar"] = policy.to_dict(), calendar_spec
    clock["attempt"] += 1
    clock[READ] = new_ledger(policy.read_hours, at)
    fired = [key for key in clock["fired"] if not key.startswith("read:")]
    if policy.on_reopen == "restart":
        clock[RESOLVE] = new_ledger(policy.resolve_hours, at)
        fired = [key for key in fired if not key.startswith("resolve:")]
        clock["notice_due_at"] = at + timedelta(hours=policy.delay_notice_hours)
        clock["notice_sent_at"] = None
    else:
        clock[RESOLVE]["done_at"] = None
        _resume(clock[RESOLVE], at)
    clock["fired"] = fired
    clock["clock"], clock["paused_at"], clock["case_state"] = RUNNING, None, "assigned"


def _finish(clock: dict, deadline: str, calendar: Calendar, at: datetime) -> list[dict]:
    """The deadline is met or missed at `at`: stop its ledger and record the outcome."""
    ledger = clock[deadline]
    due = due_at(ledger, calendar)
    _pause(ledger, calendar, at)
    ledger["done_at"] = at
    used = ledger["spent"] / 3600
    overrun = max(used - ledger["hours"], 0.0)
    outcome = {
        "deadline": deadline, "outcome": "breached" if overrun > 0 else "met",
        "due_at": due, "completed_at": at, "hours": ledger["hours"],
        "used_hours": round(used, 3), "overrun_hours": round(overrun, 3),
        "attempt": clock["attempt"], "level": clock["level"],
    }
    clock["outcomes"][deadline] = outcome
    return [_event(clock, "sla_outcome_recorded", at, {**outcome, **_case_fields(clock)})]


# -- firing -------------------------------------------------------------------------------------

def tick(clock: dict, now: datetime, ladder: Ladder | None = None
         ) -> tuple[dict | None, list[dict]]:
    """Fire everything on the clock that is due by `now`, once. Returns `(None, [])` when
    nothing was due (nothing to store). `ladder` names who stands at each level."""
    now = _aware(now)
    if clock["clock"] != RUNNING:
        return None, []
    policy = Policy.from_dict(clock["policy"])
    calendar = calendar_of(clock["calendar"])
    new = _copy(clock)
    events: list[dict] = []
    due = [(when_spent(new[t.deadline], calendar, t.seconds), t) for t in _pending(policy, new)
           if spent(new[t.deadline], calendar, now) >= t.seconds]
    due.sort(key=lambda pair: pair[0])  # the two ledgers' triggers, in the order they fell due
    warnings = [t for _, t in due if t.action == "warn"]
    for fell_due, trigger in due:
        new["fired"].append(trigger.key)
        if trigger.action == "warn" and trigger is warnings[-1]:
            # A late sweep that finds 50 % and 80 % both passed warns once, at 80 %.
            events.append(_event(new, "sla_warned", now, {
                "deadline": trigger.deadline, "percent_used": trigger.value,
                "due_at": due_at(new[trigger.deadline], calendar), **_case_fields(new)}))
        elif trigger.action == "breach":
            events.append(_event(new, "sla_breached", now, {
                "deadline": trigger.deadline, "due_at": fell_due, **_case_fields(new)}))
        elif trigger.action == "escalate":
            events += _climb(new, trigger, now, ladder or {})
    if (new.get("notice_due_at") and new.get("notice_sent_at") is None
            and now >= new["notice_due_at"] and new[RESOLVE]["done_at"] is None):
        new["notice_sent_at"] = now
        hours_open = int((now - new["started_at"]).total_seconds() // 3600)
        events.append(_event(new, "delay_notice_due", now, {
            "hours_open": hours_open, "tracking_code": new["tracking_code"]}))
    if new["fired"] == clock["fired"] and new.get("notice_sent_at") == clock.get("notice_sent_at"):
        return None, []
    return _planned(new), events


def _climb(clock: dict, trigger: Trigger, now: datetime, ladder: Ladder) -> list[dict]:
    """Escalate one level at a time up to the trigger's level, one event per step."""
    events = []
    for level in range(clock["level"] + 1, trigger.value + 1):
        to_staff = ladder.get(level)
        step = {"from_level": level - 1, "to_level": level, "to_role": LEVEL_ROLES[level],
                "to_staff": to_staff, "deadline": trigger.deadline, "at": now}
        clock["escalations"].append(step)
        clock["level"] = level
        events.append(_event(clock, "case_escalated", now, {
            **{k: v for k, v in step.items() if k != "at"}, **_case_fields(clock)}))
    return events


def _copy(clock: dict) -> dict:
    """A copy the folds may change: what they change in place is copied (the ledgers, the
    lists of fired keys and steps, the outcomes); the policy and calendar are only replaced.
    A deep copy cost more than the rest of a tick."""
    new = dict(clock)
    for deadline in DEADLINES:
        new[deadline] = dict(clock[deadline])
    new["fired"] = list(clock["fired"])
    new["escalations"] = list(clock["escalations"])
    new["outcomes"] = dict(clock["outcomes"])
    return new


def _case_fields(clock: dict) -> dict:
    return {"tracking_code": clock["tracking_code"], "unit": clock["unit"],
            "institution": clock["institution"], "category": clock["category"],
            "priority": clock["priority"]}


def _event(clock: dict, event_type: str, at: datetime, data: dict) -> dict:
    return make_event(event_type, clock["application_id"], data,
                      correlation_id=clock.get("correlation_id"), occurred_at=at)


def waited_at_each_step(clock: dict, now: datetime) -> list[dict]:
    """The clock's escalations with how long the case stayed at each level (the mayor's
    list): until the next step, or until now for the last one."""
    steps = clock.get("escalations", [])
    out = []
    for i, step in enumerate(steps):
        until = steps[i + 1]["at"] if i + 1 < len(steps) else now
        out.append({**step, "waited_hours": round((until - step["at"]).total_seconds() / 3600,
                                                  2)})
    return out


def percent_used(clock: dict, deadline: str, now: datetime) -> float:
    """How much of a deadline's time the case has used by `now`, in percent."""
    ledger = clock[deadline]
    return round(100 * spent(ledger, calendar_of(clock["calendar"]), now)
                 / (ledger["hours"] * 3600), 1)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise InvalidDeadline("times must be timezone-aware")
    return moment
