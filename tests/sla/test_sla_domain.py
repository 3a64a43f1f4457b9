"""SLA deadlines: computed from the routing, re-planned on re-routing without a clock reset."""
from datetime import UTC, datetime, timedelta

import pytest

from services.common.events import load_event, make_event
from services.sla.domain import (
    DELAY_NOTICE,
    READ,
    RESOLVE,
    WARN,
    InvalidDeadline,
    due_times,
    next_due_at,
    on_routed,
    plan_timers,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def routed(at: datetime = T0, *, unit: str = "mezitli_bld.works", read_hours: float = 4,
           resolve_hours: float = 24, category: str = "road_damage") -> dict:
    """An `application_routed` as a handler receives it (loaded: datetimes parsed)."""
    return load_event(make_event("application_routed", "app-1", {
        "tracking_code": "K7M4QX2D9", "category": category, "tier": "district",
        "institution": unit.split(".")[0], "institution_name": "Mezitli Belediyesi",
        "unit": unit, "unit_name": "Fen İşleri Müdürlüğü", "rule": "test",
        "priority": "high", "read_hours": read_hours, "resolve_hours": resolve_hours,
    }, occurred_at=at))


def by_kind(timer_set: dict) -> dict:
    return {timer["kind"]: timer for timer in timer_set["timers"]}


def test_due_times_count_from_the_start_and_warn_at_three_quarters_of_the_resolve_time():
    due = due_times(T0, read_hours=4, resolve_hours=24)
    assert due == {
        READ: T0 + timedelta(hours=4),
        WARN: T0 + timedelta(hours=18),
        RESOLVE: T0 + timedelta(hours=24),
        DELAY_NOTICE: T0 + timedelta(hours=48),
    }


def test_fractional_hours_are_kept_to_the_minute():
    due = due_times(T0, read_hours=0.5, resolve_hours=1.5)
    assert due[READ] == T0 + timedelta(minutes=30)
    assert due[WARN] == T0 + timedelta(minutes=67, seconds=30)
    assert due[RESOLVE] == T0 + timedelta(minutes=90)


def test_the_delay_notice_is_due_at_48_hours_whatever_the_category_allows():
    assert due_times(T0, 1, 8)[DELAY_NOTICE] == T0 + timedelta(hours=48)
    assert due_times(T0, 72, 720)[DELAY_NOTICE] == T0 + timedelta(hours=48)


@pytest.mark.parametrize(("read_hours", "resolve_hours"), [(0, 24), (4, 0), (-1, 24), (4, -3)])
def test_hours_that_are_not_positive_are_refused(read_hours, resolve_hours):
    with pytest.raises(InvalidDeadline):
        due_times(T0, read_hours, resolve_hours)


def test_a_naive_start_time_is_refused():
    with pytest.raises(InvalidDeadline):
        due_times(datetime(2025, 3, 3, 9, 0), 4, 24)


def test_the_next_due_time_is_the_earliest_unfired_one():
    timers = plan_timers(due_times(T0, 4, 24))
    assert next_due_at(timers) == T0 + timedelta(hours=4)
    timers[0]["fired_at"] = T0 + timedelta(hours=4)  # read fired
    assert next_due_at(timers) == T0 + timedelta(hours=18)
    for timer in timers:
        timer["fired_at"] = T0
    assert next_due_at(timers) is None


def test_when_the_read_deadline_is_later_the_warning_comes_first():
    timers = plan_timers(due_times(T0, read_hours=48, resolve_hours=8))
    assert next_due_at(timers) == T0 + timedelta(hours=6)


def test_a_routed_case_gets_an_open_timer_set_at_level_0_started_when_it_was_routed():
    timer_set, events = on_routed(None, routed())
    assert events == []
    assert timer_set["application_id"] == "app-1"
    assert timer_set["state"] == "open"
    assert timer_set["level"] == 0
    assert timer_set["started_at"] == T0 == timer_set["routed_at"]
    assert (timer_set["institution"], timer_set["unit"], timer_set["category"],
            timer_set["priority"]) == ("mezitli_bld", "mezitli_bld.works", "road_damage", "high")
    assert [t["kind"] for t in timer_set["timers"]] == [READ, WARN, RESOLVE, DELAY_NOTICE]
    assert all(t["fired_at"] is None for t in timer_set["timers"])
    assert by_kind(timer_set)[RESOLVE]["due_at"] == T0 + timedelta(hours=24)
    assert timer_set["next_due_at"] == T0 + timedelta(hours=4)


def test_re_routing_keeps_the_citizens_clock_and_restarts_only_the_read_deadline():
    first, _ = on_routed(None, routed(T0))
    first["level"] = 2  # escalated meanwhile
    later = T0 + timedelta(hours=10)
    second, _ = on_routed(first, routed(later, unit="mersin_bb.roads", read_hours=2,
                                        resolve_hours=36))
    assert second["unit"] == "mersin_bb.roads"
    assert second["started_at"] == T0
    assert second["routed_at"] == later
    assert second["level"] == 2
    timers = by_kind(second)
    assert timers[READ]["due_at"] == later + timedelta(hours=2)
    assert timers[RESOLVE]["due_at"] == T0 + timedelta(hours=36)
    assert timers[WARN]["due_at"] == T0 + timedelta(hours=27)
    assert second["next_due_at"] == later + timedelta(hours=2)


def test_re_routing_keeps_fired_timers_whose_deadline_did_not_move():
    first, _ = on_routed(None, routed(T0))
    fired = T0 + timedelta(hours=48, seconds=5)
    for timer in first["timers"]:
        if timer["kind"] in (DELAY_NOTICE, WARN):
            timer["fired_at"] = fired
    second, _ = on_routed(first, routed(T0 + timedelta(hours=50), resolve_hours=48))
    timers = by_kind(second)
    assert timers[DELAY_NOTICE]["fired_at"] == fired  # same deadline: never notify twice
    assert timers[WARN]["fired_at"] is None  # the deadline moved: it is a new warning


def test_a_routing_older_than_the_one_applied_changes_nothing():
    current, _ = on_routed(None, routed(T0 + timedelta(hours=1), unit="mersin_bb.roads"))
    assert on_routed(current, routed(T0, unit="mezitli_bld.works")) == (None, [])


def test_a_timer_set_that_is_no_longer_open_is_not_reopened_by_a_routing():
    current, _ = on_routed(None, routed(T0))
    current["state"] = "closed"
    assert on_routed(current, routed(T0 + timedelta(hours=1))) == (None, [])
