"""The routing service on the real broker: routing, muhtar requests, first-contact answers,
the citizen's reopen, escalation levels — each handled once — and the admin API's changes
reaching the event handlers of the same process."""
from datetime import UTC, datetime, timedelta

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from services.common.auth import mint_token
from services.common.bootstrap import parts_of
from services.common.events import make_event, new_event_id, utcnow
from services.common.outbox import HANDLED, OUTBOX
from services.routing.service import RoutingService
from services.routing.web import create_app
from tests.support import database, deliver


@pytest.fixture
def app_id() -> str:
    return new_event_id()


@pytest.fixture
def routing(config, container_factory):
    container = container_factory(RoutingService, config)
    container.start()
    return container


@pytest.fixture
def http(routing):
    """The Flask side of the same process: the parts the container built (one directory, one
    relay), as the runner serves it."""
    return create_app(parts_of(routing)).test_client()


def token(config, role, unit=None, user="staff-test", institution=None) -> dict:
    secret = config["STAFF_TOKEN_SECRET"]
    return {"Authorization": f"Bearer {mint_token(secret, user, role, unit, institution)}"}


def received(app_id, category="road_damage", district="Mezitli", at=None, **extra) -> dict:
    at = at or utcnow()
    return make_event("application_received", app_id, {
        "tracking_code": "K7M4QX2D9", "security_digest": "d" * 64, "kind": "complaint",
        "category": category, "channel": "web",
        "location": {"province": "Mersin", "district": district, "neighbourhood": "Tece"},
        "received_at": at, **extra}, occurred_at=at)


def case_doc(config, app_id) -> dict:
    return database(config, "routing")["cases"].find_one({"_id": app_id})


def test_a_received_application_is_routed_once_with_the_rule(config, routing, probe, app_id):
    routed = probe("routing", "application_routed")
    event = received(app_id)
    deliver(config, routing, event)
    deliver(config, routing, event)  # redelivered: nothing happens twice
    [published] = routed.take(1)
    assert published["data"]["unit"] == "mezitli_bld.works"
    assert published["data"]["rule"].endswith("|mapping:mezitli_bld.works")
    assert routed.others(published) == []
    assert case_doc(config, app_id)[HANDLED] == [event["event_id"]]


def test_a_muhtar_request_waits_at_the_ministry_desk_until_forwarded(
    config, routing, probe, http, app_id
):
    routed = probe("routing", "application_routed")
    deliver(config, routing, received(app_id, "school_building", "Yenişehir",
                                      channel="muhtar", kind="request"))
    doc = case_doc(config, app_id)
    assert (doc["state"], doc["unit"]) == ("received", "magm.muhtar_desk")
    assert not doc.get(OUTBOX)  # nothing routed yet: the muhtar sees Pending

    desk = token(config, "ministry_officer", user="magm-0003")
    inbox = http.get("/api/v1/cases?unit=magm.muhtar_desk", headers=desk).get_json()
    assert [c["application_id"] for c in inbox["items"]] == [app_id]
    answer = http.post(f"/api/v1/cases/{app_id}/forward", json={}, headers=desk)
    assert answer.status_code == 200, answer.get_json()
    [published] = routed.take(1)
    assert (published["data"]["institution"], published["data"]["unit"]) == (
        "mersin_mem", "mersin_mem.construction")
    assert published["data"]["rule"].startswith("muhtar:forwarded-by:magm-0003")


def test_an_answer_at_first_contact_closes_the_case_answered(config, routing, probe, app_id):
    closed = probe("routing", "case_closed")
    deliver(config, routing, received(app_id, "information", kind="information",
                                      answered=True, answer="Hafta içi 08:30–17:30."))
    [published] = closed.take(1)
    assert (published["data"]["state"], published["data"]["result"]) == (
        "answered", "Hafta içi 08:30–17:30.")
    assert case_doc(config, app_id)["rule"] == "first-contact"


def close_through_http(config, http, app_id) -> None:
    expert = token(config, "expert", "mezitli_bld.works", "mez-0008")
    supervisor = token(config, "supervisor", "mezitli_bld.works", "mez-0010")
    centre = token(config, "coordinator", user="mbb-0005")
    for action, body, who in [("acknowledge", {}, expert), ("start", {}, expert),
                              ("resolve", {"result": "Onarıldı."}, expert),
                              ("approve", {}, supervisor), ("close", {}, centre)]:
        answer = http.post(f"/api/v1/cases/{app_id}/{action}", json=body, headers=who)
        assert answer.status_code == 200, (action, answer.get_json())


def reopen_request(app_id, at=None) -> dict:
    return make_event("reopen_requested", app_id, {"reason": "Çukur yine açıldı."},
                      occurred_at=at or utcnow())


def test_the_citizens_reopen_sends_a_closed_case_back_to_the_same_unit(
    config, routing, probe, http, app_id
):
    reopened = probe("routing", "case_reopened")
    acknowledged = probe("routing", "case_acknowledged")
    deliver(config, routing, received(app_id))
    close_through_http(config, http, app_id)
    assert acknowledged.take(1)[0]["data"]["by"] == "mez-0008"  # HTTP actions reach the bus
    ask = reopen_request(app_id)
    deliver(config, routing, ask)
    deliver(config, routing, ask)
    [published] = reopened.take(1)
    assert (published["data"]["state"], published["data"]["unit"]) == (
        "assigned", "mezitli_bld.works")
    assert reopened.others(published) == []  # once


