"""End to end over a real socket: the Open311 GeoReport v2 client written from the spec, on its
`HttpTransport`, against `python -m services.all` — discovery, the service list and a definition,
a POSTed request read back by id and in the list, and the spec's errors, in JSON and in XML.

tests/tracking/test_tracking_open311.py checks the same calls through Flask's test client; this
one checks what only a real server shows: the one-port dispatcher routes `/open311/v2`, the
form-encoded POST and the headers survive the wire, and the request goes intake → routing →
tracking over the bus in the all-in-one process.
"""
from __future__ import annotations

import pytest

from tests.support import all_in_one, poll
from tests.tracking.open311_client import (
    HttpTransport,
    Open311Client,
    Open311ClientError,
)

KEY = "k-3f9c2a"
JURISDICTION = "mezitli.bel.tr"
# One reporter and spot per format, over a kilometre apart: the module shares one store, and
# intake merges a second report of the same category by the same person or within 50 m into
# the first, and the id a POST answers for a merged duplicate never becomes readable (GET
# requests/{id} stays 404), so the second format's read-back would wait in vain.
REPORTER = {
    "json": {"lat": "36.7511", "long": "34.5327", "first_name": "Ayşe", "last_name": "Demir",
             "phone": "0555 111 22 33"},
    "xml": {"lat": "36.7611", "long": "34.5427", "first_name": "Ayşe", "last_name": "Kaya",
            "phone": "0555 111 22 44"},
}


class RecordingTransport(HttpTransport):
    """`HttpTransport` that keeps the last HTTP status: the client hides a successful one, and
    the POST must answer 201 Created."""

    last_status: int | None = None

    def post(self, path, form):
        answer = super().post(path, form)
        self.last_status = answer[0]
        return answer


@pytest.fixture(scope="module")
def system(module_amqp_uri, module_databases, tmp_path_factory):
    """One all-in-one process for the module (starting one takes seconds); it accepts the key."""
    with all_in_one(module_amqp_uri, module_databases,
                    tmp_path_factory.mktemp("open311-all-in-one"),
                    OPEN311_API_KEYS=f"partner-app:{KEY},other:k-other") as base:
        yield base


def routed(client: Open311Client, request_id: str) -> dict | None:
    """The request as published, or None while tracking has not folded its receipt (404)."""
    try:
        return client.request(request_id)
    except Open311ClientError as error:
        assert error.status == 404, error.errors  # anything else is a real failure
        return None


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_spec_client_over_http_lists_services_posts_a_request_and_reads_it_back(system, fmt):
    endpoint_url = f"{system}/open311/v2"
    transport = RecordingTransport(endpoint_url)
    client = Open311Client(transport, JURISDICTION, fmt=fmt, api_key=KEY)

    [endpoint] = client.discovery()["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    # Discovery must point clients at the URL they can actually reach (PUBLIC_BASE_URL).
    assert endpoint["url"] == endpoint_url
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}

    services = {s["service_code"]: s for s in client.services()}
    road = services["road_damage"]
    assert road["service_name"] == "Yol bozukluğu" and road["type"] == "realtime"
    assert str(road["metadata"]).lower() == "true"
    definition = client.service_definition("road_damage")
    assert definition["service_code"] == "road_damage"
    attributes = {a["code"]: a for a in definition["attributes"]}
    assert "complaint" in {v["key"] for v in attributes["kind"]["values"]}
    assert "Mersin/Mezitli" in {v["key"] for v in attributes["district"]["values"]}

    # The spec requires a location: lat & long here, an address string besides.
    created = client.create(
        "road_damage", address_string="Tece Mah. 1. Sokak",
        attributes={"kind": "complaint", "district": "Mersin/Mezitli", "neighbourhood": "Tece"},
        description="Yolda derin bir çukur var.", **REPORTER[fmt])
    assert transport.last_status == 201
    request_id = created["service_request_id"]
    assert request_id and "takip kodu" in created["service_notice"]

    # The POST answers before the bus has carried the application to routing and tracking:
    # wait (bounded) until the published request names who holds it.
    found = poll(lambda: routed(client, request_id),
                 lambda doc: doc is not None and doc["agency_responsible"] is not None, 20)
    assert found is not None and found["agency_responsible"], found
    assert found["agency_responsible"].startswith("Mezitli Belediyesi")
    assert found["service_request_id"] == request_id
    assert found["service_code"] == "road_damage" and found["status"] == "open"
    assert found["service_name"] == "Yol bozukluğu"
    assert found["address"] == "Tece, Mezitli, Mersin"
    assert found["requested_datetime"].endswith("Z") and found["expected_datetime"]
    # Nothing personal is published: not the description, not the person.
    assert found["description"] is None and "Ayşe" not in str(found) and "0555" not in str(found)

    listed = {r["service_request_id"]: r for r in
              client.requests(service_code="road_damage", status="open")}
    assert request_id in listed and listed[request_id]["status"] == "open"
    by_id = client.requests(service_request_id=request_id)
    assert [r["service_request_id"] for r in by_id] == [request_id]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_spec_errors_over_http_in_both_formats(system, fmt):
    transport = HttpTransport(f"{system}/open311/v2")
    # No api_key at all: the spec's 403 with its error list (parse checks the content type).
    with pytest.raises(Open311ClientError) as error:
        Open311Client(transport, JURISDICTION, fmt=fmt).create(
            "road_damage", lat="36.7511", long="34.5327")
    assert error.value.status == 403
    [refused] = error.value.errors
    assert str(refused["code"]) == "403" and "api_key" in refused["description"]

    client = Open311Client(transport, JURISDICTION, fmt=fmt, api_key=KEY)
    with pytest.raises(Open311ClientError) as error:
        client.create("no_such_service", address_string="Tece")
    assert error.value.status == 404
    [unknown] = error.value.errors
    assert str(unknown["code"]) == "404" and "service_code" in unknown["description"]

    with pytest.raises(Open311ClientError) as error:
        Open311Client(transport, "", fmt=fmt).services()
    assert error.value.status == 400
    assert "jurisdiction_id" in error.value.errors[0]["description"]
