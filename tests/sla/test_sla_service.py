"""The sla service on the real broker: one timer set per routed case, whatever is redelivered."""
from datetime import UTC, datetime, timedelta

import pytest

from services.common.bootstrap import parts_of
from services.common.events import make_event, new_event_id
from services.common.outbox import HANDLED, VERSION
from services.sla.service import SlaService
from services.sla.web import create_app
from tests.support import bearer, database, deliver

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def app_id() -> str:
    """A fresh application id per test, so nothing else on the broker can be mistaken for it."""
    return new_event_id()


def routed(application_id: str, at: datetime = T0, unit: str = "mezitli_bld.works",
           resolve_hours: float = 24) -> dict:
    return make_event("application_routed", application_id, {
        "tracking_code": "K7M4QX2D9", "category": "road_damage", "tier": "district",
        "institution": unit.split(".")[0], "institution_name": "Mezitli Belediyesi",
        "unit": unit, "unit_name": "Fen İşleri Müdürlüğü", "rule": "test", "priority": "normal",
        "read_hours": 4, "resolve_hours": resolve_hours,
    }, occurred_at=at)


def timers(config: dict):
    return database(config, "sla")["timers"]


def timer_sets(config: dict, *application_ids: str) -> list[dict]:
    return list(timers(config).find({"_id": {"$in": list(application_ids)}}))


def test_a_routed_case_gets_one_open_timer_set_with_its_deadlines(
    config, container_factory, app_id
):
    container = container_factory(SlaService, config)
    container.start()
    deliver(config, container, routed(app_id))
    [stored] = timer_sets(config, app_id)
    assert stored["application_id"] == app_id
    assert (stored["state"], stored["level"], stored["unit"]) == ("open", 0, "mezitli_bld.works")
    assert stored["started_at"] == T0
    due = {timer["kind"]: timer["due_at"] for timer in stored["timers"]}
    assert due == {"read": T0 + timedelta(hours=4), "warn": T0 + timedelta(hours=18),
                   "resolve": T0 + timedelta(hours=24), "delay_notice": T0 + timedelta(hours=48)}
    assert stored["next_due_at"] == T0 + timedelta(hours=4)


def test_the_same_routed_event_delivered_twice_leaves_one_unchanged_timer_set(
    config, container_factory, app_id
):
    container = container_factory(SlaService, config)
    container.start()
    event = routed(app_id)
    deliver(config, container, event)
    [first] = timer_sets(config, app_id)
    deliver(config, container, event)
    [again] = timer_sets(config, app_id)
    assert again[VERSION] == first[VERSION] == 1  # the redelivery wrote nothing
    assert again[HANDLED] == [event["event_id"]]
    assert again == first


def test_a_re_routing_moves_the_case_but_not_its_start(config, container_factory, app_id):
    container = container_factory(SlaService, config)
    container.start()
    deliver(config, container, routed(app_id))
    later = T0 + timedelta(hours=3)
    deliver(config, container, routed(app_id, at=later, unit="mersin_bb.roads",
                                      resolve_hours=48))
    [stored] = timer_sets(config, app_id)
    assert (stored["unit"], stored["institution"]) == ("mersin_bb.roads", "mersin_bb")
    assert stored["started_at"] == T0
    due = {timer["kind"]: timer["due_at"] for timer in stored["timers"]}
    assert due["read"] == later + timedelta(hours=4)
    assert due["resolve"] == T0 + timedelta(hours=48)


def test_each_routed_case_has_its_own_timer_set(config, container_factory):
    container = container_factory(SlaService, config)
    container.start()
    first, second = new_event_id(), new_event_id()
    deliver(config, container, routed(first))
    deliver(config, container, routed(second, unit="mersin_bb.roads"))
    assert sorted((d["_id"], d["unit"]) for d in timer_sets(config, first, second)) == [
        (first, "mezitli_bld.works"), (second, "mersin_bb.roads")]


def test_the_running_services_http_side_shows_what_its_handler_stored(
    config, container_factory, app_id
):
    """One composition per process: the Flask app made on the container's parts reads the
    timer set the container's handler wrote."""
    container = container_factory(SlaService, config)
    container.start()
    parts = parts_of(container)
    client = create_app(parts).test_client()
    deliver(config, container, routed(app_id))
    response = client.get(f"/api/v1/sla/cases/{app_id}", headers=bearer(config))
    assert response.status_code == 200
    assert response.get_json()["next_due_at"].startswith("2025-03-03T13:00")
    assert client.get("/health").status_code == 200
