"""SLA over HTTP: a case's deadlines, the overdue / at-risk / mayor's lists scoped by the staff
token, and the policy and calendar admin API with its refusals."""
from datetime import UTC, datetime, timedelta

import pytest

from services.common.auth import mint_token
from services.common.events import load_event, make_event
from services.sla.bootstrap import build
from services.sla.web import create_app
from tests.support import bearer

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # Thursday 15:00 in Istanbul


@pytest.fixture
def parts(config):
    parts = build(config)
    parts.deadlines.clock = lambda: NOW
    parts.deadlines.ladders = lambda unit: ["e", "s", "d", "dm", "m"]
    parts.deadlines.ancestry = lambda institution: [institution, "metro"]  # all under "metro"
    yield parts
    parts.close()


@pytest.fixture
def client(parts):
    return create_app(parts).test_client()


def route(parts, application_id: str, *, hours_ago: float, unit: str = "a.works",
          read_hours: float = 4, resolve_hours: float = 24) -> dict:
    """Open a clock as the handler does, routed `hours_ago` (wall-clock) before NOW."""
    event = load_event(make_event("application_routed", application_id, {
        "tracking_code": "K7M4QX2D9", "category": "road_damage", "tier": "district",
        "institution": unit.split(".")[0], "institution_name": "Belediye", "unit": unit,
        "unit_name": "Fen İşleri", "rule": "test", "read_hours": read_hours,
        "resolve_hours": resolve_hours,
    }, occurred_at=NOW - timedelta(hours=hours_ago)))
    parts.deadlines.on_event(event)
    return event


def test_staff_read_a_cases_deadlines_and_nothing_internal(client, config, parts):
    route(parts, "app-1", hours_ago=1)
    response = client.get("/api/v1/sla/cases/app-1", headers=bearer(config))
    assert response.status_code == 200
    body = response.get_json()
    assert (body["application_id"], body["clock"], body["level"]) == ("app-1", "running", 0)
    assert body["read_due_at"].startswith("2026-12-04T06:00")  # 3 h today, 1 h Friday 08:30
    assert body["read_percent_used"] == 25.0
    assert body["policy"]["warn_at"] == [50, 80] and body["calendar"]["opens"] == "08:30"
    assert not any(key.startswith("_") for key in body)


