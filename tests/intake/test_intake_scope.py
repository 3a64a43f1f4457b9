"""Issue 13: intake's staff reads of an application (and its attachments) are scoped as routing
scopes the case: routing's `may_read` RPC says whether the reader may, a refusal is a 403
naming `application_id` and an entry in intake's audit log, no answer from routing is a 503,
and the coordination centre and system-wide administrators are not asked at all."""
import io
import json
from datetime import timedelta

import pytest

from services.common.events import utcnow
from services.routing.service import RoutingService
from tests.intake.intake_samples import DESK, jpeg
from tests.support import bearer, database, deliver

HOLDER, HOLDER_INST = "mezitli_bld.works", "mezitli_bld"  # the sample's road_damage in Mezitli
OTHER_UNIT = "mezitli_bld.cleaning"


def db(config):
    return database(config, "intake")


@pytest.fixture
def routing(config, container_factory):
    """The real routing service, answering `may_read` on the test's broker."""
    container = container_factory(RoutingService, config)
    container.start()
    return container


def submitted(client, config) -> tuple[str, str]:
    """A field team's application with a photo; (application id, the photo's file id)."""
    form = dict(DESK, location=dict(DESK["location"], lat=36.745, lon=34.531))
    answer = client.post("/api/v1/channels/field", headers=bearer(config), data={
        "data": json.dumps(form), "photos": [(io.BytesIO(jpeg()), "saha.jpg")]},
        content_type="multipart/form-data")
    assert answer.status_code == 201, answer.get_json()
    application_id = answer.get_json()["application_id"]
    [photo] = db(config)["applications"].find_one({"_id": application_id})["attachments"]
    return application_id, photo["id"]


def routed(config, routing, application_id: str) -> None:
    """Hand routing intake's own `application_received` (as the relay would) and wait."""
    stored = db(config)["applications"].find_one({"_id": application_id})
    [envelope] = [e for e in stored["_outbox"] if e["type"] == "application_received"]
    deliver(config, routing, envelope)


def audit_entries(config, **match) -> list[dict]:
    return list(db(config)["audit_log"].find(match))


@pytest.fixture
def held(client, config, routing) -> tuple[str, str]:
    """An application whose case routing holds in `HOLDER`; (its id, its photo's id)."""
    application_id, file_id = submitted(client, config)
    routed(config, routing, application_id)
    return application_id, file_id


@pytest.mark.parametrize(("role", "unit", "institution"), [
    ("expert", HOLDER, HOLDER_INST), ("supervisor", HOLDER, HOLDER_INST),
    ("mayor", None, HOLDER_INST), ("coordinator", None, HOLDER_INST)])
def test_staff_of_the_holding_unit_or_institution_read_the_application_and_its_photo(
        client, config, held, role, unit, institution):
    application_id, file_id = held
    staff = bearer(config, role, unit, f"{role}-1", institution)
    view = client.get(f"/api/v1/applications/{application_id}", headers=staff)
    assert view.status_code == 200, view.get_json()
    assert view.get_json()["id"] == application_id
    photo = client.get(f"/api/v1/applications/{application_id}/attachments/{file_id}",
                       headers=staff)
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert [e["action"] for e in audit_entries(config, staff=f"{role}-1")] == [
        "application.read", "attachment.read"]


@pytest.mark.parametrize(("role", "unit", "institution"), [
    ("expert", OTHER_UNIT, HOLDER_INST), ("director", "toroslar_bld.works", "toroslar_bld"),
    ("mayor", None, "toroslar_bld"), ("admin", None, "toroslar_bld"),
    ("ministry_officer", "magm.muhtar_desk", None)])
