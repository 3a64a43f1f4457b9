"""Routing's HTTP surface, thin: staff tokens and scopes, 409 with the current state, 422 naming
the field, the inbox's filters and paging, the directory admin's institution claim, the dry run,
and (KVKK) a refused case read in the audit log administrators search.

Cases are opened through the service's own domain and store (no broker needed here)."""
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from pymongo.collection import Collection

from services.common.auth import mint_token
from services.common.config import load_config
from services.common.events import load_event, make_event, new_event_id, utcnow
from services.routing.bootstrap import RoutingParts, build
from services.routing.domain import open_case
from services.routing.store import RoutingStore
from services.routing.web import create_app
from tests.support import database

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def config(databases):
    return load_config(env={}, **databases)


@pytest.fixture
def parts(config) -> Iterator[RoutingParts]:
    """Routing's composition without its nameko side (its relay never started)."""
    built = build(config)
    yield built
    built.close()


@pytest.fixture
def http(parts):
    return create_app(parts).test_client()


@pytest.fixture
def open_application(parts, http):
    """`open_application(category, district, minutes)` routes a new application; its id."""
    store = parts.store
    org = parts.organisation.current()

    def make(category="road_damage", district="Mezitli", minutes=0, **extra) -> str:
        app_id = new_event_id()
        at = T0 + timedelta(minutes=minutes)
        event = load_event(make_event("application_received", app_id, {
            "tracking_code": "K7M4QX2D9", "security_digest": "d" * 64, "kind": "complaint",
            "category": category, "channel": "web", "received_at": at,
            "location": {"province": "Mersin", "district": district}, **extra}))
        store.apply_to_case(app_id, event["event_id"], lambda current: open_case(
            current, event, org.catalogue, org.directory, at))
        return app_id

    return make


def auth(config, role, user="staff-test", unit=None, institution=None) -> dict:
    secret = config["STAFF_TOKEN_SECRET"]
    return {"Authorization": f"Bearer {mint_token(secret, user, role, unit, institution)}"}


def test_the_catalogue_is_public_and_case_work_needs_a_staff_token(http, open_application):
    app_id = open_application()
    assert http.get("/api/v1/categories").get_json()["total"] >= 30
    assert http.get("/api/v1/categories/road_damage").get_json()["reopen_days"] == 15
    for answer in (http.get("/api/v1/cases"), http.post(f"/api/v1/cases/{app_id}/acknowledge",
                                                        json={})):
        assert answer.status_code == 401
        assert set(answer.get_json()) == {"code", "status", "message", "errors"}


def test_an_expert_acts_only_on_the_units_own_cases(config, http, open_application):
    app_id = open_application()
    parks = auth(config, "expert", "mez-0016")
    answer = http.post(f"/api/v1/cases/{app_id}/acknowledge", json={}, headers=parks)
    assert answer.status_code == 403
    assert http.get("/api/v1/cases?unit=mezitli_bld.works", headers=parks).status_code == 403
    read = http.get(f"/api/v1/cases/{app_id}", headers=parks)  # not even to read it
    assert read.status_code == 403 and "unit" in read.get_json()["errors"]
    works = auth(config, "expert", "mez-0009")  # the backup expert, known from the directory
    answer = http.post(f"/api/v1/cases/{app_id}/acknowledge", headers=works)  # no body at all
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["state"] == "acknowledged" and body["read_at"]
    assert body["history"][-1]["by"] == "mez-0009"
    assert http.get(f"/api/v1/cases/{app_id}", headers=works).status_code == 200


def test_an_invalid_transition_answers_409_with_the_current_state(config, http,
                                                                  open_application):
    app_id = open_application()
    centre = auth(config, "coordinator")
    answer = http.post(f"/api/v1/cases/{app_id}/resolve", json={"result": "x"}, headers=centre)
    assert answer.status_code == 409
    body = answer.get_json()
    assert body["errors"] == {"state": ["assigned"]} and "assigned" in body["message"]


def test_bad_input_names_the_field_and_changes_nothing(config, http, open_application):
    app_id = open_application()
    centre = auth(config, "coordinator")
    before = http.get(f"/api/v1/cases/{app_id}", headers=centre).get_json()
    for body, field in [({"unit": "mersin_bb.roads"}, "reason"),
                        ({"unit": "mersin_bb.nowhere", "reason": "x"}, "unit"),
                        ({"unit": "mersin_bb.roads", "reason": "x", "urgent": True}, "urgent")]:
        answer = http.post(f"/api/v1/cases/{app_id}/transfer", json=body, headers=centre)
        assert answer.status_code == 422, body
        assert field in answer.get_json()["errors"]["json"]
    assert http.post("/api/v1/cases/nope/start", json={}, headers=centre).status_code == 404
    assert http.get(f"/api/v1/cases/{app_id}", headers=centre).get_json() == before


