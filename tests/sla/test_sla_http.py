"""SLA over HTTP: a case's deadlines and the overdue list, for staff only."""
from datetime import timedelta

import pytest

from services.common.auth import mint_token
from services.common.events import load_event, make_event, utcnow
from services.sla import domain
from services.sla.bootstrap import build
from services.sla.store import SlaStore
from services.sla.web import create_app
from tests.support import bearer, database


@pytest.fixture
def store(config):
    """The test's own view of sla's database, to set up cases as the handler leaves them."""
    return SlaStore(database(config, "sla"))


@pytest.fixture
def client(config):
    parts = build(config)
    yield create_app(parts).test_client()
    parts.close()


def route(store: SlaStore, application_id: str, *, hours_ago: float, unit: str = "a.works",
          read_hours: float = 4, resolve_hours: float = 24) -> dict:
    """Open a timer set as the handler would, routed `hours_ago`."""
    event = load_event(make_event("application_routed", application_id, {
        "tracking_code": "K7M4QX2D9", "category": "road_damage", "tier": "district",
        "institution": unit.split(".")[0], "institution_name": "Belediye", "unit": unit,
        "unit_name": "Fen İşleri", "rule": "test", "read_hours": read_hours,
        "resolve_hours": resolve_hours,
    }, occurred_at=utcnow() - timedelta(hours=hours_ago)))
    store.apply_to_timers(application_id, event["event_id"],
                          lambda current: domain.on_routed(current, event))
    return event


def test_staff_read_a_cases_timer_set(client, config, store):
    event = route(store, "app-1", hours_ago=1)
    response = client.get("/api/v1/sla/cases/app-1", headers=bearer(config))
    assert response.status_code == 200
    body = response.get_json()
    assert body["application_id"] == "app-1"
    assert (body["state"], body["level"], body["unit"]) == ("open", 0, "a.works")
    assert [t["kind"] for t in body["timers"]] == ["read", "warn", "resolve", "delay_notice"]
    started = event["occurred_at"]
    assert body["timers"][2]["due_at"][:19] == (started + timedelta(hours=24)).isoformat()[:19]
    assert body["timers"][2]["fired_at"] is None
    assert not any(key.startswith("_") for key in body)  # no bookkeeping leaks


def test_without_a_staff_token_nothing_is_shown(client, config, store):
    route(store, "app-1", hours_ago=1)
    for path in ("/api/v1/sla/cases/app-1", "/api/v1/sla/overdue", "/api/v1/sla/overdue?limit=0"):
        response = client.get(path)
        assert response.status_code == 401, path
        body = response.get_json()
        assert set(body) == {"code", "status", "message", "errors"}
        assert body["code"] == 401


def test_a_forged_token_is_refused(client, config):
    token = mint_token("not-the-secret", "u1", "coordinator")
    response = client.get("/api/v1/sla/overdue", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_an_unknown_case_is_a_404_in_the_shared_error_shape(client, config):
    response = client.get("/api/v1/sla/cases/nope", headers=bearer(config))
    assert response.status_code == 404
    body = response.get_json()
    assert body == {"code": 404, "status": "Not Found", "message": body["message"], "errors": {}}
    assert body["message"]


def test_the_overdue_list_has_open_cases_past_a_deadline_longest_overdue_first(
    client, config, store
):
    route(store, "late-5h", hours_ago=9)  # read was due 5 h ago
    route(store, "late-1h", hours_ago=5)  # read was due 1 h ago
    route(store, "on-time", hours_ago=1)  # read due in 3 h
    route(store, "very-late", hours_ago=30)  # read due 26 h ago
    store.timers.update_one({"_id": "very-late"}, {"$set": {"state": "closed"}})
    response = client.get("/api/v1/sla/overdue", headers=bearer(config))
    assert response.status_code == 200
    body = response.get_json()
    assert [item["application_id"] for item in body["items"]] == ["late-5h", "late-1h"]
    assert body["count"] == 2


def test_a_fired_deadline_no_longer_makes_a_case_overdue(client, config, store):
    route(store, "app-1", hours_ago=5)  # only `read` (4 h) has passed
    doc = store.timers.find_one({"_id": "app-1"})
    timers = [dict(t, fired_at=utcnow()) if t["kind"] == "read" else t for t in doc["timers"]]
    store.timers.update_one({"_id": "app-1"}, {"$set": {
        "timers": timers, "next_due_at": domain.next_due_at(timers)}})
    body = client.get("/api/v1/sla/overdue", headers=bearer(config)).get_json()
    assert body["items"] == []


def test_the_overdue_list_filters_by_unit_and_honours_the_limit(client, config, store):
    for i in range(3):
        route(store, f"a-{i}", hours_ago=10 + i, unit="a.works")
    route(store, "b-0", hours_ago=20, unit="b.works")
    response = client.get("/api/v1/sla/overdue?unit=a.works&limit=2", headers=bearer(config))
    assert [i["application_id"] for i in response.get_json()["items"]] == ["a-2", "a-1"]


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=lots"])
def test_a_bad_limit_is_a_422_naming_the_field(client, config, query):
    response = client.get(f"/api/v1/sla/overdue?{query}", headers=bearer(config))
    assert response.status_code == 422
    assert "limit" in response.get_json()["errors"]["query"]


def test_an_expert_sees_only_the_units_own_cases(client, config, store):
    route(store, "mine", hours_ago=10, unit="a.works")
    route(store, "theirs", hours_ago=10, unit="b.works")
    expert = bearer(config, "expert", unit="a.works")
    listed = client.get("/api/v1/sla/overdue", headers=expert).get_json()["items"]
    assert [item["application_id"] for item in listed] == ["mine"]
    assert client.get("/api/v1/sla/overdue?unit=b.works", headers=expert).status_code == 403
    assert client.get("/api/v1/sla/cases/mine", headers=expert).status_code == 200
    assert client.get("/api/v1/sla/cases/theirs", headers=expert).status_code == 404


def test_the_openapi_document_describes_both_endpoints(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "/api/v1/sla/cases/{application_id}" in paths
    overdue = paths["/api/v1/sla/overdue"]["get"]
    assert {p["name"] for p in overdue["parameters"]} == {"unit", "limit"}
    assert overdue["security"] == [{"staffToken": []}]
