"""The sla service on the real broker and the real store: the clock follows routing's events,
the sweep fires what falls due once, and a late case climbs to the mayor.

Time is the test's: the deadlines use case reads `clock`, and the sweep cursor starts at T0.
"""
from datetime import UTC, datetime, timedelta

import pytest

from services.common.bootstrap import parts_of
from services.common.events import make_event, new_event_id
from services.common.outbox import HANDLED, OUTBOX, VERSION
from services.sla.service import SlaService
from services.sla.store import minute_key, unpack_clock
from services.sla.web import create_app
from tests.support import Clock, bearer, database, deliver

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)  # Tuesday 09:00 in Istanbul
LADDER = ["exp-1", "sup-1", "dir-1", "dep-1", "mayor-1"]


@pytest.fixture
def app_id() -> str:
    return new_event_id()


@pytest.fixture
def sla(config, container_factory):
    """A running sla service on the test's clock, its sweep cursor at T0, routing's ladder
    answered locally (the cross-service flow asks the real routing)."""
    container = container_factory(SlaService, config)
    container.start()
    parts = parts_of(container)
    parts.deadlines.clock = Clock(T0)
    parts.deadlines.ladders = lambda unit: LADDER
    parts.deadlines.ancestry = lambda institution: [institution]
    parts.store.reset_cursor(minute_key(T0 - timedelta(minutes=1)))
    return container


def routed(application_id: str, at: datetime = T0, unit: str = "mezitli_bld.works",
           resolve_hours: float = 24) -> dict:
    return make_event("application_routed", application_id, {
        "tracking_code": "K7M4QX2D9", "category": "road_damage", "tier": "district",
        "institution": unit.split(".")[0], "institution_name": "Mezitli Belediyesi",
        "unit": unit, "unit_name": "Fen İşleri Müdürlüğü", "rule": "test", "priority": "normal",
        "read_hours": 4, "resolve_hours": resolve_hours,
    }, occurred_at=at)


def case_event(event_type: str, application_id: str, at: datetime, **data) -> dict:
    return make_event(event_type, application_id, {"state": "acknowledged", **data},
                      occurred_at=at)


def clock_of(config: dict, application_id: str) -> dict:
    return unpack_clock(database(config, "sla")["clocks"].find_one({"_id": application_id}))


def istanbul(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour - 3, minute, tzinfo=UTC)


def test_a_routed_case_gets_a_clock_with_its_deadlines_in_working_time(config, sla, app_id):
    deliver(config, sla, routed(app_id))
    stored = clock_of(config, app_id)
    assert (stored["clock"], stored["level"], stored["unit"]) == (
        "running", 0, "mezitli_bld.works")
    assert stored["read_due_at"] == istanbul(1, 13)
    assert stored["resolve_due_at"] == istanbul(3, 15)
    assert stored["wake"] == minute_key(istanbul(1, 13))
    hour = database(config, "sla")["wake_hours"].find_one({"_id": stored["wake"][:10]})
    assert stored["wake"] in hour["minutes"]


def test_the_same_routed_event_delivered_twice_leaves_one_unchanged_clock(config, sla, app_id):
    event = routed(app_id)
    deliver(config, sla, event)
    first = clock_of(config, app_id)
    deliver(config, sla, event)
    again = clock_of(config, app_id)
    assert again[HANDLED] == [event["event_id"]]  # folded once
    # the relay may have cleared the outbox in between: compare the clock itself
    assert strip(again) == strip(first)


def strip(clock: dict) -> dict:
    return {k: v for k, v in clock.items() if k not in (VERSION, OUTBOX, "_outbox_at")}


def test_an_unacknowledged_case_climbs_to_the_mayor_one_step_at_a_time_each_once(
    config, sla, app_id, probe
):
    escalated = probe("sla", "case_escalated")
    breached = probe("sla", "sla_breached")
    deliver(config, sla, routed(app_id))
    deadlines = parts_of(sla).deadlines
    # sweep every simulated 10 minutes through four working days
    now = T0
    while now < istanbul(4, 12):
        now += timedelta(minutes=10)
        deadlines.clock.now = now
        deadlines.sweep(now)
    steps = escalated.take(4)
    assert [(e["data"]["from_level"], e["data"]["to_level"], e["data"]["to_staff"])
            for e in steps] == [(0, 1, "sup-1"), (1, 2, "dir-1"), (2, 3, "dep-1"),
                                (3, 4, "mayor-1")]
    assert {e["application_id"] for e in steps} == {app_id}
    assert [e["data"]["deadline"] for e in breached.take(2)] == ["read", "resolve"]
    assert escalated.take(None, timeout=1) == [] and breached.take(None, timeout=1) == []
    stored = clock_of(config, app_id)
    assert stored["level"] == 4 and not stored.get(OUTBOX)