def test_the_inbox_filters_and_pages_oldest_first(config, http, open_application):
    ids = [open_application(minutes=i) for i in range(5)]
    open_application("cleaning", minutes=6)
    open_application("road_damage", "Yenişehir", minutes=7)
    expert = auth(config, "expert", "mez-0008")
    http.post(f"/api/v1/cases/{ids[0]}/acknowledge", json={}, headers=expert)

    def inbox(query):
        answer = http.get(f"/api/v1/cases?{query}", headers=expert)
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    page = inbox("per_page=2&page=2")
    assert (page["total"], [c["application_id"] for c in page["items"]]) == (5, ids[2:4])
    assert [c["application_id"] for c in inbox("state=acknowledged")["items"]] == ids[:1]
    assert inbox("state=assigned&state=acknowledged")["total"] == 5
    assert inbox("category=cleaning")["total"] == 0  # cleaning is another unit's
    since = (T0 + timedelta(minutes=3)).isoformat().replace("+00:00", "Z")
    assert inbox(f"received_from={since}")["total"] == 2
    centre = auth(config, "coordinator")
    everything = http.get("/api/v1/cases?institution=mezitli_bld", headers=centre).get_json()
    assert everything["total"] == 6
    bad = http.get("/api/v1/cases?state=lost", headers=centre)
    assert bad.status_code == 422 and "state" in bad.get_json()["errors"]["query"]


def test_an_institutions_admin_changes_only_its_own_mappings(config, http):
    url = "/api/v1/directory/institutions/{}/mappings/road_damage"
    yenisehir = auth(config, "admin", institution="yenisehir_bld")
    answer = http.put(url.format("mezitli_bld"), json={"unit": "mezitli_bld.parks"},
                      headers=yenisehir)
    assert answer.status_code == 403 and "inst" in answer.get_json()["errors"]
    answer = http.put(url.format("yenisehir_bld"), json={"unit": "yenisehir_bld.parks"},
                      headers=yenisehir)
    assert answer.status_code == 200
    expert = auth(config, "expert", "mez-0008")
    assert http.put(url.format("mezitli_bld"), json={"unit": "mezitli_bld.parks"},
                    headers=expert).status_code == 403
    new_category = {"code": "graffiti", "name_tr": "Duvar yazısı", "name_en": "Graffiti",
                    "kinds": ["complaint"], "tier": "district", "read_hours": 24,
                    "resolve_hours": 96}
    assert http.post("/api/v1/categories", json=new_category,
                     headers=yenisehir).status_code == 403  # the catalogue is system-wide
    system = auth(config, "coordinator")
    assert http.post("/api/v1/categories", json=new_category, headers=system).status_code == 201
    route = http.get("/api/v1/directory/route?category=road_damage&province=Mersin"
                     "&district=Yenişehir", headers=expert).get_json()
    assert (route["unit"], route["rule"]) == (
        "yenisehir_bld.parks", "category:road_damage→district:yenisehir_bld"
        "|mapping:yenisehir_bld.parks")


def test_directory_changes_that_break_references_are_refused_with_the_field(config, http):
    system = auth(config, "admin")
    answer = http.put("/api/v1/directory/institutions/mezitli_bld/mappings/road_damage",
                      json={"unit": "yenisehir_bld.works"}, headers=system)
    assert answer.status_code == 422
    assert "category_units.road_damage" in answer.get_json()["errors"]["json"]
    answer = http.delete("/api/v1/directory/units/mezitli_bld.works", headers=system)
    assert answer.status_code == 409
    answer = http.post("/api/v1/directory/units", headers=system, json={
        "code": "toroslar_bld.rural", "institution": "mezitli_bld", "name_tr": "x",
        "name_en": "x", "experts": {"primary": "tor-0004", "backup": "tor-0005"},
        "supervisor": "tor-0006", "director": "tor-0007"})
    assert answer.status_code == 422 and "code" in answer.get_json()["errors"]["json"]
    # a primary alone would leave the unit without its backup
    answer = http.patch("/api/v1/directory/units/mezitli_bld.works", headers=system,
                        json={"experts": {"primary": "mez-0009"}})
    assert answer.status_code == 422
    assert "backup" in answer.get_json()["errors"]["json"]["experts"]
    unit = http.get("/api/v1/directory/units/mezitli_bld.works", headers=system).get_json()
    assert unit["experts"] == {"primary": "mez-0008", "backup": "mez-0009"}


