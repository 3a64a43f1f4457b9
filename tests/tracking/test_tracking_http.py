"""The public lookup over HTTP: both codes, one answer for every kind of "no", fields named.

The read model is filled through the service's own handlers (`worker_factory` with real
store), so these tests need no broker traffic.
"""
from __future__ import annotations

import logging

import pytest
from marshmallow import ValidationError
from nameko.testing.services import worker_factory

from services.common.codes import display_tracking_code, new_tracking_code
from services.common.events import load_event
from services.tracking import domain
from services.tracking.schemas import TrackRequestSchema, load_track_request
from services.tracking.service import TrackingService
from services.tracking.store import TrackingStore
from services.tracking.web import NOT_FOUND

TRACK = "/api/v1/track"




@pytest.fixture
def deliver(tracking_parts):
    """Hand an envelope to the matching handler, as the bus would (into the composition the
    `client` fixture serves)."""
    service = worker_factory(TrackingService, parts=tracking_parts)

    def _deliver(envelope: dict) -> None:
        getattr(service, f"handle_{envelope['type']}")(load_event(envelope))

    return _deliver


@pytest.fixture
def routed_application(bus_envelopes, new_application, deliver):
    application_id, code = new_application()
    deliver(bus_envelopes.received(application_id, code))
    deliver(bus_envelopes.routed(application_id, code))
    return code