def test_an_acknowledged_case_does_not_climb_for_its_read_time(config, sla, app_id, probe):
    escalated = probe("sla", "case_escalated")
    outcomes = probe("sla", "sla_outcome_recorded")
    deliver(config, sla, routed(app_id))
    deliver(config, sla, case_event("case_acknowledged", app_id, istanbul(1, 10)))
    [outcome] = outcomes.take(1)
    assert (outcome["data"]["deadline"], outcome["data"]["outcome"]) == ("read", "met")
    deadlines = parts_of(sla).deadlines
    deadlines.clock.now = istanbul(2, 17)
    deadlines.sweep(istanbul(2, 17))
    assert clock_of(config, app_id)["level"] == 0  # the read ladder stopped when it was read
    assert escalated.take(None, timeout=1) == []


def test_waiting_pauses_the_clock_and_nothing_fires_until_resumed(config, sla, app_id, probe):
    warned = probe("sla", "sla_warned")
    deliver(config, sla, routed(app_id))
    deliver(config, sla, case_event("case_acknowledged", app_id, istanbul(1, 10)))
    deliver(config, sla, case_event("case_waiting", app_id, istanbul(1, 11),
                                    state="waiting_citizen"))
    deadlines = parts_of(sla).deadlines
    deadlines.clock.now = istanbul(10, 12)
    deadlines.sweep(istanbul(10, 12))
    assert warned.take(None, timeout=1) == []
    paused = clock_of(config, app_id)
    assert (paused["clock"], paused["fired"], paused["level"]) == ("paused", [], 0)
    deliver(config, sla, case_event("case_resumed", app_id, istanbul(10, 12),
                                    state="in_progress"))
    # 2 of the 24 hours were used before the wait: the other 22 run from Thursday 10th 12:00
    # (5.5 h), Friday (9 h), Monday 14th from 08:30 (7.5 h)
    assert clock_of(config, app_id)["resolve_due_at"] == istanbul(14, 16)


def test_a_case_event_whose_minute_was_already_swept_fires_at_once(config, sla, app_id, probe):
    """A writer that finds its minute closed looks at the case itself: nothing waits for a
    sweep that has already passed."""
    breached = probe("sla", "sla_breached")
    deadlines = parts_of(sla).deadlines
    deadlines.clock.now = istanbul(1, 14)
    deadlines.sweep(istanbul(1, 14))  # closes every minute up to 13:59
    deliver(config, sla, routed(app_id))  # routed at 09:00: read due at 13:00, already past
    [event] = breached.take(1)
    assert event["data"]["deadline"] == "read"


def test_staff_read_a_cases_deadlines_scoped_by_their_token(config, sla, app_id):
    client = create_app(parts_of(sla)).test_client()
    deliver(config, sla, routed(app_id))
    own = client.get(f"/api/v1/sla/cases/{app_id}",
                     headers=bearer(config, "expert", unit="mezitli_bld.works"))
    assert own.status_code == 200
    body = own.get_json()
    assert body["read_due_at"].startswith("2026-12-01T10:00")
    assert body["resolve_percent_used"] == 0.0
    other = client.get(f"/api/v1/sla/cases/{app_id}",
                       headers=bearer(config, "expert", unit="mersin_bb.roads"))
    assert other.status_code == 404


def test_case_events_that_arrive_before_the_routing_are_applied_when_the_clock_opens(
    config, sla, app_id, probe
):
    """The queues are consumed in parallel: after an outage sla may see a case acknowledged
    and put on hold before it sees it routed. Nothing is lost, nothing climbs for nothing."""
    escalated = probe("sla", "case_escalated")
    deliver(config, sla, case_event("case_acknowledged", app_id, istanbul(1, 10)))
    deliver(config, sla, case_event("case_waiting", app_id, istanbul(1, 11),
                                    state="waiting_citizen"))
    client = create_app(parts_of(sla)).test_client()
    assert client.get(f"/api/v1/sla/cases/{app_id}",
                      headers=bearer(config)).status_code == 404  # no clock yet
    deliver(config, sla, routed(app_id))
    stored = clock_of(config, app_id)
    assert stored["read"]["done_at"] == istanbul(1, 10)  # acknowledged in time
    assert stored["clock"] == "paused" and stored["outcomes"]["read"]["outcome"] == "met"
    deadlines = parts_of(sla).deadlines
    deadlines.clock.now = istanbul(9, 12)
    deadlines.sweep(istanbul(9, 12))
    assert clock_of(config, app_id)["level"] == 0
    assert escalated.take(None, timeout=1) == []