def test_a_reopen_after_the_categorys_window_is_refused_and_recorded(
    config, routing, probe, http, app_id
):
    reopened = probe("routing", "case_reopened")
    deliver(config, routing, received(app_id))
    close_through_http(config, http, app_id)
    deliver(config, routing, reopen_request(app_id, utcnow() + timedelta(days=16)))
    doc = case_doc(config, app_id)
    assert doc["state"] == "closed"
    assert doc["history"][-1]["event"] == "reopen_refused"
    # neither waiting to be published nor published
    assert all(e["type"] != "case_reopened" for e in doc.get(OUTBOX) or [])
    assert reopened.take() == []


def test_sla_escalation_raises_the_cases_level(config, routing, app_id):
    deliver(config, routing, received(app_id))
    deliver(config, routing, make_event("case_escalated", app_id, {
        "from_level": 0, "to_level": 1, "to_role": "supervisor", "to_staff": "mez-0010"}))
    assert case_doc(config, app_id)["escalation_level"] == 1


def test_an_admin_mapping_change_is_used_by_the_next_decision_on_the_bus(
    config, routing, probe, http, app_id
):
    routed = probe("routing", "application_routed")
    admin = token(config, "admin", user="adm-0001", institution="mezitli_bld")
    answer = http.put("/api/v1/directory/institutions/mezitli_bld/mappings/road_damage",
                      json={"unit": "mezitli_bld.rural_services"}, headers=admin)
    assert answer.status_code == 200, answer.get_json()
    deliver(config, routing, received(app_id))
    [published] = routed.take(1)
    assert published["data"]["unit"] == "mezitli_bld.rural_services"


def test_received_at_is_kept_as_sent(config, routing, app_id):
    at = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
    deliver(config, routing, received(app_id, at=at))
    assert case_doc(config, app_id)["received_at"] == at


# -- may_read: intake's and notify's staff reads, scoped as routing's own case view ------------


def reader(role, unit=None, institution=None, user="staff-test") -> dict:
    """The claims intake and notify send with `may_read` (a staff token's)."""
    return {"user": user, "role": role, "unit": unit, "institution": institution}


@pytest.mark.parametrize(("actor", "allowed"), [
    (reader("expert", "mezitli_bld.works", "mezitli_bld"), True),
    (reader("expert", "mezitli_bld.cleaning", "mezitli_bld"), False),
    (reader("supervisor", "toroslar_bld.works", "toroslar_bld"), False),
    (reader("mayor", institution="mezitli_bld"), True),
    (reader("mayor", institution="toroslar_bld"), False),
    (reader("coordinator", institution="mezitli_bld"), True),
    (reader("admin", institution="toroslar_bld"), False),
    (reader("ministry_officer", "magm.muhtar_desk"), False),
    (reader("coordinator"), True),
    (reader("admin"), True),
], ids=lambda value: "-".join(filter(None, map(str, value.values())))
    if isinstance(value, dict) else str(value))
def test_may_read_answers_as_routings_own_case_view_does(config, routing, http, app_id, actor,
                                                         allowed):
    deliver(config, routing, received(app_id))  # held by mezitli_bld.works
    with ServiceRpcProxy("routing", config, timeout=20) as proxy:
        verdict = proxy.may_read(app_id, actor)
    assert verdict == {"allowed": allowed, "unit": "mezitli_bld.works",
                       "institution": "mezitli_bld"}
    # the same rule as routing's own case read: 200 where allowed, 403 where not
    view = http.get(f"/api/v1/cases/{app_id}", headers=token(
        config, actor["role"], actor["unit"], actor["user"], actor["institution"]))
    assert view.status_code == (200 if allowed else 403)


def test_may_read_an_unknown_application_only_for_those_who_see_everything(config, routing):
    unknown = new_event_id()
    with ServiceRpcProxy("routing", config, timeout=20) as proxy:
        answers = {role: proxy.may_read(unknown, actor) for role, actor in {
            "admin": reader("admin"), "coordinator": reader("coordinator"),
            "admin (inst)": reader("admin", institution="mezitli_bld"),
            "expert": reader("expert", "mezitli_bld.works", "mezitli_bld"),
            "mayor": reader("mayor", institution="mezitli_bld")}.items()}
    assert {role: answer["allowed"] for role, answer in answers.items()} == {
        "admin": True, "coordinator": True, "admin (inst)": False, "expert": False,
        "mayor": False}
    assert all(answer["unit"] is None for answer in answers.values())


def test_may_read_refuses_claims_that_are_no_staff_tokens(config, routing, app_id):
    deliver(config, routing, received(app_id))
    with ServiceRpcProxy("routing", config, timeout=20) as proxy:
        assert not proxy.may_read(app_id, reader("janitor", "mezitli_bld.works"))["allowed"]
        assert not proxy.may_read(app_id, reader("expert", "mezitli_bld.works", user=""))[
            "allowed"]
        assert not proxy.may_read(app_id, "admin")["allowed"]