def test_the_holder_of_both_codes_sees_status_unit_and_timeline(client, routed_application):
    response = client.post(TRACK, json={"tracking_code": display_tracking_code(routed_application),
                                        "security_code": "SECRETCODE1"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["tracking_code"] == display_tracking_code(routed_application)
    assert body["status"] == "assigned"
    assert body["status_text_tr"] == "İlgili birime iletildi"
    assert body["status_text_en"] == "Assigned to the responsible unit"
    assert body["kind"] == "complaint"
    assert body["category"] == "road_damage"
    assert body["category_name_tr"] == "Yol bozukluğu"
    assert body["unit"] == {"code": "mersin_bb.roads", "name": "Yol Yapım Dairesi Başkanlığı"}
    assert body["institution"]["code"] == "mersin_bb"
    assert [step["status"] for step in body["timeline"]] == ["received", "assigned"]
    assert body["timeline"][1]["text"].startswith("Başvurunuz Mersin Büyükşehir")
    assert body["received_at"]
    assert "security_digest" not in body and "application_id" not in body


def test_typed_codes_are_forgiven_case_dashes_spaces_and_look_alikes(
    client, bus_envelopes, new_application, deliver
):
    code = next(c for c in iter(new_tracking_code, None) if "0" in c or "1" in c)
    application_id, _ = new_application()
    deliver(bus_envelopes.received(application_id, code))
    typed = code.replace("0", "o").replace("1", "l").lower()
    typed = f" {typed[:4]} {typed[4:]} "
    response = client.post(TRACK, json={"tracking_code": typed, "security_code": "secret-code1"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "received"


def test_unknown_code_and_wrong_security_code_get_the_same_answer(
    client, routed_application, bus_envelopes, new_application, deliver
):
    wrong = client.post(TRACK, json={"tracking_code": routed_application,
                                     "security_code": "SECRETCODE2"})
    unknown = client.post(TRACK, json={"tracking_code": new_tracking_code(),
                                       "security_code": "SECRETCODE1"})
    # Routed but its receipt not yet folded: there is nothing to show, and that must not show.
    application_id, code = new_application()
    deliver(bus_envelopes.routed(application_id, code))
    pending = client.post(TRACK, json={"tracking_code": code, "security_code": "SECRETCODE1"})
    assert wrong.status_code == unknown.status_code == pending.status_code == 404
    assert wrong.get_data() == unknown.get_data() == pending.get_data()
    assert wrong.get_json()["message"] == NOT_FOUND


def test_unknown_and_wrong_codes_both_pay_for_one_constant_time_comparison(
    client, routed_application, monkeypatch
):
    calls = []
    real = domain.digests_match

    def spy(expected: str, given: str) -> bool:
        calls.append((len(expected), len(given)))
        return real(expected, given)

    monkeypatch.setattr(domain, "digests_match", spy)
    client.post(TRACK, json={"tracking_code": routed_application, "security_code": "WRONG"})
    client.post(TRACK, json={"tracking_code": new_tracking_code(), "security_code": "WRONG"})
    assert calls == [(64, 64), (64, 64)]


def test_unknown_and_wrong_codes_do_the_same_work_in_the_store(
    client, routed_application, monkeypatch
):
    calls: list[str] = []
    for name in ("claim", "claim_all", "locked", "lock", "code_entry", "get", "has_version",
                 "get_versioned"):
        real = getattr(TrackingStore, name)

        def spy(self, *args, _name=name, _real=real, **kwargs):
            calls.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(TrackingStore, name, spy)
    # The client's first lookup of a window skips its failure mark (nothing can be marked
    # yet): compare two lookups after it.
    client.post(TRACK, json={"tracking_code": new_tracking_code(), "security_code": "WRONG"})
    calls[:] = []
    client.post(TRACK, json={"tracking_code": routed_application, "security_code": "WRONG"})
    wrong, calls[:] = list(calls), []
    client.post(TRACK, json={"tracking_code": new_tracking_code(), "security_code": "WRONG"})
    # the code's mark and entry; the client's count and both failures in one insert; the
    # client's mark
    assert wrong == calls == ["locked", "code_entry", "claim_all", "locked"]


def test_a_lookup_after_a_write_shows_the_write(
    client, bus_envelopes, new_application, deliver
):
    """Views are rendered once per read-model version; whoever writes, the next lookup sees it."""
    application_id, code = new_application()
    deliver(bus_envelopes.received(application_id, code))
    deliver(bus_envelopes.routed(application_id, code))
    codes = {"tracking_code": code, "security_code": "SECRETCODE1"}
    before = client.post(TRACK, json=codes).get_json()
    assert client.post(TRACK, json=codes).get_json() == before  # answered from the cache
    deliver(bus_envelopes.case("case_resolved", application_id, "resolved",
                               result="Çukur kapatıldı."))
    after = client.post(TRACK, json=codes).get_json()
    assert before["status"] != "resolved" and after["status"] == "resolved"



def test_the_documented_view_answers_as_the_fast_path_does(
    tracking_parts, routed_application
):
    """`FastLookup` and the flask-smorest view of `POST /api/v1/track` (served when the fast
    path is not in front) run the same use case and the same schema: the same answers."""
    from services.tracking.web import create_app

    fast = create_app(tracking_parts)
    documented = create_app(tracking_parts)
    documented.wsgi_app = documented.wsgi_app.app  # the fast path taken away
    bodies = [{"tracking_code": routed_application, "security_code": "SECRETCODE1"},
              {"tracking_code": routed_application, "security_code": "WRONGCODE1"},
              {"tracking_code": new_tracking_code(), "security_code": "SECRETCODE1"},
              {"tracking_code": routed_application}]
    statuses = []
    for body in bodies:
        answers = [app.test_client().post(TRACK, json=body) for app in (fast, documented)]
        assert answers[0].status_code == answers[1].status_code
        assert answers[0].get_json() == answers[1].get_json()
        statuses.append(answers[0].status_code)
        if answers[0].status_code != 422:  # the use case's answers, uncached by anyone
            assert answers[1].headers["Cache-Control"] == "no-store"
    assert statuses == [200, 404, 404, 422]


LOOKUP_BODIES = [
    {"tracking_code": "{code}", "security_code": "SECRETCODE1"},
    {"tracking_code": " {typed} ", "security_code": "secret-code1", "unknown": 1},
    {"tracking_code": "{typo}", "security_code": "SECRETCODE1"},
    {"tracking_code": "{code}" + " " * 30, "security_code": "SECRETCODE1"},
    {"tracking_code": "{code}", "security_code": ""},
    {"tracking_code": "{code}", "security_code": "S" * 32},
    {"tracking_code": "{code}", "security_code": "S" * 33},
    {"tracking_code": "{code}"},
    {"security_code": "SECRETCODE1"},
    {"tracking_code": 123456789, "security_code": "SECRETCODE1"},
    {"tracking_code": "{code}", "security_code": None},
    {"tracking_code": ["{code}"], "security_code": {"x": 1}},
    {}, [], "text", 7, None,
]


@pytest.mark.parametrize("template", LOOKUP_BODIES)
def test_the_lookup_body_loads_exactly_as_its_schema_says(template):
    """`load_track_request` (the hot path's loader) agrees with `TrackRequestSchema`."""
    code = new_tracking_code()
    typo = code[:-1] + ("A" if code[-1] != "A" else "B")
    data = template
    if isinstance(template, dict):
        data = {key: value.format(code=code, typed=display_tracking_code(code).lower(),
                                  typo=typo) if isinstance(value, str) else value
                for key, value in template.items()}
    try:
        expected = TrackRequestSchema().load(data)
    except ValidationError as refused:
        with pytest.raises(ValidationError) as raised:
            load_track_request(data)
        assert raised.value.messages == refused.messages
    else:
        assert load_track_request(data) == expected


def test_a_tracking_code_failing_its_check_character_is_named_as_malformed(
    client, routed_application
):
    last = routed_application[-1]
    typo = routed_application[:-1] + ("A" if last != "A" else "B")
    response = client.post(TRACK, json={"tracking_code": typo, "security_code": "SECRETCODE1"})
    assert response.status_code == 422
    body = response.get_json()
    assert "tracking_code" in body["errors"]["json"]
    assert body["message"].startswith("tracking_code:")
    assert typo not in response.get_data(as_text=True)  # never echo what was typed


@pytest.mark.parametrize("missing", ["tracking_code", "security_code"])
def test_a_missing_code_is_named(client, routed_application, missing):
    payload = {"tracking_code": routed_application, "security_code": "SECRETCODE1"}
    del payload[missing]
    response = client.post(TRACK, json=payload)
    assert response.status_code == 422
    assert list(response.get_json()["errors"]["json"]) == [missing]


def test_malformed_json_is_a_400_naming_the_body(client):
    response = client.post(TRACK, data="{tracking_code: ", content_type="application/json")
    assert response.status_code == 400
    assert "json" in response.get_json()["errors"]


def test_codes_are_never_accepted_in_a_url(client, routed_application):
    response = client.get(f"{TRACK}?tracking_code={routed_application}&security_code=SECRETCODE1")
    assert response.status_code == 405


def test_a_confidential_application_still_answers_the_holder_of_both_codes(
    client, bus_envelopes, new_application, deliver
):
    application_id, code = new_application()
    deliver(bus_envelopes.received(application_id, code, confidential=True))
    response = client.post(TRACK, json={"tracking_code": code, "security_code": "SECRETCODE1"})
    assert response.status_code == 200


def test_lookups_never_log_either_code(client, routed_application, caplog):
    caplog.set_level(logging.DEBUG)
    # The database driver's own command log (DEBUG) prints every query and reply whole — the
    # code map is keyed by the tracking code — so a deployment must keep it at INFO whatever
    # LOG_LEVEL says, as it does nameko's; what is checked here is everything else.
    caplog.set_level(logging.INFO, logger="pymongo")
    for security_code in ("SECRETCODE1", "SECRETCODE2"):
        client.post(TRACK, json={"tracking_code": routed_application,
                                 "security_code": security_code})
    client.post(TRACK, json={"tracking_code": "ZZZZZZZZZ", "security_code": "SECRETCODE1"})
    logged = caplog.text + " ".join(str(vars(record)) for record in caplog.records)
    for secret in (routed_application, display_tracking_code(routed_application),
                   "SECRETCODE", "ZZZZZZZZZ"):
        assert secret not in logged