def test_a_unit_shows_its_people_and_escalation_ladder(config, http):
    answer = http.get("/api/v1/directory/units/mezitli_bld.works",
                      headers=auth(config, "expert", "mez-0008"))
    body = answer.get_json()
    ladder = {step["level"]: [p["code"] for p in step["who"]] for step in body["escalation"]}
    assert ladder == {0: ["mez-0008", "mez-0009"], 1: ["mez-0010"], 2: ["mez-0011"],
                      3: ["mez-0002"], 4: ["mez-0001"]}
    assert "phone" not in str(body) and "@" not in str(body)
    tree = http.get("/api/v1/directory/tree", headers=auth(config, "expert")).get_json()
    magm = next(i for i in tree["institutions"] if i["code"] == "magm")
    assert [c["code"] for c in magm["children"]] == ["mersin_valilik"]
    assert {c["code"] for c in magm["children"][0]["children"]} >= {"mersin_mem"}


def test_a_provinces_area_model_is_replaced_by_a_system_wide_admin(config, http):
    districts = {"districts": [{"name": "Tarsus", "neighbourhoods": ["Kızılmurat", "Şehitkerim"]}]}
    local = auth(config, "admin", institution="mezitli_bld")
    assert http.put("/api/v1/directory/locations/Adana", json=districts,
                    headers=local).status_code == 403
    system = auth(config, "admin")
    assert http.put("/api/v1/directory/locations/Adana", json=districts,
                    headers=system).status_code == 200
    items = http.get("/api/v1/directory/locations", headers=system).get_json()["items"]
    assert {"province": "Adana", **districts} in items
    bad = http.put("/api/v1/directory/locations/Adana", json={"districts": [{"x": 1}]},
                   headers=system)
    assert bad.status_code == 422 and "districts" in bad.get_json()["errors"]["json"]


