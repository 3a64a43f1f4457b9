"""A case's SLA clock on a controllable clock: deadlines in working time, pause and resume,
transfer, return and reopen, warnings, the 48-hour notice and the ladder up to the mayor."""
from datetime import UTC, datetime, timedelta

import pytest

from services.common.events import load_event, make_event
from services.sla import domain
from services.sla.domain import PAUSED, RUNNING, STOPPED
from services.sla.policy import Policy, clock_calendar

# Tuesday 1 December 2026, 09:00 in Istanbul (06:00 UTC): a working morning.
T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
LADDER = {0: "exp-1", 1: "sup-1", 2: "dir-1", 3: "dep-1", 4: "mayor-1"}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant in December 2026, given in Istanbul time (UTC+3)."""
    return datetime(2026, 12, day, hour - 3, minute, tzinfo=UTC)


def event(event_type: str, when: datetime, **data) -> dict:
    if event_type == "application_routed":
        payload = {"tracking_code": "K7M4QX2D9", "category": "road_damage", "tier": "district",
                   "institution": "mezitli_bld", "institution_name": "Mezitli",
                   "unit": "mezitli_bld.works", "unit_name": "Fen İşleri", "rule": "t",
                   "priority": "normal", "read_hours": 4, "resolve_hours": 24, **data}
    else:
        payload = {"state": "acknowledged", **data}
    return load_event(make_event(event_type, "app-1", payload, occurred_at=when))


def opened(policy: Policy | None = None, when: datetime = T0) -> dict:
    policy = policy or Policy(read_hours=4, resolve_hours=24)
    return domain.open_clock(event("application_routed", when), policy,
                             clock_calendar(policy, None))


def run(clock: dict, until: datetime, step: timedelta = timedelta(minutes=30)):
    """Tick the clock every `step` up to `until`; returns the clock and what fired, in order."""
    fired = []
    now = clock["started_at"]
    while now <= until:
        new, events = domain.tick(clock, now, LADDER)
        if new is not None:
            clock = new
            fired += [(now, e["type"], e["data"]) for e in events]
        now += step
    return clock, fired


def outcomes(events: list[dict]) -> list[dict]:
    return [e["data"] for e in events if e["type"] == "sla_outcome_recorded"]


def kinds(fired) -> list[str]:
    out = []
    for _, etype, data in fired:
        if etype == "case_escalated":
            out.append(f"escalated:{data['to_level']}")
        elif etype == "sla_warned":
            out.append(f"warned:{data['percent_used']}")
        elif etype == "sla_breached":
            out.append(f"breached:{data['deadline']}")
        else:
            out.append(etype)
    return out


def test_deadlines_count_working_hours_in_istanbul():
    clock = opened()
    # 4 working hours from Tuesday 09:00 → 13:00; 24 → Thursday 15:00 (9 h a day).
    assert clock["read_due_at"] == at(1, 13)
    assert clock["resolve_due_at"] == at(3, 15)
    assert clock["next_due_at"] == at(1, 13)


def test_a_case_routed_on_friday_evening_is_due_after_the_weekend():
    clock = opened(when=at(4, 17))  # Friday 17:00: half an hour left
    assert clock["read_due_at"] == at(7, 12)  # 0.5 h Friday + 3.5 h Monday from 08:30


def test_a_round_the_clock_policy_counts_every_hour():
    policy = Policy(read_hours=4, resolve_hours=24, calendar="round_the_clock")
    clock = opened(policy, when=at(4, 17))
    assert clock["resolve_due_at"] == at(5, 17)


def test_an_unread_case_climbs_the_whole_ladder_step_by_step_up_to_the_mayor():
    clock, fired = run(opened(), at(8, 18))
    assert kinds(fired) == [
        "breached:read", "escalated:1", "warned:50", "escalated:2", "delay_notice_due",
        "warned:80", "escalated:3", "breached:resolve", "escalated:4",
    ]
    steps = [(d["from_level"], d["to_level"], d["to_role"], d["to_staff"])
             for _, t, d in fired if t == "case_escalated"]
    assert steps == [(0, 1, "supervisor", "sup-1"), (1, 2, "director", "dir-1"),
                     (2, 3, "deputy_mayor", "dep-1"), (3, 4, "mayor", "mayor-1")]
    assert clock["level"] == 4
    assert clock["next_due_at"] is None  # nothing more can fall due
    # the read deadline at 13:00 and the supervisor at once, then 8 working hours per step
    when = {d["to_level"]: now for now, t, d in fired if t == "case_escalated"}
    assert when == {1: at(1, 13), 2: at(2, 12), 3: at(3, 11), 4: at(4, 10)}


def test_firing_is_once_whatever_ticks_again():
    clock, fired = run(opened(), at(2, 13))
    again, events = domain.tick(clock, at(2, 13), LADDER)
    assert (again, events) == (None, [])
    assert kinds(fired).count("escalated:1") == 1


def test_a_late_sweep_fires_every_step_at_once_in_order_and_warns_only_at_the_highest():
    clock = opened()
    new, events = domain.tick(clock, at(10, 12), LADDER)
    types = [(e["type"], e["data"].get("to_level") or e["data"].get("percent_used"))
             for e in events]
    assert types == [("sla_breached", None), ("case_escalated", 1), ("case_escalated", 2),
                     ("sla_warned", 80), ("case_escalated", 3), ("sla_breached", None),
                     ("case_escalated", 4), ("delay_notice_due", None)]
    assert new["level"] == 4


def test_an_unread_case_goes_straight_to_the_mayor_where_the_policy_says_so():
    policy = Policy(read_hours=4, resolve_hours=24, unread_to_mayor=True)
    clock, fired = run(opened(policy), at(1, 14))
    escalations = [d for _, t, d in fired if t == "case_escalated"]
    assert [(d["from_level"], d["to_level"]) for d in escalations] == [
        (0, 1), (1, 2), (2, 3), (3, 4)]
    assert {now for now, t, _ in fired if t == "case_escalated"} == {at(1, 13)}
    assert clock["level"] == 4


def test_acknowledging_in_time_meets_the_read_deadline_and_stops_its_ladder():
    clock = opened()
    clock, events = domain.on_case_event(clock, event("case_acknowledged", at(1, 11)))
    [outcome] = [e for e in events if e["type"] != "deadline_planned"]
    assert outcome["type"] == "sla_outcome_recorded"
    assert (outcome["data"]["deadline"], outcome["data"]["outcome"]) == ("read", "met")
    assert outcome["data"]["used_hours"] == 2.0
    _, fired = run(clock, at(3, 12))
    assert "breached:read" not in kinds(fired)
    assert "escalated:1" not in kinds(fired)


def test_a_late_acknowledgement_records_by_how_much_the_read_deadline_was_missed():
    clock = opened()
    clock, events = domain.on_case_event(clock, event("case_acknowledged", at(2, 10)))
    data = outcomes(events)[0]
    # due Tuesday 13:00; read Wednesday 10:00 = 4.5 h Tuesday afternoon + 1.5 h Wednesday
    assert (data["outcome"], data["overrun_hours"], data["used_hours"]) == ("breached", 6.0, 10.0)


def test_waiting_for_the_citizen_pauses_every_deadline_and_resuming_continues_them():
    clock = opened()
    clock, _ = domain.on_case_event(clock, event("case_acknowledged", at(1, 10)))
    clock, _ = domain.on_case_event(clock, event("case_waiting", at(1, 12),
                                                 state="waiting_citizen"))
    assert clock["clock"] == PAUSED
    assert clock["next_due_at"] is None and clock["resolve_due_at"] is None
    assert domain.tick(clock, at(20, 12), LADDER) == (None, [])  # nothing fires while waiting
    clock, _ = domain.on_case_event(clock, event("case_resumed", at(7, 9),
                                                 state="in_progress"))
    assert clock["clock"] == RUNNING
    # 3 h were used before the wait; 21 h from Monday 7th 09:00 → Wednesday 9th 12:00
    assert clock["resolve_due_at"] == at(9, 12)
    # the citizen's 48 hours do not count the wait either: 6 days and 21 h later
    assert clock["notice_due_at"] == T0 + timedelta(hours=48) + (at(7, 9) - at(1, 12))


def test_resolving_stops_the_clock_and_records_the_outcome_and_rejecting_runs_it_on():
    clock = opened()
    clock, _ = domain.on_case_event(clock, event("case_acknowledged", at(1, 10)))
    clock, events = domain.on_case_event(clock, event("case_resolved", at(2, 10),
                                                      state="resolved"))
    assert clock["clock"] == STOPPED and clock["next_due_at"] is None
    assert [(d["deadline"], d["outcome"]) for d in outcomes(events)] == [("resolve", "met")]
    assert domain.tick(clock, at(30, 10), LADDER) == (None, [])
    clock, _ = domain.on_case_event(clock, event("case_rejected", at(2, 11),
                                                 state="in_progress"))
    assert clock["clock"] == RUNNING
    # 10 h used; the remaining 14 h from Wednesday 11:00 → Thursday 16:00
    assert clock["resolve_due_at"] == at(3, 16)


def test_a_transfer_restarts_the_read_time_for_the_new_unit_but_keeps_the_resolve_time():
    clock = opened()
    clock, _ = domain.on_case_event(clock, event("case_acknowledged", at(1, 10)))
    policy = Policy(read_hours=2, resolve_hours=24)
    clock, events = domain.on_case_event(
        clock, event("case_transferred", at(1, 15), state="assigned", unit="mersin_bb.roads",
                     institution="mersin_bb"), policy, clock_calendar(policy, None))
    assert [e["type"] for e in events] == ["deadline_planned"]  # no outcome: nothing ended
    assert (clock["unit"], clock["institution"]) == ("mersin_bb.roads", "mersin_bb")
    assert clock["read_due_at"] == at(1, 17)
    assert clock["resolve_due_at"] == at(3, 15)  # bouncing a case buys no time
    assert clock["case_state"] == "assigned"


def test_a_transfer_under_a_restart_policy_gives_the_new_unit_its_full_time():
    clock = opened()
    policy = Policy(read_hours=4, resolve_hours=9, on_transfer="restart")
    clock, _ = domain.on_case_event(
        clock, event("case_returned", at(2, 9), state="assigned", unit="mersin_bb.coord",
                     institution="mersin_bb"), policy, clock_calendar(policy, None))
    assert clock["resolve_due_at"] == at(3, 9)


def test_a_transfer_keeps_the_level_and_what_already_fired_on_the_resolve_time():
    clock, _fired = run(opened(), at(2, 13))
    assert clock["level"] == 2 and "resolve:warn:50" in clock["fired"]
    policy = Policy(read_hours=4, resolve_hours=24)
    moved, _ = domain.on_case_event(
        clock, event("case_transferred", at(2, 14), unit="x.y", institution="x"), policy,
        clock_calendar(policy, None))
    assert moved["level"] == 2
    assert "resolve:warn:50" in moved["fired"] and "read:level:1" not in moved["fired"]
    _, later = run(moved, at(2, 17))
    assert "warned:50" not in kinds(later)


def test_a_reopened_case_gets_fresh_time_and_a_new_attempt():
    clock = opened()
    clock, _ = domain.on_case_event(clock, event("case_acknowledged", at(1, 10)))
    clock, _ = domain.on_case_event(clock, event("case_resolved", at(1, 16), state="resolved"))
    clock, _ = domain.on_case_event(clock, event("case_closed", at(1, 17), state="closed"))
    assert clock["case_state"] == "closed"
    policy = Policy(read_hours=4, resolve_hours=24)
    clock, _ = domain.on_case_event(clock, event("case_reopened", at(7, 9), state="assigned"),
                                    policy, clock_calendar(policy, None))
    assert (clock["clock"], clock["attempt"]) == (RUNNING, 2)
    assert clock["read_due_at"] == at(7, 13)
    assert clock["resolve_due_at"] == at(9, 15)
    assert clock["notice_due_at"] == at(9, 9)


def test_a_reopen_under_a_continue_policy_counts_from_where_it_stopped():
    clock = opened()
    clock, _ = domain.on_case_event(clock, event("case_resolved", at(1, 16), state="resolved"))
    policy = Policy(read_hours=4, resolve_hours=24, on_reopen="continue")
    clock, _ = domain.on_case_event(clock, event("case_reopened", at(7, 9)), policy,
                                    clock_calendar(policy, None))
    assert clock["resolve_due_at"] == at(8, 17)  # 7 h used; 17 left from Monday 09:00


def test_the_48_hour_notice_is_wall_clock_and_sent_once_unless_resolved_first():
    _clock, fired = run(opened(), at(3, 10), step=timedelta(minutes=15))
    notices = [now for now, t, _ in fired if t == "delay_notice_due"]
    assert notices == [T0 + timedelta(hours=48)]
    [data] = [d for _, t, d in fired if t == "delay_notice_due"]
    assert data == {"hours_open": 48, "tracking_code": "K7M4QX2D9"}

    resolved, _ = domain.on_case_event(opened(), event("case_resolved", at(2, 9),
                                                       state="resolved"))
    _, fired = run(resolved, at(4, 10))
    assert "delay_notice_due" not in kinds(fired)


def test_a_referred_or_closed_case_stops_and_fires_nothing_more():
    for etype in ("application_referred", "case_closed"):
        payload = ({"tracking_code": "K", "category": "gas", "institution": "gas_co",
                    "institution_name": "Gaz", "rule": "r"} if etype == "application_referred"
                   else {"state": "closed"})
        ev = load_event(make_event(etype, "app-1", payload, occurred_at=at(1, 10)))
        clock, _ = domain.on_case_event(opened(), ev)
        assert clock["clock"] == STOPPED
        assert domain.tick(clock, at(20, 10), LADDER) == (None, [])


def test_an_event_older_than_the_last_applied_is_ignored():
    clock = opened()
    clock, _ = domain.on_case_event(clock, event("case_waiting", at(1, 12),
                                                 state="waiting_citizen"))
    clock, _ = domain.on_case_event(clock, event("case_resumed", at(1, 14)))
    stale = event("case_waiting", at(1, 13), state="waiting_citizen")
    assert domain.on_case_event(clock, stale) == (None, [])


def test_a_move_without_the_new_policy_is_a_programming_error():
    with pytest.raises(domain.InvalidDeadline):
        domain.on_case_event(opened(), event("case_transferred", at(1, 10), unit="x.y"))


def test_the_mayors_list_shows_how_long_each_step_waited():
    clock, _ = run(opened(), at(8, 18))
    steps = domain.waited_at_each_step(clock, at(8, 18))
    assert [s["to_level"] for s in steps] == [1, 2, 3, 4]
    assert steps[0]["waited_hours"] == round((steps[1]["at"] - steps[0]["at"]).total_seconds()
                                             / 3600, 2)


def test_the_deadlines_the_citizen_sees_are_announced_when_they_move_and_only_then():
    clock = opened()
    paused, events = domain.on_case_event(clock, event("case_waiting", at(1, 12),
                                                       state="waiting_citizen"))
    [planned] = [e for e in events if e["type"] == "deadline_planned"]
    assert planned["data"]["clock"] == "paused" and planned["data"]["resolve_due_at"] is None
    resumed, events = domain.on_case_event(paused, event("case_resumed", at(2, 9)))
    [planned] = [e for e in events if e["type"] == "deadline_planned"]
    # 3 h used before the wait, 21 h from Wednesday 09:00 → Friday 12:00
    assert planned["data"]["resolve_due_at"] == "2026-12-04T09:00:00+00:00"
    read, _ = domain.on_case_event(resumed, event("case_acknowledged", at(2, 10)))
    assert domain.on_case_event(read, event("case_started", at(2, 11))) == (None, [])
