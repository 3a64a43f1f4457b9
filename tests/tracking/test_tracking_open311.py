"""Acceptance: an Open311 client written from the specification lists services, posts a request
and reads it back, in JSON and in XML — against intake, routing and tracking on the real broker.
"""
from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta

import pytest
from nameko.testing.services import entrypoint_waiter
from pymongo.collection import Collection

from services.common.events import utcnow
from services.intake.service import IntakeService
from services.routing.service import RoutingService
from services.tracking.open311 import w3
from services.tracking.service import TrackingService
from tests.tracking.open311_client import FlaskTransport, Open311Client, Open311ClientError

KEY = "k-3f9c2a"
JURISDICTION = "mezitli.bel.tr"


@pytest.fixture
def transport(config, make_app):
    """Tracking's Open311 over parts of its own (a replica beside the running service's)."""
    config["OPEN311_API_KEYS"] = f"partner-app:{KEY},other:k-other"
    return FlaskTransport(make_app(config).test_client())


@pytest.fixture
def system(config, container_factory):
    containers = {cls.name: container_factory(cls, config)
                  for cls in (IntakeService, RoutingService, TrackingService)}
    for container in containers.values():
        container.start()
    return containers


def create_and_wait(system, client: Open311Client, **kwargs) -> dict:
    """POST a request and wait until tracking has folded its receipt and routing."""
    with ExitStack() as stack:
        for event in ("application_received", "application_routed"):
            stack.enter_context(entrypoint_waiter(system["tracking"], f"handle_{event}",
                                                  timeout=30))
        created = client.create(**kwargs)
    return created


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_client_from_the_spec_lists_services_posts_a_request_and_reads_it_back(
    system, transport, fmt
):
    client = Open311Client(transport, JURISDICTION, fmt=fmt, api_key=KEY)
    [endpoint] = client.discovery()["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}

    services = {s["service_code"]: s for s in client.services()}
    road = services["road_damage"]
    assert road["service_name"] == "Yol bozukluğu"
    assert str(road["metadata"]).lower() == "true" and road["type"] == "realtime"
    definition = client.service_definition("road_damage")
    attributes = {a["code"]: a for a in definition["attributes"]}
    assert {v["key"] for v in attributes["kind"]["values"]} >= {"complaint"}
    assert "Mersin/Mezitli" in {v["key"] for v in attributes["district"]["values"]}

    created = create_and_wait(
        system, client, service_code="road_damage", lat="36.7511", long="34.5327",
        address_string="Tece Mah. 1. Sokak",
        attributes={"kind": "complaint", "district": "Mersin/Mezitli",
                    "neighbourhood": "Tece"},
        description="Yolda derin bir çukur var.", first_name="Ayşe", last_name="Demir",
        phone="0555 111 22 33")
    request_id = created["service_request_id"]
    assert "takip kodu" in created["service_notice"]

    found = client.request(request_id)
    assert found["service_request_id"] == request_id
    assert found["service_code"] == "road_damage" and found["status"] == "open"
    assert found["agency_responsible"].startswith("Mezitli Belediyesi")
    assert found["address"] == "Tece, Mezitli, Mersin"
    assert found["requested_datetime"].endswith("Z") and found["expected_datetime"]
    # Nothing personal is published: not the description, not the person.
    assert found["description"] is None and "Ayşe" not in str(found) and "0555" not in str(found)

    listed = client.requests(service_code="road_damage,noise", status="open")
    assert request_id in {r["service_request_id"] for r in listed}
    assert client.requests(status="closed") == []
    by_id = client.requests(service_request_id=f"{request_id},01HNOSUCHREQUEST0000000000")
    assert [r["service_request_id"] for r in by_id] == [request_id]


def test_a_second_report_of_the_same_spot_is_answered_with_the_first_request(system, transport):
    """Intake links a report of the same spot and category as a duplicate: the partner gets
    the original's id, which it can read back (the duplicate is never a request of its own)."""
    client = Open311Client(transport, JURISDICTION, fmt="json", api_key=KEY)
    spot = {"service_code": "road_damage", "lat": "36.7511", "long": "34.5327",
            "attributes": {"kind": "complaint", "district": "Mersin/Mezitli"},
            "description": "Yolda derin bir çukur var."}
    first = create_and_wait(system, client, **spot, first_name="Ayşe", last_name="Demir",
                            phone="0555 111 22 33")
    with entrypoint_waiter(system["tracking"], "handle_application_merged", timeout=30):
        second = client.create(**spot, first_name="Mehmet", last_name="Kaya",
                               phone="0555 444 55 66")
    assert second["service_request_id"] == first["service_request_id"]
    assert client.request(second["service_request_id"])["status"] == "open"


def test_a_refusal_by_intake_names_each_nested_field(system, transport):
    client = Open311Client(transport, JURISDICTION, fmt="json", api_key=KEY)
    with pytest.raises(Open311ClientError) as error:
        client.create(service_code="road_damage", lat="36.7511", long="34.5327",
                      attributes={"kind": "complaint", "district": "Mersin/Mezitli"},
                      description="Yolda çukur var.", phone="0555 111 22 33")
    descriptions = [e["description"] for e in error.value.errors]
    assert error.value.status == 400
    assert any(d.startswith("citizen.first_name: ") for d in descriptions), descriptions
    assert not any("{" in d for d in descriptions)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_spec_errors_in_both_formats(transport, fmt):
    client = Open311Client(transport, JURISDICTION, fmt=fmt, api_key="wrong")
    with pytest.raises(Open311ClientError) as error:
        client.create(service_code="road_damage", address_string="Tece")
    assert error.value.status == 403
    assert "api_key" in error.value.errors[0]["description"]
    with pytest.raises(Open311ClientError) as error:
        Open311Client(transport, "", fmt=fmt).services()
    assert error.value.status == 400
    assert "jurisdiction_id" in error.value.errors[0]["description"]
    with pytest.raises(Open311ClientError) as error:
        Open311Client(transport, "nowhere.example", fmt=fmt).services()
    assert error.value.status == 404
    with pytest.raises(Open311ClientError) as error:
        client.service_definition("no_such_service")
    assert error.value.status == 404
    with pytest.raises(Open311ClientError) as error:
        client.requests(start_date="2025-01-01T00:00:00Z", end_date="2025-06-01T00:00:00Z")
    assert error.value.status == 400 and "90 days" in error.value.errors[0]["description"]
    with pytest.raises(Open311ClientError) as error:
        client.requests(start_date="2025-01-01T00:00:00")  # no time zone
    assert error.value.status == 400
    with pytest.raises(Open311ClientError) as error:
        client.token("12345")  # requests are created in real time: no token exists
    assert error.value.status == 404


def test_a_post_naming_no_location_or_a_wrong_kind_is_refused_naming_the_field(transport):
    client = Open311Client(transport, JURISDICTION, api_key=KEY)
    with pytest.raises(Open311ClientError) as error:
        client.create(service_code="road_damage", attributes={"kind": "complaint"})
    assert error.value.status == 400 and "address_string" in error.value.errors[0]["description"]
    with pytest.raises(Open311ClientError) as error:
        client.create(service_code="road_damage", address_string="Tece",
                      attributes={"kind": "thanks"})
    assert "attribute[kind]" in error.value.errors[0]["description"]


def test_confidential_applications_are_never_listed_nor_shown(
    transport, handle, bus_envelopes, new_application
):
    confidential_id, code = new_application()
    handle(bus_envelopes.received(confidential_id, code, confidential=True, district="Mezitli"))
    public_id, code = new_application()
    handle(bus_envelopes.received(public_id, code, district="Mezitli"))
    client = Open311Client(transport, JURISDICTION)
    listed = {r["service_request_id"] for r in client.requests()}
    assert public_id in listed and confidential_id not in listed
    with pytest.raises(Open311ClientError) as error:
        client.request(confidential_id)
    assert error.value.status == 404
    # Another jurisdiction's area does not list Mezitli's requests.
    assert Open311Client(transport, "yenisehir.bel.tr").requests() == []


def test_a_jurisdiction_reads_back_what_it_accepts_and_refuses_what_is_not_its_area(
    system, transport
):
    """A POST to a district's jurisdiction that names no district is placed in that district,
    read back and listed there; one naming another district is refused with a 400 that names
    the jurisdiction covering it (accepted, it would be readable only there)."""
    client = Open311Client(transport, JURISDICTION, fmt="json", api_key=KEY)
    created = create_and_wait(system, client, service_code="road_damage",
                              address_string="Tece Mah. 1. Sokak",
                              attributes={"kind": "complaint"},
                              description="Yolda derin bir çukur var.", first_name="Ayşe",
                              last_name="Demir", phone="0555 111 22 33")
    request_id = created["service_request_id"]
    found = client.request(request_id)
    assert found["address"] == "Mezitli, Mersin"
    assert request_id in {r["service_request_id"] for r in client.requests()}
    # The province's jurisdiction lists it too; another district's does not show it.
    assert Open311Client(transport, "mersin.bel.tr").request(request_id)["address"]
    neighbour = Open311Client(transport, "yenisehir.bel.tr")
    with pytest.raises(Open311ClientError) as error:
        neighbour.request(request_id)
    assert error.value.status == 404
    assert neighbour.requests(service_request_id=request_id) == []

    with pytest.raises(Open311ClientError) as error:
        client.create(service_code="road_damage", address_string="Limonluk Mah.",
                      attributes={"kind": "complaint", "district": "Mersin/Yenişehir"},
                      first_name="Ayşe", last_name="Demir", phone="0555 111 22 33")
    [refusal] = error.value.errors
    assert error.value.status == 400
    assert refusal["description"].startswith("attribute[district]: Yenişehir is outside")
    assert "jurisdiction_id yenisehir.bel.tr" in refusal["description"]


def test_the_listing_reads_its_index_by_id_only_and_answers_newest_first(
    transport, handle, bus_envelopes, new_application, monkeypatch
):
    """`GET requests` never scans the read model: every read it makes is one `_id`; yet it
    answers as the spec says (date range, status, service codes, newest first), and a request
    received since the last listing shows at once."""
    now = utcnow()
    ids = {}
    for name, days, district, category in (
            ("today", 0, "Mezitli", "road_damage"), ("last_week", 7, "Mezitli", "noise"),
            ("in_march", 80, "Mezitli", "road_damage"), ("too_old", 100, "Mezitli", "noise"),
            ("elsewhere", 1, "Yenişehir", "road_damage")):
        application_id, code = new_application()
        handle(bus_envelopes.received(application_id, code, district=district,
                                      category=category,
                                      at=now - timedelta(days=days, minutes=5)))
        ids[name] = application_id
    handle(bus_envelopes.case("case_closed", ids["last_week"], "closed"))
    handle(bus_envelopes.received(*new_application(), district="Mezitli"))  # a redelivery
    filters: list[dict] = []
    real_find = Collection.find

    def find(self, filter=None, *args, **kwargs):  # noqa: A002 - pymongo's own name
        if self.database.name.endswith("_tracking") and not self.name.startswith("catalogue"):
            filters.append(filter)  # (the catalogue's copy is read whole when it changes)
        return real_find(self, filter, *args, **kwargs)

    monkeypatch.setattr(Collection, "find", find)
    client = Open311Client(transport, JURISDICTION)

    def listed(**filters_) -> list[str]:
        return [r["service_request_id"] for r in client.requests(**filters_)
                if r["service_request_id"] in ids.values()]

    assert listed() == [ids["today"], ids["last_week"], ids["in_march"]]
    assert listed(status="open") == [ids["today"], ids["in_march"]]
    assert listed(status="closed") == [ids["last_week"]]
    assert listed(service_code="noise") == [ids["last_week"]]
    assert listed(start_date=w3(now - timedelta(days=8)),
                  end_date=w3(now - timedelta(days=6))) == [ids["last_week"]]
    application_id, code = new_application()
    handle(bus_envelopes.received(application_id, code, district="Mezitli"))
    ids["just_now"] = application_id
    assert listed()[:2] == [ids["just_now"], ids["today"]]
    assert filters and all(set(f) == {"_id"} and isinstance(f["_id"], str) for f in filters)
    with pytest.raises(Open311ClientError) as error:
        client.requests(service_request_id=",".join(f"id{n}" for n in range(101)))
    assert error.value.status == 400