def test_two_staff_acting_on_one_case_at_once_one_wins_and_the_other_gets_409(
        config, http, open_application):
    app_id = open_application()
    expert = auth(config, "expert", "mez-0008")
    pool = eventlet.GreenPool(4)
    answers = list(pool.imap(lambda _: http.post(f"/api/v1/cases/{app_id}/acknowledge",
                                                 json={}, headers=expert), range(4)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    refused = next(a for a in answers if a.status_code == 409).get_json()
    assert refused["errors"] == {"state": ["acknowledged"]}
    case = database(config, "routing")["cases"].find_one({"_id": app_id})
    assert [e["type"] for e in case["_outbox"]][-1:] == ["case_acknowledged"]
    assert sum(e["type"] == "case_acknowledged" for e in case["_outbox"]) == 1
    assert [s["event"] for s in case["history"]].count("case_acknowledged") == 1


def test_the_inbox_keeps_every_case_routed_and_moved_at_the_same_time(
        config, http, open_application):
    pool = eventlet.GreenPool(10)
    ids = list(pool.imap(lambda i: open_application(minutes=i), range(10)))
    expert = auth(config, "expert", "mez-0008")
    assert http.get("/api/v1/cases?per_page=200", headers=expert).get_json()["total"] == 10
    centre = auth(config, "coordinator")
    moved = list(pool.imap(lambda app_id: http.post(
        f"/api/v1/cases/{app_id}/transfer", json={"unit": "mezitli_bld.parks", "reason": "park"},
        headers=centre).status_code, ids[:6]))
    assert moved == [200] * 6
    works = http.get("/api/v1/cases?per_page=200", headers=expert).get_json()
    assert sorted(c["application_id"] for c in works["items"]) == sorted(ids[6:])
    assert works["total"] == 4
    parks = http.get("/api/v1/cases?unit=mezitli_bld.parks&per_page=200",
                     headers=centre).get_json()
    assert [c["application_id"] for c in parks["items"]] == ids[:6]  # oldest first


def test_the_inbox_reads_by_id_only_and_drops_an_entry_its_case_left(
        config, http, open_application, monkeypatch):
    ids = [open_application(minutes=i) for i in range(3)]
    store = RoutingStore(database(config, "routing"))
    # a writer that stopped between moving a case and deleting the inbox entry it left
    store.cases.update_one({"_id": ids[1]}, {"$set": {
        "unit": "mezitli_bld.parks", "inbox": {"unit": "mezitli_bld.parks", "stint": "x"}}})
    queries = []
    real_find_one, real_find = Collection.find_one, Collection.find

    def find_one(self, filter=None, *args, **kwargs):  # noqa: A002 - pymongo's name
        queries.append((self.name, filter))
        return real_find_one(self, filter, *args, **kwargs)

    def find(self, filter=None, *args, **kwargs):  # noqa: A002
        queries.append((self.name, filter))
        return real_find(self, filter, *args, **kwargs)

    monkeypatch.setattr(Collection, "find_one", find_one)
    monkeypatch.setattr(Collection, "find", find)
    monkeypatch.setattr(Collection, "count_documents", lambda *a, **k: pytest.fail("a scan"))
    expert = auth(config, "expert", "mez-0008")
    page = http.get("/api/v1/cases", headers=expert).get_json()
    assert [c["application_id"] for c in page["items"]] == [ids[0], ids[2]]
    assert page["total"] == 2
    assert [name for name, _ in queries if name == "cases"]  # the page, by _id:
    assert all(set(filter_) == {"_id"} and isinstance(filter_["_id"], str)
               for name, filter_ in queries if name == "cases")
    # and the unit's own open cases, nothing else
    assert {name for name, _ in queries if name.startswith("inbox")} == {
        "inbox.mezitli_bld.works"}
    monkeypatch.undo()
    again = http.get("/api/v1/cases", headers=expert).get_json()
    assert again["total"] == 2  # the stale entry is gone for good


def test_a_role_that_may_never_act_is_refused_before_its_body_or_the_record_is_looked_at(
        config, http, open_application):
    # Found by the authorisation matrix (docs/authorisation.md): these answered 422 (the schema)
    # or 404 (whether a code exists) to roles that may never make the change.
    expert = auth(config, "expert", unit="mezitli_bld.works")
    for method, path in (("POST", "/api/v1/directory/units"),
                         ("DELETE", "/api/v1/directory/units/no_such_unit"),
                         ("PATCH", "/api/v1/directory/staff/no-such-staff"),
                         ("POST", "/api/v1/categories")):
        answer = http.open(path, method=method, json={}, headers=expert)
        assert answer.status_code == 403, (method, path, answer.get_json())
        assert "role" in answer.get_json()["errors"]
    app_id = open_application()
    mayor = auth(config, "mayor", institution="mezitli_bld")
    answer = http.post(f"/api/v1/cases/{app_id}/transfer", json={}, headers=mayor)
    assert answer.status_code == 403, answer.get_json()
    assert answer.get_json()["message"] == "role mayor may not transfer a case"


def test_an_institutions_coordinator_reads_only_its_own_institutions_staff_records(
        config, http):
    # Found by the authorisation matrix: staff records carry phones and e-mails, and a token
    # bound to Mezitli read every institution's.
    mezitli = auth(config, "coordinator", "mez-0004", institution="mezitli_bld")
    listed = http.get("/api/v1/directory/staff", headers=mezitli).get_json()["items"]
    assert listed and {s["institution"] for s in listed} == {"mezitli_bld"}
    other = http.get("/api/v1/directory/staff?institution=toroslar_bld", headers=mezitli)
    assert other.status_code == 403 and "inst" in other.get_json()["errors"]
    assert http.get("/api/v1/directory/staff/magm-0001", headers=mezitli).status_code == 403
    assert http.get("/api/v1/directory/staff/mez-0008", headers=mezitli).status_code == 200
    centre = auth(config, "coordinator")
    assert http.get("/api/v1/directory/staff/magm-0001", headers=centre).status_code == 200
    everyone = http.get("/api/v1/directory/staff", headers=centre).get_json()["items"]
    assert len({s["institution"] for s in everyone}) > 1


# -- KVKK: refused case reads in the audit log, and the administrators' search ----------


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


def test_the_coordination_queue_lists_what_no_rule_matched_for_the_centre_only(
        config, http, open_application):
    unknown = open_application("no_such_category")  # → mersin_bb.coordination
    unmapped = open_application("unmapped_example", minutes=1)  # → mezitli_bld.coordination
    routed = open_application("road_damage", minutes=2)  # → mezitli_bld.works: not listed
    everything = http.get("/api/v1/cases/coordination", headers=auth(config, "coordinator"))
    assert everything.status_code == 200, everything.get_json()
    listed = [item["application_id"] for item in everything.get_json()["items"]]
    assert listed == [unknown, unmapped] and routed not in listed
    mezitli = http.get("/api/v1/cases/coordination", headers=auth(
        config, "coordinator", "mez-0004", institution="mezitli_bld")).get_json()
    assert [item["application_id"] for item in mezitli["items"]] == [unmapped]
    for role in ("expert", "supervisor", "mayor", "ministry_officer"):
        refused = http.get("/api/v1/cases/coordination?state=bogus",  # the role first
                           headers=auth(config, role, unit="mezitli_bld.works"))
        assert refused.status_code == 403 and "role" in refused.get_json()["errors"]
    worked = http.post(f"/api/v1/cases/{unmapped}/acknowledge", json={},
                       headers=auth(config, "coordinator"))
    assert worked.status_code == 200
    states = http.get("/api/v1/cases/coordination?state=acknowledged",
                      headers=auth(config, "admin")).get_json()
    assert [item["application_id"] for item in states["items"]] == [unmapped]
