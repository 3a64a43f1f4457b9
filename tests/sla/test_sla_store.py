"""SLA's store on the real server: a clock is stored packed (its list fields as fields, the rest
as JSON text, its outbox entries as JSON text) and reads back exactly as the domain made it."""
from datetime import UTC, datetime, timedelta

from services.common.events import load_event, make_event
from services.common.outbox import OUTBOX, entries
from services.sla import domain
from services.sla.policy import Policy, clock_calendar
from services.sla.store import PACKED, SlaStore, pack_clock, unpack_clock
from tests.support import database

T0 = datetime(2026, 12, 1, 6, 0, 0, 123000, tzinfo=UTC)
LADDER = {0: "exp-1", 1: "sup-1", 2: "dir-1", 3: "dep-1", 4: "mayor-1"}


def fired_clock() -> tuple[dict, list[dict]]:
    """A clock whose read deadline has passed, after its tick: escalated, with two events."""
    routed = load_event(make_event("application_routed", "app-1", {
        "tracking_code": "K7M4QX2D9", "category": "road_damage", "tier": "district",
        "institution": "mezitli_bld", "institution_name": "Mezitli",
        "unit": "mezitli_bld.works", "unit_name": "Fen İşleri", "rule": "t",
        "priority": "normal", "read_hours": 4, "resolve_hours": 24}, occurred_at=T0))
    policy = Policy(read_hours=4, resolve_hours=24, calendar="round_the_clock")
    clock = domain.open_clock(routed, policy, clock_calendar(policy, None))
    return domain.tick(clock, T0 + timedelta(hours=5), LADDER)


def test_a_clock_is_stored_packed_and_reads_back_as_the_domain_made_it(config):
    db = database(config, "sla")
    store = SlaStore(db)
    clock, events = fired_clock()
    assert clock["level"] == 1 and len(events) == 2
    store.change_clock("app-1", lambda current: None)  # absent: nothing written
    db["clocks"].insert_one({"_id": "app-1", "_v": 1})
    store.change_clock("app-1", lambda current: dict(clock, **{OUTBOX: events}))

    raw = db["clocks"].find_one({"_id": "app-1"})
    # what staff lists filter and sort on stays a field; the rest is one text
    assert raw["level"] == 1 and raw["unit"] == "mezitli_bld.works"
    assert raw["read_due_at"] == clock["read_due_at"]
    assert isinstance(raw[PACKED], str) and "policy" not in raw and "escalations" not in raw
    assert all(isinstance(entry, str) for entry in raw[OUTBOX])
    assert [e["event_id"] for e in entries(raw[OUTBOX])] == [e["event_id"] for e in events]

    read = store.get_clock("app-1")
    assert {k: v for k, v in read.items() if k != "_id"} == clock
    assert [c["_id"] for c in store.read_clocks(["app-1", "absent"])] == ["app-1"]
    assert store.find_clocks({"level": 1}, limit=5)[0]["escalations"] == clock["escalations"]


def test_a_date_inside_the_text_keeps_milliseconds_as_a_date_field_does():
    moment = datetime(2026, 12, 1, 6, 0, 0, 123456, tzinfo=UTC)
    naive = datetime(2026, 12, 1, 6, 0)  # stored as UTC, as pymongo stores a naive one
    packed = pack_clock({"_id": "x", "policy": {"since": moment, "at": [naive]}})
    assert unpack_clock(packed)["policy"] == {
        "since": moment.replace(microsecond=123000), "at": [naive.replace(tzinfo=UTC)]}
