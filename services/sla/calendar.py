"""Working time: when a deadline of so many working hours falls (issue 10, calendars).

Pure: no nameko, no pymongo. A `WorkingCalendar` counts hours inside an institution's working
hours — by default Monday to Friday, 08:30–17:30 in Europe/Istanbul, without a lunch break
unless one is configured — and skips Turkey's public holidays as the `holidays` package lists
them, religious ones included. On a half-day eve (the afternoon before Ramazan and Kurban
Bayramı, and 28 October) work ends at 13:00. `ROUND_THE_CLOCK` counts every hour (the call
centre, emergencies).

`add(start, hours)` is the instant `hours` working hours after `start`; `between(a, b)` the
working time from `a` to `b`. Both take and give timezone-aware datetimes; a start outside
working time counts from the next opening.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

ISTANBUL = "Europe/Istanbul"
HALF_DAY_CLOSE = time(13, 0)  # `holidays` names the eves "(from 1pm)"
MAX_DAYS = 3660  # a deadline further than ten years ahead is a mistake, not a deadline


@lru_cache(maxsize=64)
def _turkish_holidays(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(whole-day holidays, half-day eves) of `year` in Turkey."""
    whole = holidays.Turkey(years=year, categories=("public",))
    half = holidays.Turkey(years=year, categories=("half_day",))
    return frozenset(whole), frozenset(half) - frozenset(whole)


@dataclass(frozen=True)
class WorkingCalendar:
    """Working hours of an institution, in its time zone."""

    opens: time = time(8, 30)
    closes: time = time(17, 30)
    lunch: tuple[time, time] | None = None
    weekdays: frozenset[int] = field(default_factory=lambda: frozenset(range(5)))  # Mon=0
    timezone: str = ISTANBUL
    turkish_holidays: bool = True

    def __post_init__(self) -> None:
        if not self.opens < self.closes:
            raise ValueError(f"opens {self.opens} must be before closes {self.closes}")
        if self.lunch and not self.opens <= self.lunch[0] < self.lunch[1] <= self.closes:
            raise ValueError("lunch must lie inside the working day")

    # -- one day --------------------------------------------------------------------------------

    def periods(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working periods of `day` as aware datetimes, in order (none on a day off)."""
        if day.weekday() not in self.weekdays:
            return []
        closes = self.closes
        if self.turkish_holidays:
            whole, half = _turkish_holidays(day.year)
            if day in whole:
                return []
            if day in half:
                closes = min(closes, HALF_DAY_CLOSE)
        if closes <= self.opens:
            return []
        zone = ZoneInfo(self.timezone)
        spans = [(self.opens, closes)]
        if self.lunch:
            start, end = self.lunch
            spans = [(a, b) for a, b in ((self.opens, min(start, closes)),
                                         (max(end, self.opens), closes)) if a < b]
        return [(datetime.combine(day, a, zone), datetime.combine(day, b, zone))
                for a, b in spans]

    # -- arithmetic -----------------------------------------------------------------------------

    def add(self, start: datetime, hours: float) -> datetime:
        """The instant `hours` working hours after `start`."""
        _aware(start)
        if hours < 0:
            raise ValueError("hours must not be negative")
        left = timedelta(hours=hours)
        local = start.astimezone(ZoneInfo(self.timezone))
        day = local.date()
        for _ in range(MAX_DAYS):
            for opens, closes in self.periods(day):
                begin = max(opens, local)
                if begin >= closes:
                    continue
                if begin + left <= closes:
                    return (begin + left).astimezone(start.tzinfo)
                left -= closes - begin
            day += timedelta(days=1)
        raise ValueError(f"no working time within {MAX_DAYS} days")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time from `start` to `end` (zero when `end` is not after `start`)."""
        _aware(start)
        _aware(end)
        zone = ZoneInfo(self.timezone)
        total = timedelta(0)
        day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
        while day <= last:
            for opens, closes in self.periods(day):
                a, b = max(opens, start), min(closes, end)
                if a < b:
                    total += b - a
            day += timedelta(days=1)
        return total


class RoundTheClock:
    """Every hour counts: the call centre and emergencies."""

    def add(self, start: datetime, hours: float) -> datetime:
        _aware(start)
        if hours < 0:
            raise ValueError("hours must not be negative")
        return start + timedelta(hours=hours)

    def between(self, start: datetime, end: datetime) -> timedelta:
        _aware(start)
        _aware(end)
        return max(end - start, timedelta(0))


ROUND_THE_CLOCK = RoundTheClock()
OFFICE_HOURS = WorkingCalendar()


def _aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