def test_staff_of_another_unit_or_institution_are_refused_and_the_refusal_is_audited(
        client, config, held, role, unit, institution):
    application_id, file_id = held
    staff = bearer(config, role, unit, "outsider-1", institution)
    view = client.get(f"/api/v1/applications/{application_id}", headers=staff)
    assert view.status_code == 403
    body = view.get_json()
    assert set(body) == {"code", "status", "message", "errors"}
    assert "application_id" in body["errors"]
    assert "Demir" not in view.get_data(as_text=True)
    photo = client.get(f"/api/v1/applications/{application_id}/attachments/{file_id}",
                       headers=staff)
    assert photo.status_code == 403 and "application_id" in photo.get_json()["errors"]

    entries = audit_entries(config, staff="outsider-1")
    assert [e["action"] for e in entries] == ["application.read.refused",
                                              "attachment.read.refused"]
    refused, refused_photo = entries
    assert (refused["application_id"], refused["role"], refused["case_unit"]) == (
        application_id, role, HOLDER)
    assert refused["citizen_id"] is None  # no citizen data in a refusal
    assert refused_photo["file_id"] == file_id


def test_the_administrators_audit_search_finds_a_refused_read(client, config, held):
    application_id, _ = held
    client.get(f"/api/v1/applications/{application_id}",
               headers=bearer(config, "expert", OTHER_UNIT, "outsider-2", HOLDER_INST))
    now = utcnow()
    found = client.get("/api/v1/citizens/audit", headers=bearer(config, "admin"), query_string={
        "action": "application.read.refused", "from": (now - timedelta(hours=1)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat()})
    assert found.status_code == 200, found.get_json()
    assert [(e["staff"], e["application_id"]) for e in found.get_json()["items"]] == [
        ("outsider-2", application_id)]


class Spy:
    """Stands in for routing's `may_read`, counting the calls."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, application_id: str, actor: dict) -> dict:
        self.calls.append((application_id, actor))
        return {"allowed": False, "unit": None, "institution": None}


@pytest.mark.parametrize("role", ["admin", "coordinator"])
def test_the_coordination_centre_and_administrators_read_without_asking_routing(
        client, config, parts, role):
    application_id, file_id = submitted(client, config)  # no routing service runs at all
    spy = parts.read_scope.ask = Spy()
    staff = bearer(config, role, user=f"{role}-1")
    assert client.get(f"/api/v1/applications/{application_id}", headers=staff).status_code == 200
    assert client.get(f"/api/v1/applications/{application_id}/attachments/{file_id}",
                      headers=staff).status_code == 200
    assert spy.calls == []
    # an institution's administrator is asked (and here, refused)
    bound = bearer(config, role, user=f"{role}-2", institution=HOLDER_INST)
    assert client.get(f"/api/v1/applications/{application_id}", headers=bound).status_code == 403
    assert spy.calls == [(application_id, {"user": f"{role}-2", "role": role, "unit": None,
                                           "institution": HOLDER_INST})]


def test_without_routing_a_scoped_read_is_a_503_with_retry_after_and_nothing_is_shown(
        client, config):
    application_id, file_id = submitted(client, config)  # no routing service runs
    staff = bearer(config, "expert", HOLDER, "expert-1", HOLDER_INST)
    for path in (f"/api/v1/applications/{application_id}",
                 f"/api/v1/applications/{application_id}/attachments/{file_id}"):
        answer = client.get(path, headers=staff)
        assert answer.status_code == 503, answer.get_data(as_text=True)[:300]
        assert answer.headers["Retry-After"].isdigit()
        assert "application_id" in answer.get_json()["errors"]
    assert audit_entries(config, staff="expert-1") == []  # nothing was read


def test_routing_is_asked_before_the_application_is_looked_up(client, config, routing):
    # an unknown id: an expert learns nothing (403), not whether it exists (404)
    staff = bearer(config, "expert", HOLDER, "expert-1", HOLDER_INST)
    assert client.get("/api/v1/applications/no-such-one", headers=staff).status_code == 403
    assert client.get("/api/v1/applications/no-such-one",
                      headers=bearer(config, "admin")).status_code == 404
