"""Issue 13: intake's citizen registry is scoped. The TCKN search and registering or correcting
a citizen are the desk's (`DESK_ROLES`: 403 naming `role` for the others); every role that
does not see everything reads a citizen only through a case it holds: `application_id` names
one of the citizen's applications that routing's `may_read` allows, and the history lists that
application alone. A refusal is a 403 naming `application_id` and a `citizen.read.refused`
entry in intake's audit log; no answer from routing is a 503 with `Retry-After`."""
import pytest

from services.routing.service import RoutingService
from tests.intake.intake_samples import OTHER_TCKN, TCKN, WEB
from tests.support import bearer, database, deliver

HOLDER, HOLDER_INST = "mezitli_bld.works", "mezitli_bld"  # where road_damage in Mezitli goes
OTHER_UNIT = "mezitli_bld.cleaning"  # where cleaning in Mezitli goes
EXPERT = ("expert", HOLDER, "mez-0008", HOLDER_INST)


def db(config):
    return database(config, "intake")


def audit_entries(config, **match) -> list[dict]:
    return list(db(config)["audit_log"].find(match).sort("at", 1))


@pytest.fixture
def routing(config, container_factory):
    """The real routing service, answering `may_read` on the test's broker."""
    container = container_factory(RoutingService, config)
    container.start()
    return container


def submit(client, category: str) -> str:
    """The sample citizen's application in `category`; its id."""
    answer = client.post("/api/v1/applications", json=dict(WEB, category=category))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["application_id"]


def routed(config, routing, application_id: str) -> None:
    """Hand routing intake's own `application_received` (as the relay would) and wait."""
    stored = db(config)["applications"].find_one({"_id": application_id})
    [envelope] = [e for e in stored["_outbox"] if e["type"] == "application_received"]
    deliver(config, routing, envelope)


@pytest.fixture
def cases(client, config, routing) -> dict[str, str]:
    """The sample citizen's two applications, routed: `own` held by `HOLDER`, `other` by
    `OTHER_UNIT`; and `citizen`: the citizen's id."""
    own, other = submit(client, "road_damage"), submit(client, "cleaning")
    for application_id in (own, other):
        routed(config, routing, application_id)
    citizen = db(config)["applications"].find_one({"_id": own})["citizen_id"]
    assert db(config)["applications"].find_one({"_id": other})["citizen_id"] == citizen
    return {"own": own, "other": other, "citizen": citizen}


def test_an_expert_reads_the_citizen_of_their_own_case_with_that_case_alone(
        client, config, cases):
    answer = client.get(f"/api/v1/citizens/{cases['citizen']}", headers=bearer(config, *EXPERT),
                        query_string={"application_id": cases["own"], "reason": "geri arama"})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["first_name"] == "Ayşe" and body["tckn"] == "100******46"
    assert [a["id"] for a in body["applications"]] == [cases["own"]]  # not the other unit's
    [read] = audit_entries(config, staff="mez-0008")
    assert (read["action"], read["citizen_id"], read["application_id"]) == (
        "citizen.read", cases["citizen"], cases["own"])


def test_an_expert_naming_another_units_case_is_refused_and_audited(client, config, cases):
    answer = client.get(f"/api/v1/citizens/{cases['citizen']}", headers=bearer(config, *EXPERT),
                        query_string={"application_id": cases["other"]})
    assert answer.status_code == 403
    body = answer.get_json()
    assert set(body) == {"code", "status", "message", "errors"}
    assert "application_id" in body["errors"]
    assert "Ayşe" not in answer.get_data(as_text=True)
    [refused] = audit_entries(config, staff="mez-0008")
    assert refused["action"] == "citizen.read.refused"
    assert (refused["citizen_id"], refused["application_id"], refused["case_unit"]) == (
        cases["citizen"], cases["other"], OTHER_UNIT)
    assert not {"tckn", "first_name", "phone", "email"} & set(refused)  # ids only


@pytest.mark.parametrize(("role", "unit", "institution"), [
    ("expert", HOLDER, HOLDER_INST), ("director", HOLDER, HOLDER_INST),
    ("mayor", None, HOLDER_INST), ("coordinator", None, HOLDER_INST),
    ("admin", None, HOLDER_INST)])
