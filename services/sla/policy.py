"""SLA policies and calendars as data: which rules a case's clock runs by (issue 10).

Pure: no nameko, no pymongo. A policy rule is a partial set of settings with a scope — any of
category, priority and institution. The rules that match a case are applied from the least to
the most specific (the default, then by priority, by category, by category and priority, by
institution, …), each overriding only the settings it names, so an institution can shorten
one deadline without restating the rest. Read and resolve hours default to the catalogue's
`read_hours` / `resolve_hours`, which routing puts on `application_routed`.

Calendars are working hours per institution (or unit), or round the clock; a policy may force
round the clock (urgent cases, the call centre), whatever the institution's hours are.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from datetime import time

from services.sla.calendar import ISTANBUL, ROUND_THE_CLOCK, RoundTheClock, WorkingCalendar

MAX_LEVEL = 4  # 0 unit · 1 supervisor · 2 director · 3 deputy mayor · 4 mayor (design §4)
SCOPE_KEYS = ("category", "priority", "institution")
ON_TRANSFER = ("keep", "restart")
ON_REOPEN = ("restart", "continue")
CALENDARS = ("institution", "round_the_clock")


class InvalidPolicy(ValueError):
    """Settings that no clock can run by; `field` names the offending setting."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Policy:
    """Everything a case's clock runs by. Hours are working hours of the case's calendar,
    except `delay_notice_hours`, which are the citizen's wall-clock hours (seed 001)."""

    read_hours: float
    resolve_hours: float
    warn_at: tuple[int, ...] = (50, 80)  # percent of the resolve time
    delay_notice_hours: float = 48
    # Working hours after a breach at which the case climbs to level 1, 2, 3, 4; counted
    # from the deadline it missed, each step from the previous one.
    ladder_hours: tuple[float, ...] = (0, 8, 8, 8)
    unread_to_mayor: bool = False  # seed 000: unread past its read time → the mayor's profile
    calendar: str = "institution"  # or "round_the_clock"
    on_transfer: str = "keep"  # the resolve clock keeps running, or restarts for the new unit
    on_reopen: str = "restart"  # a reopened case gets fresh time, or continues where it stopped
    rules: tuple[str, ...] = ()  # ids of the rules applied, for staff to see why

    def __post_init__(self) -> None:
        # not `asdict`: it deep-copies, and a clock builds its policy on every tick
        check_settings({f.name: getattr(self, f.name) for f in fields(self)})

    def to_dict(self) -> dict:
        return {**asdict(self), "warn_at": list(self.warn_at),
                "ladder_hours": list(self.ladder_hours), "rules": list(self.rules)}

    @classmethod
    def from_dict(cls, data: dict) -> Policy:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("warn_at", "ladder_hours", "rules"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def escalation_offsets(self) -> list[float]:
        """Working hours after the breach at which each level is reached (cumulative)."""
        total, offsets = 0.0, []
        for hours in self.ladder_hours:
            total += hours
            offsets.append(total)
        return offsets


SETTINGS = tuple(f.name for f in fields(Policy) if f.name != "rules")


def check_settings(settings: dict) -> None:
    """Refuse settings no clock can run by (only the keys present are checked)."""
    for key in ("read_hours", "resolve_hours"):
        value = settings.get(key)
        if value is not None and not (0 < value <= 24 * 366):
            raise InvalidPolicy(key, "must be more than 0 and at most a year of hours")
    if settings.get("delay_notice_hours") is not None and not (
            0 < settings["delay_notice_hours"] <= 24 * 366):
        raise InvalidPolicy("delay_notice_hours", "must be more than 0 and at most a year")
    warn_at = settings.get("warn_at")
    if warn_at is not None and (any(not 0 < p < 100 for p in warn_at)
                                or list(warn_at) != sorted(set(warn_at))):
        raise InvalidPolicy("warn_at", "percentages between 1 and 99, ascending, no repeats")
    ladder = settings.get("ladder_hours")
    if ladder is not None and (len(ladder) != MAX_LEVEL or any(h < 0 for h in ladder)):
        raise InvalidPolicy("ladder_hours", f"exactly {MAX_LEVEL} non-negative step intervals "
                                            "(supervisor, director, deputy mayor, mayor)")
    for key, allowed in (("calendar", CALENDARS), ("on_transfer", ON_TRANSFER),
                         ("on_reopen", ON_REOPEN)):
        if settings.get(key) is not None and settings[key] not in allowed:
            raise InvalidPolicy(key, f"must be one of {', '.join(allowed)}")


def rule_id(scope: dict) -> str:
    """A rule's key from its scope: `default`, `category=road_damage`, … in a fixed order."""
    parts = [f"{key}={scope[key]}" for key in SCOPE_KEYS if scope.get(key)]
    return ",".join(parts) or "default"


def _specificity(scope: dict) -> tuple[int, int, int, int]:
    # An institution's own rule beats any shared one; then category beats priority.
    has = {key: bool(scope.get(key)) for key in SCOPE_KEYS}
    return (has["institution"], has["category"], has["priority"], sum(has.values()))


# Shipped with the system; a stored rule with the same scope replaces one (design: emergencies
# are worked round the clock, seed 004).
BUILT_IN_RULES = (
    {"scope": {"priority": "urgent"}, "settings": {"calendar": "round_the_clock"}},
)


def effective_policy(rules: list[dict], *, category: str, priority: str, institution: str,
                     read_hours: float, resolve_hours: float) -> Policy:
    """The policy of one case: the catalogue's hours overridden by every matching rule, from
    the least specific to the most. A rule is `{"scope": {...}, "settings": {...}}`; the
    built-in rules apply unless a stored rule has the same scope."""
    stored = {rule_id(rule["scope"]) for rule in rules}
    rules = [*(r for r in BUILT_IN_RULES if rule_id(r["scope"]) not in stored), *rules]
    case = {"category": category, "priority": priority, "institution": institution}
    matching = [rule for rule in rules
                if all(rule["scope"].get(key) in (None, case[key]) for key in SCOPE_KEYS)]
    matching.sort(key=lambda rule: _specificity(rule["scope"]))
    policy = Policy(read_hours=read_hours, resolve_hours=resolve_hours)
    applied = []
    for rule in matching:
        settings = {k: v for k, v in rule["settings"].items() if k in SETTINGS and v is not None}
        for key in ("warn_at", "ladder_hours"):
            if key in settings:
                settings[key] = tuple(settings[key])
        policy = replace(policy, **settings)
        applied.append(rule_id(rule["scope"]))
    return replace(policy, rules=tuple(applied))


# -- calendars ----------------------------------------------------------------------------------

DEFAULT_CALENDAR = {"opens": "08:30", "closes": "17:30", "lunch": None,
                    "weekdays": [0, 1, 2, 3, 4], "timezone": ISTANBUL, "holidays": True,
                    "round_the_clock": False}


def _time(value: str, field: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError) as exc:
        raise InvalidPolicy(field, "must be HH:MM") from exc


def calendar_of(spec: dict | None) -> WorkingCalendar | RoundTheClock:
    """The calendar a stored spec describes (the default office hours for None)."""
    spec = {**DEFAULT_CALENDAR, **(spec or {})}
    if spec["round_the_clock"]:
        return ROUND_THE_CLOCK
    lunch = spec.get("lunch")
    try:
        return WorkingCalendar(
            opens=_time(spec["opens"], "opens"), closes=_time(spec["closes"], "closes"),
            lunch=(_time(lunch[0], "lunch"), _time(lunch[1], "lunch")) if lunch else None,
            weekdays=frozenset(spec["weekdays"]), timezone=spec["timezone"],
            turkish_holidays=bool(spec["holidays"]),
        )
    except ValueError as exc:
        if isinstance(exc, InvalidPolicy):
            raise
        raise InvalidPolicy("calendar", str(exc)) from exc


def clock_calendar(policy: Policy, institution_calendar: dict | None) -> dict:
    """The calendar spec a case's clock runs by: its institution's, unless the policy says
    round the clock."""
    if policy.calendar == "round_the_clock":
        return {**DEFAULT_CALENDAR, "round_the_clock": True}
    return {**DEFAULT_CALENDAR, **(institution_calendar or {})}