def test_without_a_staff_token_nothing_is_shown(client, parts):
    route(parts, "app-1", hours_ago=1)
    for path in ("/api/v1/sla/cases/app-1", "/api/v1/sla/overdue", "/api/v1/sla/at-risk",
                 "/api/v1/sla/mayor", "/api/v1/sla/overdue?limit=0", "/api/v1/sla/policies"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert set(response.get_json()) == {"code", "status", "message", "errors"}


def test_a_forged_token_is_refused(client):
    token = mint_token("not-the-secret", "u1", "coordinator")
    response = client.get("/api/v1/sla/overdue", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_an_unknown_case_is_a_404_in_the_shared_error_shape(client, config):
    response = client.get("/api/v1/sla/cases/nope", headers=bearer(config))
    assert response.status_code == 404
    assert response.get_json()["code"] == 404


def test_overdue_and_at_risk_lists_split_running_cases_by_how_much_time_they_used(
    client, config, parts
):
    route(parts, "late", hours_ago=30)  # read long past
    route(parts, "fresh", hours_ago=0.5)
    route(parts, "risky", hours_ago=1, read_hours=40, resolve_hours=1.5)  # 1 of 1.5 h used
    overdue = client.get("/api/v1/sla/overdue", headers=bearer(config)).get_json()
    assert [i["application_id"] for i in overdue["items"]] == ["late"]
    risky = client.get("/api/v1/sla/at-risk", headers=bearer(config)).get_json()
    assert [i["application_id"] for i in risky["items"]] == ["risky"]
    assert risky["items"][0]["resolve_percent_used"] == pytest.approx(66.7)


def test_a_unit_role_sees_only_its_unit_and_is_refused_another(client, config, parts):
    route(parts, "mine", hours_ago=30, unit="a.works")
    route(parts, "theirs", hours_ago=30, unit="b.works")
    expert = bearer(config, "expert", unit="a.works")
    listed = client.get("/api/v1/sla/overdue", headers=expert).get_json()["items"]
    assert [item["application_id"] for item in listed] == ["mine"]
    refused = client.get("/api/v1/sla/overdue?unit=b.works", headers=expert)
    assert refused.status_code == 403
    assert "unit" in refused.get_json()["errors"]["query"]
    assert client.get("/api/v1/sla/cases/theirs", headers=expert).status_code == 404
    assert client.get("/api/v1/sla/mayor", headers=expert).status_code == 403


def test_the_mayors_list_has_what_reached_the_top_with_the_wait_at_each_step(
    client, config, parts
):
    route(parts, "top", hours_ago=24 * 6)
    route(parts, "low", hours_ago=1)
    parts.deadlines.wake("top")
    mayor = {"Authorization": "Bearer " + mint_token(config["STAFF_TOKEN_SECRET"], "m1",
                                                     "mayor", None, "a")}
    body = client.get("/api/v1/sla/mayor", headers=mayor).get_json()
    [item] = body["items"]
    assert item["application_id"] == "top" and item["level"] == 4
    assert [s["to_role"] for s in item["escalations"]] == [
        "supervisor", "director", "deputy_mayor", "mayor"]
    assert all("waited_hours" in step for step in item["escalations"])
    other = {"Authorization": "Bearer " + mint_token(config["STAFF_TOKEN_SECRET"], "m2",
                                                     "mayor", None, "elsewhere")}
    assert client.get("/api/v1/sla/mayor", headers=other).get_json()["items"] == []
    assert client.get("/api/v1/sla/cases/top", headers=other).status_code == 404


def test_an_institution_role_sees_the_institutions_under_it(client, config, parts):
    route(parts, "child", hours_ago=30, unit="a.works")  # "a" is under "metro"
    governor = {"Authorization": "Bearer " + mint_token(config["STAFF_TOKEN_SECRET"], "g1",
                                                        "governor", None, "metro")}
    listed = client.get("/api/v1/sla/overdue", headers=governor).get_json()["items"]
    assert [item["application_id"] for item in listed] == ["child"]
    assert listed[0]["institutions"] == ["a", "metro"]
    narrowed = client.get("/api/v1/sla/overdue?institution=b", headers=governor).get_json()
    assert narrowed["items"] == []
    assert client.get("/api/v1/sla/cases/child", headers=governor).status_code == 200


def test_an_administrator_sets_a_policy_that_applies_to_cases_routed_afterwards(
    client, config, parts
):
    admin = bearer(config, "admin")
    put = client.put("/api/v1/sla/policies", headers=admin, json={
        "scope": {"category": "road_damage", "institution": "a"},
        "settings": {"read_hours": 1, "unread_to_mayor": True}})
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["id"] == "category=road_damage,institution=a"
    parts.deadlines._rules = None  # another process would see it within RULES_TTL_SECONDS
    route(parts, "app-1", hours_ago=2)
    parts.deadlines.wake("app-1")
    body = client.get("/api/v1/sla/cases/app-1", headers=admin).get_json()
    assert body["policy"]["rules"] == ["category=road_damage,institution=a"]
    assert body["level"] == 4  # unread past its hour: straight to the mayor's profile
    effective = client.get("/api/v1/sla/policies/effective?category=road_damage&institution=a",
                           headers=admin).get_json()
    assert effective["policy"]["read_hours"] == 1
    listed = client.get("/api/v1/sla/policies", headers=admin).get_json()["items"]
    assert [rule["id"] for rule in listed] == ["category=road_damage,institution=a"]
    gone = client.delete("/api/v1/sla/policies/category=road_damage,institution=a",
                         headers=admin)
    assert gone.status_code == 204
    assert client.get("/api/v1/sla/policies", headers=admin).get_json()["items"] == []


@pytest.mark.parametrize(("settings", "field"), [
    ({"read_hours": 0}, "read_hours"),
    ({"warn_at": [80, 50]}, "warn_at"),
    ({"ladder_hours": [1, 2]}, "ladder_hours"),
    ({"calendar": "often"}, "calendar"),
    ({"resolve_hours": "soon"}, "resolve_hours"),
    ({"surprise": 1}, "surprise"),
])
def test_a_bad_policy_is_a_422_naming_the_setting_and_stores_nothing(
    client, config, settings, field
):
    admin = bearer(config, "admin")
    response = client.put("/api/v1/sla/policies", headers=admin,
                          json={"scope": {}, "settings": settings})
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["json"]["settings"]
    assert client.get("/api/v1/sla/policies", headers=admin).get_json()["items"] == []


def test_only_an_administrator_changes_policies_and_one_bound_to_an_institution_only_its_own(
    client, config
):
    body = {"scope": {"institution": "a"}, "settings": {"read_hours": 2}}
    assert client.put("/api/v1/sla/policies", headers=bearer(config, "coordinator"),
                      json=body).status_code == 403
    bound = {"Authorization": "Bearer " + mint_token(config["STAFF_TOKEN_SECRET"], "ad",
                                                     "admin", None, "b")}
    refused = client.put("/api/v1/sla/policies", headers=bound, json=body)
    assert refused.status_code == 403
    assert "institution" in refused.get_json()["errors"]["scope"]
    own = {"scope": {"institution": "b"}, "settings": {"read_hours": 2}}
    assert client.put("/api/v1/sla/policies", headers=bound, json=own).status_code == 200


def test_an_institutions_calendar_sets_its_working_hours(client, config, parts):
    admin = bearer(config, "admin")
    put = client.put("/api/v1/sla/calendars/a", headers=admin,
                     json={"opens": "08:00", "closes": "12:00"})
    assert put.status_code == 200, put.get_json()
    route(parts, "app-1", hours_ago=0)  # Thursday 15:00: after this calendar's close
    body = client.get("/api/v1/sla/cases/app-1", headers=admin).get_json()
    assert body["read_due_at"].startswith("2026-12-04T09:00")  # Friday 08:00 + 4 h
    bad = client.put("/api/v1/sla/calendars/a", headers=admin,
                     json={"opens": "18:00", "closes": "09:00"})
    assert bad.status_code == 422
    wrong = client.put("/api/v1/sla/calendars/a", headers=admin, json={"opens": "8 am"})
    assert wrong.status_code == 422 and "opens" in wrong.get_json()["errors"]["json"]
    odd = client.put("/api/v1/sla/calendars/Not%20a%20code", headers=admin, json={})
    assert odd.status_code == 422 and "owner" in odd.get_json()["errors"]["path"]
    assert [c["owner"] for c in client.get("/api/v1/sla/calendars",
                                           headers=admin).get_json()["items"]] == ["a"]


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=lots"])
def test_a_bad_limit_is_a_422_naming_the_field(client, config, query):
    response = client.get(f"/api/v1/sla/overdue?{query}", headers=bearer(config))
    assert response.status_code == 422
    assert "limit" in response.get_json()["errors"]["query"]


def test_the_openapi_document_describes_the_api(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in ("/api/v1/sla/cases/{application_id}", "/api/v1/sla/overdue",
                 "/api/v1/sla/at-risk", "/api/v1/sla/mayor", "/api/v1/sla/policies",
                 "/api/v1/sla/calendars/{owner}"):
        assert path in paths, path
    assert paths["/api/v1/sla/overdue"]["get"]["security"] == [{"staffToken": []}]
