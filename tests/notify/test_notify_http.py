"""Notify's delivery log over HTTP: staff only, masked, one application at a time."""
from datetime import timedelta

import pytest

from services.common.events import load_event, make_event, utcnow
from services.notify import domain
from services.notify.bootstrap import build
from services.notify.store import NotifyStore
from services.notify.web import create_app
from tests.support import bearer


@pytest.fixture
def parts(config):
    """Notify's parts as the runner gives them to the Flask app (no nameko side here)."""
    parts = build(config)
    yield parts
    parts.close()


@pytest.fixture
def store(parts):
    return parts.store


@pytest.fixture
def client(parts):
    return create_app(parts).test_client()


def record(store: NotifyStore, application_id: str, template: str, *, minutes_ago: int,
           error: str | None = None) -> str:
    """A finished message in the log, as the service leaves it."""
    cause = load_event(make_event("application_received", application_id, {
        "tracking_code": "K7M4QX2D9", "security_digest": "d" * 64, "kind": "complaint",
        "category": "road_damage", "channel": "web", "location": {"province": "Mersin"},
        "received_at": utcnow(),
    }))
    at = utcnow() - timedelta(minutes=minutes_ago)
    key = domain.message_key(cause["event_id"], template)
    message = domain.new_message(key, cause, domain.Recipient("sms", "+905551112233"), template,
                                 provider="dev", claim="c", now=at)
    assert store.claim(message) is None  # ours
    result = {"error": error} if error else {"provider_message_id": "dev-1"}
    fields, event = domain.outcome(message, cause, now=at, **result)
    store.finish(key, "c", fields, [event])
    return key


def test_staff_see_an_applications_messages_oldest_first_with_masked_numbers(
    client, config, store
):
    later = record(store, "app-1", "application_routed", minutes_ago=1)
    first = record(store, "app-1", "application_received", minutes_ago=5, error="no contact")
    record(store, "app-2", "application_received", minutes_ago=3)
    response = client.get("/api/v1/notifications?application_id=app-1", headers=bearer(config))
    assert response.status_code == 200
    body = response.get_json()
    assert body["count"] == 2
    assert [item["id"] for item in body["items"]] == [first, later]
    failed, sent = body["items"]
    assert (failed["status"], failed["error"], failed["provider"]) == ("failed", "no contact",
                                                                       "none")
    assert (sent["status"], sent["template"], sent["provider_message_id"]) == (
        "sent", "application_routed", "dev-1")
    assert sent["destination"] == "+90555*****33"
    assert "5551112233" not in response.get_data(as_text=True)
    assert not any(key.startswith("_") for item in body["items"] for key in item)


def test_an_application_without_messages_has_an_empty_log(client, config):
    response = client.get("/api/v1/notifications?application_id=nope", headers=bearer(config))
    assert response.status_code == 200
    assert response.get_json() == {"application_id": "nope", "count": 0, "items": []}


def test_the_application_id_is_required(client, config):
    response = client.get("/api/v1/notifications", headers=bearer(config))
    assert response.status_code == 422
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"}
    assert "application_id" in body["errors"]["query"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"},
                                     {"Authorization": "Basic dTE6cGFzcw=="}])
def test_without_a_valid_staff_token_the_log_is_not_shown(client, config, store, headers):
    record(store, "app-1", "application_received", minutes_ago=1)
    response = client.get("/api/v1/notifications?application_id=app-1", headers=headers)
    assert response.status_code == 401
    body = response.get_json()
    assert body["code"] == 401 and set(body) == {"code", "status", "message", "errors"}
    assert "items" not in body


def test_an_unknown_path_is_a_404_in_the_shared_error_shape(client, config):
    response = client.get("/api/v1/notifications/whatever", headers=bearer(config))
    assert response.status_code == 404
    assert set(response.get_json()) == {"code", "status", "message", "errors"}


def test_the_openapi_document_describes_the_delivery_log(client):
    spec = client.get("/openapi.json").get_json()
    assert "/api/v1/notifications" in spec["paths"]
    parameters = spec["paths"]["/api/v1/notifications"]["get"]["parameters"]
    assert any(p["name"] == "application_id" and p["in"] == "query" for p in parameters)


def test_the_coordination_centre_records_a_citizens_opt_out_and_reads_it_back(client, config,
                                                                                store):
    ref = "c" * 64
    assert client.get(f"/api/v1/notifications/opt-outs/{ref}",
                      headers=bearer(config)).get_json()["opted_out"] is False
    response = client.put(f"/api/v1/notifications/opt-outs/{ref}", json={"opted_out": True},
                          headers=bearer(config, user="mbb-0005"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["opted_out"], body["source"]) == (True, "staff:mbb-0005")
    assert store.opted_out(ref)


@pytest.mark.parametrize(("body", "field"), [({}, "opted_out"), ({"opted_out": "maybe"},
                                                                  "opted_out")])
def test_a_bad_opt_out_is_a_422_naming_the_field_and_changes_nothing(client, config, store,
                                                                     body, field):
    ref = "c" * 64
    response = client.put(f"/api/v1/notifications/opt-outs/{ref}", json=body,
                          headers=bearer(config))
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["json"]
    assert store.opt_out_of(ref) is None


def test_an_expert_may_not_change_a_citizens_opt_out(client, config, store):
    response = client.put(f"/api/v1/notifications/opt-outs/{'c' * 64}",
                          json={"opted_out": True}, headers=bearer(config, "expert"))
    assert response.status_code == 403
    assert store.opt_out_of("c" * 64) is None
