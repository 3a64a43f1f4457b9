"""Issue 13: notify's delivery log is shown within the application's scope as routing decides
it (routing's `may_read` RPC); a refusal is a 403 naming `application_id` and an entry of
notify's audit log, no answer from routing a 503, and the coordination centre and system-wide
administrators are not asked."""
from datetime import timedelta

import pytest

from services.common.events import make_event, new_event_id, utcnow
from services.notify.bootstrap import build
from services.notify.web import create_app
from services.routing.service import RoutingService
from tests.notify.test_notify_http import record
from tests.support import bearer, database, deliver

HOLDER, HOLDER_INST = "mezitli_bld.works", "mezitli_bld"  # the sample's road_damage in Mezitli
LOG = "/api/v1/notifications"


@pytest.fixture
def parts(config):
    built = build(config)
    yield built
    built.close()


@pytest.fixture
def client(parts):
    return create_app(parts).test_client()


@pytest.fixture
def routing(config, container_factory):
    """The real routing service, answering `may_read` on the test's broker."""
    container = container_factory(RoutingService, config)
    container.start()
    return container


@pytest.fixture
def held(config, routing, parts) -> str:
    """An application routing holds in `HOLDER`, with one message in notify's log."""
    application_id = new_event_id()
    deliver(config, routing, make_event("application_received", application_id, {
        "tracking_code": "K7M4QX2D9", "security_digest": "d" * 64, "kind": "complaint",
        "category": "road_damage", "channel": "web", "received_at": utcnow(),
        "location": {"province": "Mersin", "district": "Mezitli", "neighbourhood": "Tece"}}))
    record(parts.store, application_id, "application_received", minutes_ago=1)
    return application_id


def refusals(config) -> list[dict]:
    return list(database(config, "notify")["audit_log"].find())


@pytest.mark.parametrize(("role", "unit", "institution"), [
    ("expert", HOLDER, HOLDER_INST), ("director", HOLDER, HOLDER_INST),
    ("deputy_mayor", None, HOLDER_INST), ("coordinator", None, HOLDER_INST)])
def test_staff_of_the_holding_unit_or_institution_see_the_delivery_log(
        client, config, held, role, unit, institution):
    answer = client.get(LOG, query_string={"application_id": held},
                        headers=bearer(config, role, unit, f"{role}-1", institution))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["count"] == 1
    assert refusals(config) == []


@pytest.mark.parametrize(("role", "unit", "institution"), [
    ("expert", "mezitli_bld.cleaning", HOLDER_INST), ("mayor", None, "toroslar_bld"),
    ("admin", None, "toroslar_bld")])
def test_staff_of_another_unit_or_institution_are_refused_and_the_refusal_is_audited(
        client, config, held, role, unit, institution):
    answer = client.get(LOG, query_string={"application_id": held},
                        headers=bearer(config, role, unit, "outsider-1", institution))
    assert answer.status_code == 403
    assert "application_id" in answer.get_json()["errors"]["query"]
    assert "items" not in answer.get_json() and "+90555" not in answer.get_data(as_text=True)
    [refused] = refusals(config)
    assert (refused["action"], refused["staff"], refused["application_id"],
            refused["case_unit"]) == ("notifications.read.refused", "outsider-1", held, HOLDER)
    assert refused["citizen_id"] is None
    # the administrators' search finds it
    now = utcnow()
    found = client.get(f"{LOG}/audit", headers=bearer(config, "admin"), query_string={
        "from": (now - timedelta(hours=1)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat()})
    assert found.status_code == 200, found.get_json()
    assert [e["application_id"] for e in found.get_json()["items"]] == [held]


@pytest.mark.parametrize("role", ["admin", "coordinator"])
def test_the_coordination_centre_and_administrators_are_not_asked(client, config, parts, role):
    record(parts.store, "app-1", "application_received", minutes_ago=1)  # no routing runs
    asked = []
    parts.read_scope.ask = lambda application_id, actor: asked.append(application_id)
    answer = client.get(LOG, query_string={"application_id": "app-1"},
                        headers=bearer(config, role))
    assert answer.status_code == 200 and answer.get_json()["count"] == 1
    assert asked == []


def test_without_routing_a_scoped_read_is_a_503_with_retry_after(client, config, parts):
    record(parts.store, "app-1", "application_received", minutes_ago=1)  # no routing runs
    answer = client.get(LOG, query_string={"application_id": "app-1"},
                        headers=bearer(config, "expert", HOLDER, "expert-1", HOLDER_INST))
    assert answer.status_code == 503, answer.get_data(as_text=True)[:300]
    assert answer.headers["Retry-After"].isdigit()
    assert "items" not in answer.get_json()