def test_without_an_application_a_scoped_role_is_refused_naming_it(
        client, config, cases, role, unit, institution):
    staff = bearer(config, role, unit, "scoped-1", institution)
    answer = client.get(f"/api/v1/citizens/{cases['citizen']}", headers=staff)
    assert answer.status_code == 403 and "application_id" in answer.get_json()["errors"]
    assert "Ayşe" not in answer.get_data(as_text=True)
    [refused] = audit_entries(config, staff="scoped-1")
    assert (refused["action"], refused["refusal"]) == ("citizen.read.refused", "no_application")


def test_a_case_the_expert_holds_opens_only_its_own_citizen(client, config, cases):
    desk = bearer(config, "coordinator", user="desk-1")
    other = client.post("/api/v1/citizens", headers=desk, json={
        "tckn": OTHER_TCKN, "first_name": "Zeynep", "last_name": "Aksoy",
        "phone": "05554443322"})
    assert other.status_code == 201, other.get_json()
    answer = client.get(f"/api/v1/citizens/{other.get_json()['id']}",
                        headers=bearer(config, *EXPERT),
                        query_string={"application_id": cases["own"]})
    assert answer.status_code == 403 and "application_id" in answer.get_json()["errors"]
    assert "Zeynep" not in answer.get_data(as_text=True)
    [refused] = audit_entries(config, staff="mez-0008")
    assert (refused["action"], refused["refusal"]) == ("citizen.read.refused",
                                                       "not_the_citizens")


def test_the_coordination_centre_reads_the_whole_history_without_asking_routing(
        client, config, parts):
    own, other = submit(client, "road_damage"), submit(client, "noise")  # no routing runs
    citizen = db(config)["applications"].find_one({"_id": own})["citizen_id"]
    asked: list[str] = []
    parts.read_scope.ask = lambda application_id, actor: asked.append(application_id)
    answer = client.get(f"/api/v1/citizens/{citizen}", headers=bearer(config, "coordinator"))
    assert answer.status_code == 200, answer.get_json()
    assert {a["id"] for a in answer.get_json()["applications"]} == {own, other}
    assert asked == []


def test_without_routing_a_scoped_read_is_a_503_with_retry_after(client, config):
    own = submit(client, "road_damage")  # no routing service runs
    citizen = db(config)["applications"].find_one({"_id": own})["citizen_id"]
    answer = client.get(f"/api/v1/citizens/{citizen}", headers=bearer(config, *EXPERT),
                        query_string={"application_id": own})
    assert answer.status_code == 503, answer.get_data(as_text=True)[:300]
    assert answer.headers["Retry-After"].isdigit()
    assert "application_id" in answer.get_json()["errors"]
    assert audit_entries(config, staff="mez-0008") == []  # nothing was read


@pytest.mark.parametrize("institution", [None, HOLDER_INST])
def test_the_desk_searches_by_tckn(client, config, institution):
    submit(client, "road_damage")
    found = client.post("/api/v1/citizens/search", json={"tckn": TCKN},
                        headers=bearer(config, "coordinator", user="desk-1",
                                       institution=institution))
    assert found.status_code == 200, found.get_json()
    assert found.get_json()["tckn"] == "100******46"


@pytest.mark.parametrize(("role", "unit", "institution"), [
    ("expert", HOLDER, HOLDER_INST), ("supervisor", HOLDER, HOLDER_INST),
    ("director", HOLDER, HOLDER_INST), ("mayor", None, HOLDER_INST),
    ("ministry_officer", "magm.muhtar_desk", None)])
def test_only_the_desk_searches_registers_and_corrects_citizens(
        client, config, role, unit, institution):
    citizen_id = submit(client, "road_damage") and db(config)["citizens"].find_one()["_id"]
    staff = bearer(config, role, unit, "not-desk-1", institution)
    for method, path, body in (
            ("POST", "/api/v1/citizens/search", {"tckn": TCKN}),
            ("POST", "/api/v1/citizens", {"tckn": OTHER_TCKN, "first_name": "Zeynep",
                                          "last_name": "Aksoy"}),
            ("PATCH", f"/api/v1/citizens/{citizen_id}", {"preferred_channel": "email"})):
        answer = client.open(path, method=method, json=body, headers=staff)
        assert answer.status_code == 403, (path, answer.get_json())
        assert "role" in answer.get_json()["errors"]
        assert "Ayşe" not in answer.get_data(as_text=True)
    assert audit_entries(config, staff="not-desk-1") == []
    assert db(config)["citizens"].count_documents({}) == 1
