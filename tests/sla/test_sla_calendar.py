"""Working-time arithmetic (issue 10): office hours in Istanbul, weekends, Turkish public
holidays with their half-day eves, year ends, and the round-the-clock calendar."""
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.sla.calendar import OFFICE_HOURS, ROUND_THE_CLOCK, WorkingCalendar

IST = ZoneInfo("Europe/Istanbul")


def at(year, month, day, hour=0, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=IST)


def test_hours_inside_one_working_day():
    assert OFFICE_HOURS.add(at(2026, 12, 2, 9), 3) == at(2026, 12, 2, 12)


def test_a_friday_afternoon_deadline_crosses_the_weekend():
    # Friday 4 December 2026, 16:30: one hour left that day, seven on Monday from 08:30
    assert OFFICE_HOURS.add(at(2026, 12, 4, 16, 30), 8) == at(2026, 12, 7, 15, 30)


def test_a_start_outside_working_hours_counts_from_the_next_opening():
    assert OFFICE_HOURS.add(at(2026, 12, 5, 11), 1) == at(2026, 12, 7, 9, 30)  # Saturday
    assert OFFICE_HOURS.add(at(2026, 12, 2, 20), 1) == at(2026, 12, 3, 9, 30)  # evening


def test_kurban_bayrami_and_its_half_day_eve_are_skipped():
    # 2026: the eve (Tuesday 26 May) works until 13:00; 27–30 May are holidays; 31 May is a
    # Sunday. From the eve's 12:00, 1 h ends the eve, the next 1 h is Monday 1 June 09:30.
    assert OFFICE_HOURS.add(at(2026, 5, 26, 12), 2) == at(2026, 6, 1, 9, 30)
    assert OFFICE_HOURS.between(at(2026, 5, 26, 8, 30), at(2026, 6, 1, 8, 30)) == \
        timedelta(hours=4, minutes=30)


def test_the_year_end_skips_new_years_day():
    # Thursday 31 Dec 2026 17:00: 30 min that day; Friday 1 Jan 2027 is a holiday, then the
    # weekend; the other 1.5 h on Monday 4 January from 08:30
    assert OFFICE_HOURS.add(at(2026, 12, 31, 17), 2) == at(2027, 1, 4, 10)


def test_a_lunch_break_is_not_working_time():
    with_lunch = WorkingCalendar(lunch=(time(12, 0), time(13, 0)))
    assert with_lunch.add(at(2026, 12, 2, 11), 2) == at(2026, 12, 2, 14)
    assert with_lunch.between(at(2026, 12, 2, 8, 30), at(2026, 12, 2, 17, 30)) == \
        timedelta(hours=8)


def test_add_and_between_agree():
    start = at(2026, 5, 22, 15, 10)
    for hours in (0.5, 3, 9, 17.25, 40, 200):
        end = OFFICE_HOURS.add(start, hours)
        assert OFFICE_HOURS.between(start, end) == timedelta(hours=hours)


def test_round_the_clock_counts_every_hour_and_answers_in_the_callers_zone():
    start = datetime(2026, 5, 26, 12, tzinfo=UTC)
    assert ROUND_THE_CLOCK.add(start, 48) == start + timedelta(hours=48)
    assert OFFICE_HOURS.add(start, 1).tzinfo is UTC


def test_naive_times_and_impossible_calendars_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE_HOURS.add(datetime(2026, 12, 2, 9), 1)
    with pytest.raises(ValueError, match="opens"):
        WorkingCalendar(opens=time(18), closes=time(8))
    with pytest.raises(ValueError, match="no working time"):
        WorkingCalendar(weekdays=frozenset()).add(at(2026, 12, 2), 1)
