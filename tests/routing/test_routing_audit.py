"""KVKK: an expert asking for another unit's case gets a 403 and the attempt is in routing's
audit log, which administrators (and only they) search over `GET /api/v1/cases/audit` with a
required time window; bad input is a 400 naming the field."""
from __future__ import annotations

from datetime import timedelta

from services.common.events import utcnow
from tests.routing.test_routing_http import (  # noqa: F401 - fixtures
    auth,
    config,
    http,
    open_application,
    parts,
)


def window(**extra: str) -> dict:
    now = utcnow()
    return {"from": (now - timedelta(hours=1)).isoformat(),
            "to": (now + timedelta(hours=1)).isoformat(), **extra}


def test_a_refused_case_read_is_audited_and_found_by_an_administrator(config, http,
                                                                       open_application):
    app_id = open_application()
    parks = auth(config, "expert", "mez-0016")
    assert http.get(f"/api/v1/cases/{app_id}", headers=parks).status_code == 403

    admin = auth(config, "admin", "adm-1")
    answer = http.get("/api/v1/cases/audit", query_string=window(application_id=app_id),
                      headers=admin)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["service"] == "routing" and body["more"] is False
    [entry] = body["items"]
    assert entry["action"] == "case.read.refused" and entry["staff"] == "mez-0016"
    assert entry["role"] == "expert" and entry["application_id"] == app_id
    assert entry["citizen_id"] is None and entry["at"]
    # the filters narrow it: another staff code, another action, another window
    for narrower in (window(staff="mez-0009"), window(action="citizen.read"),
                     {"from": "2020-01-01T00:00:00+00:00", "to": "2020-01-02T00:00:00+00:00"}):
        assert http.get("/api/v1/cases/audit", query_string=narrower,
                        headers=admin).get_json()["items"] == []
    # a case read within scope is not a refusal and is not written here
    works = auth(config, "expert", "mez-0009")
    assert http.get(f"/api/v1/cases/{app_id}", headers=works).status_code == 200
    assert len(http.get("/api/v1/cases/audit", query_string=window(),
                        headers=admin).get_json()["items"]) == 1


def test_the_audit_search_is_for_administrators_and_refuses_bad_input_naming_the_field(
        config, http):
    admin = auth(config, "admin", "adm-1")
    for role in ("expert", "supervisor", "coordinator", "mayor"):
        answer = http.get("/api/v1/cases/audit", query_string=window(),
                          headers=auth(config, role, unit="mezitli_bld.works"))
        assert answer.status_code == 403, role
    assert http.get("/api/v1/cases/audit", query_string=window()).status_code == 401
    cases = [
        ({"to": window()["to"]}, "from"),  # the window is required
        (window(limit="0"), "limit"),
        (window(limit="501"), "limit"),
        (window(staff="x y"), "staff"),
        ({"from": "yesterday", "to": window()["to"]}, "from"),
        ({"from": window()["to"], "to": window()["from"]}, "to"),
        ({"from": "2026-01-01T00:00:00+00:00", "to": "2026-06-01T00:00:00+00:00"}, "to"),
        (window(colour="red"), "colour"),
    ]
    for query, field in cases:
        answer = http.get("/api/v1/cases/audit", query_string=query, headers=admin)
        assert answer.status_code == 400, (query, answer.get_json())
        body = answer.get_json()
        assert field in body["errors"]["query"], (query, body)
        assert field in body["message"]
