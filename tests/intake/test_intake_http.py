"""Application submission over HTTP: accepted once and fully, or refused with the field named."""
import copy

import pytest

from services.common.codes import normalise_tracking_code, security_digest
from services.intake.web import create_app
from tests.support import database as get_database

VALID = {
    "kind": "complaint",
    "category": "road_damage",
    "channel": "web",
    "description": "Sokağımızda büyük bir çukur var.",
    "location": {"province": "Mersin", "district": "Mezitli", "neighbourhood": "Tece",
                 "address": "Örnek Sk. No: 1", "lat": 36.75, "lon": 34.53},
    "citizen": {"tckn": "10000000146", "first_name": "Ayşe", "last_name": "Demir",
                "phone": "0555 111 22 33", "email": "ayse@example.com"},
}



def db(config):
    return get_database(config, "intake")


def with_change(path: str, value):
    body = copy.deepcopy(VALID)
    *parents, leaf = path.split(".")
    target = body
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[leaf]
    else:
        target[leaf] = value
    return body


DELETE = object()


def test_a_valid_submission_is_stored_with_its_event_and_answered_with_both_codes(client, config):
    response = client.post("/api/v1/applications", json=VALID)
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "received"
    code = normalise_tracking_code(body["tracking_code"])
    assert code is not None
    stored = db(config)["applications"].find_one({"_id": body["application_id"]})
    assert stored["tracking_code"] == code
    assert stored["security_digest"] == security_digest(config["CODE_PEPPER"],
                                                        body["security_code"])
    assert "security_code" not in stored  # only the digest is kept
    [event] = stored["_outbox"]  # no relay runs here, so the event waits in the outbox
    assert event["type"] == "application_received"
    assert "10000000146" not in str(event) and "Ayşe" not in str(event)
    citizen = db(config)["citizens"].find_one({"_id": stored["citizen_id"]})
    assert citizen["phone"] == "+905551112233"
    assert citizen["_id"] != "10000000146"  # looked up by a keyed hash, not the number


def test_the_same_citizen_applying_twice_has_one_profile(client, config):
    assert client.post("/api/v1/applications", json=VALID).status_code == 201
    again = with_change("citizen.phone", "0532 000 11 22")
    assert client.post("/api/v1/applications", json=again).status_code == 201
    citizens = list(db(config)["citizens"].find())
    assert len(citizens) == 1
    assert citizens[0]["phone"] == "+905320001122"


@pytest.mark.parametrize(
    ("path", "value", "status", "field_path"),
    [
        ("citizen.tckn", "10000000147", 422, ("json", "citizen", "tckn")),
        ("citizen.tckn", "1234", 422, ("json", "citizen", "tckn")),
        # python-stdnum forgives these, and they were stored as sent: another citizen each
        ("citizen.tckn", " 10000000146", 422, ("json", "citizen", "tckn")),
        ("citizen.tckn", "10000000146\n", 422, ("json", "citizen", "tckn")),
        ("citizen.tckn", "１0000000146", 422, ("json", "citizen", "tckn")),  # full-width 1
        ("category", DELETE, 422, ("json", "category")),
        ("category", "teleportation", 422, ("json", "category")),
        ("kind", "thanks", 422, ("json", "kind")),  # road damage is not a thanks
        ("description", "x" * 4001, 422, ("json", "description")),
        ("description", "", 422, ("json", "description")),
        ("citizen.phone", "12", 422, ("json", "citizen", "phone")),
        ("citizen.email", "not-an-email", 422, ("json", "citizen", "email")),
        ("channel", "carrier_pigeon", 422, ("json", "channel")),
        ("location", DELETE, 422, ("json", "location")),
        ("location.lat", 123, 422, ("json", "location", "lat")),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    client, config, path, value, status, field_path
):
    response = client.post("/api/v1/applications", json=with_change(path, value))
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"}
    node = body["errors"]
    for key in field_path:
        assert key in node, (field_path, body)
        node = node[key]
    assert field_path[-1] in body["message"]
    assert db(config)["applications"].count_documents({}) == 0
    assert db(config)["citizens"].count_documents({}) == 0


def test_malformed_json_is_a_400_in_the_error_shape(client, config):
    response = client.post("/api/v1/applications", data="{not json",
                           content_type="application/json")
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == 400 and "json" in body["errors"]
    assert db(config)["applications"].count_documents({}) == 0


def test_unknown_routes_and_methods_answer_in_the_error_shape(client):
    missing = client.get("/api/v1/applications/nothing/here/at-all")
    assert missing.status_code == 404 and missing.get_json()["code"] == 404
    wrong = client.delete("/api/v1/applications")
    assert wrong.status_code == 405 and wrong.get_json()["status"] == "Method Not Allowed"


def test_the_service_publishes_openapi_health_and_metrics(client):
    spec = client.get("/openapi.json").get_json()
    assert "/api/v1/applications" in spec["paths"]
    assert client.get("/health").get_json()["status"] == "ok"
    client.post("/api/v1/applications", json=VALID)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'acikkapi_http_requests_total{method="POST",route="/api/v1/applications"' in metrics


def test_another_service_can_submit_over_rpc_and_a_wrong_field_is_named(config, container_factory):
    from nameko.standalone.rpc import ServiceRpcProxy

    from services.common.refusals import SubmissionRefused
    from services.intake.service import IntakeService

    container = container_factory(IntakeService, config)
    container.start()
    with ServiceRpcProxy("intake", config) as intake:
        answer = intake.submit_application(dict(VALID, channel="muhtar"))
        assert normalise_tracking_code(answer["tracking_code"])
        with pytest.raises(SubmissionRefused) as refused:
            intake.submit_application(with_change("citizen.tckn", "10000000147"))
    # the caller gets the refusal itself (nameko's registry), its fields as intake named them
    assert list(refused.value.errors["citizen"]) == ["tckn"]
    stored = db(config)["applications"].find_one({"_id": answer["application_id"]})
    assert stored["channel"] == "muhtar"
    assert db(config)["applications"].count_documents({}) == 1


def test_the_hot_path_answers_plain_submissions_itself_and_hands_the_rest_to_flask(config, parts):
    """`FastSubmit` serves a well-formed public submission without Flask; anything unusual (a
    field wrong, malformed JSON, a staff token) is answered by the flask-smorest view, so the
    refusals have one implementation."""
    app = create_app(parts)
    behind = app.wsgi_app.app
    reached: list[str] = []

    def flask_side(environ, start_response):
        reached.append(environ["PATH_INFO"])
        return behind(environ, start_response)

    app.wsgi_app.app = flask_side
    client = app.test_client()
    fast = client.post("/api/v1/applications", json=VALID)
    assert fast.status_code == 201 and reached == []
    assert set(fast.get_json()) == {"application_id", "tracking_code", "security_code", "status",
                                    "category_name", "merged_into"}
    assert fast.headers["Cache-Control"] == "no-store"

    refused = client.post("/api/v1/applications", json=with_change("citizen.tckn", "12345678901"))
    assert refused.status_code == 422 and "tckn" in refused.get_json()["errors"]["json"]["citizen"]
    malformed = client.post("/api/v1/applications", data=b"{not json",
                            content_type="application/json")
    assert malformed.status_code == 400
    assert reached == ["/api/v1/applications"] * 2
    assert db(config)["applications"].count_documents({}) == 1


def test_a_refusal_on_the_hot_path_has_the_shared_shape(client):
    """A submission refused after validation (unknown category) is answered by `FastSubmit`
    in the shape every service uses, naming the field."""
    response = client.post("/api/v1/applications", json=with_change("category", "no_such"))
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == 422 and body["status"] == "Unprocessable Entity"
    assert "category" in body["errors"]["json"] and body["message"].startswith("category")
