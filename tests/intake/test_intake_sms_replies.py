"""SMS replies over the webhook, with the services they are handed to running on the real broker:
a survey score rated by the real tracking service (its read model folded from intake's own
`application_received` and case events), opt-outs and opt-ins received by a notify that records
`set_opt_out`. Refusals (`no_survey`, `unknown_sender`) go the `inbound_rejected` way, so the
sender gets an SMS; a webhook delivered again changes nothing twice. Also the citizen's language
and the phone index the sender is found through."""
from __future__ import annotations

import json
from typing import ClassVar

import pytest
from nameko.rpc import rpc

from services.common.events import make_event, utcnow
from services.tracking.service import TrackingService
from tests.intake.intake_samples import OTHER_TCKN, PHONE, TCKN, WEB
from tests.support import bearer, deliver
from tests.support import database as get_database

OTHER_PHONE = "+905325554433"
NOISE = dict(WEB, category="noise", description="Gece boyunca yüksek sesle müzik çalınıyor.",
             location={"province": "Mersin", "district": "Mezitli", "neighbourhood": "Tece"})


class RecordingNotify:
    """Stands in for notify's `set_opt_out` (written elsewhere with exactly this signature)."""

    name = "notify"
    calls: ClassVar[list[tuple]] = []

    @rpc
    def set_opt_out(self, citizen_ref: str, opted_out: bool, source: str) -> None:
        RecordingNotify.calls.append((citizen_ref, opted_out, source))


@pytest.fixture
def notify(config, container_factory):
    RecordingNotify.calls = []
    container = container_factory(RecordingNotify, config)
    container.start()
    return container


@pytest.fixture
def tracking(config, container_factory):
    container = container_factory(TrackingService, config)
    container.start()
    return container


def db(config, service="intake"):
    return get_database(config, service)


def sms(client, text, sender="0555 111 22 33", key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/api/v1/channels/sms", json={"from": sender, "text": text},
                       headers=headers)


def rejections(config) -> list[dict]:
    return [e for doc in db(config)["inbound"].find() for e in doc.get("_outbox", [])
            if e["type"] == "inbound_rejected"]


def satisfaction_events(config) -> list[dict]:
    """What tracking stored to publish, and what its relay already took out: the timeline."""
    return [entry for doc in db(config, "tracking")["applications"].find()
            for entry in doc.get("timeline", []) if entry["type"] == "satisfaction_recorded"]


def submit(client, payload=WEB) -> dict:
    response = client.post("/api/v1/applications", json=payload)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def received_event(config, application_id: str) -> dict:
    stored = db(config)["applications"].find_one({"_id": application_id})
    [event] = [e for e in stored["_outbox"] if e["type"] == "application_received"]
    return event


def conclude(config, tracking, application_id: str) -> None:
    """Tracking learns of the application (intake's own event), then of its resolution, now:
    of two applications, the one concluded later is the latest."""
    deliver(config, tracking, received_event(config, application_id))
    at = utcnow()
    for event_type, state in (("case_resolved", "resolved"), ("case_closed", "closed")):
        deliver(config, tracking, make_event(event_type, application_id, {
            "state": state, "unit": "mezitli_bld.works", "unit_name": "Fen İşleri",
            "result": "Yapıldı." if state == "resolved" else None}, occurred_at=at))


def read_model(config, application_id: str) -> dict:
    return db(config, "tracking")["applications"].find_one({"_id": application_id})


# -- satisfaction by SMS ----------------------------------------------------------------------

def test_a_score_rates_the_senders_latest_concluded_application_once(
        config, client, tracking, probe):
    published = probe("tracking", "satisfaction_recorded")
    older, latest = submit(client), submit(client, NOISE)
    conclude(config, tracking, older["application_id"])
    conclude(config, tracking, latest["application_id"])

    response = sms(client, "PUAN 4")
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer == {"result": "satisfaction_recorded", "tracking_code":
                      latest["tracking_code"], "score": 4, "inbound_id": answer["inbound_id"]}
    assert read_model(config, latest["application_id"])["satisfaction"]["score"] == 4
    assert read_model(config, older["application_id"])["satisfaction"] is None
    [event] = published.take(1)  # tracking's relay published it
    assert event["application_id"] == latest["application_id"]
    assert event["data"] == {"score": 4, "comment": None, "source": "sms"}
    assert PHONE not in json.dumps(event) and "5551112233" not in json.dumps(event)
    inbound = db(config)["inbound"].find_one({"_id": answer["inbound_id"]})
    assert (inbound["status"], inbound["reply"]) == ("answered", "score")
    assert rejections(config) == []  # no refusal, so no "wrong message" SMS

    # the next reply rates the next one still awaiting a rating; then there is none
    assert sms(client, "2").get_json()["tracking_code"] == older["tracking_code"]
    refused = sms(client, "5")
    assert refused.status_code == 422
    assert refused.get_json()["errors"]["reason"] == ["no_survey"]
    assert refused.headers["X-Reply-Sent"] == "true"
    [rejected] = rejections(config)
    assert rejected["data"]["reason"] == "no_survey" and rejected["data"]["channel"] == "sms"
    assert len(satisfaction_events(config)) == 2
    [scored] = published.take(1)
    assert scored["data"]["score"] == 2 and published.others(scored) == []


def test_a_score_with_nothing_concluded_is_refused_no_survey_and_answered_by_sms(
        config, client, tracking):
    application = submit(client)
    deliver(config, tracking, received_event(config, application["application_id"]))
    response = sms(client, "puan: 5")
    assert response.status_code == 422
    assert response.get_json()["errors"]["reason"] == ["no_survey"]
    [rejected] = rejections(config)
    assert rejected["data"]["reason"] == "no_survey"
    assert read_model(config, application["application_id"])["satisfaction"] is None
    # from a number nobody registered there is nothing to rate either
    assert sms(client, "3", sender="0532 555 44 33").get_json()["errors"]["reason"] == [
        "no_survey"]


def test_a_score_delivered_again_is_answered_the_same_and_recorded_once(
        config, client, tracking, probe):
    published = probe("tracking", "satisfaction_recorded")
    application = submit(client)
    conclude(config, tracking, application["application_id"])
    first = sms(client, "4", key="gw-msg-0001")
    again = sms(client, "4", key="gw-msg-0001")
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert {k: v for k, v in again.get_json().items() if k != "replayed"} == first.get_json()
    [scored] = published.take(1)
    assert published.others(scored) == []
    assert len(satisfaction_events(config)) == 1
    assert db(config)["inbound"].count_documents({}) == 1
    assert rejections(config) == []


def test_a_delivery_whose_first_attempt_died_midway_rates_nothing_more(
        config, client, tracking, parts):
    """The first delivery reached tracking, then died before storing its answer: the retry
    (same inbound id) is handled again, and tracking recognises the reply."""
    application = submit(client)
    conclude(config, tracking, application["application_id"])
    first = sms(client, "3", key="gw-msg-0002").get_json()
    db(config)["inbound"].update_one({"_id": first["inbound_id"]},
                                     {"$set": {"status": "processing"}})
    retried = sms(client, "3", key="gw-msg-0002")
    assert retried.status_code == 200 and retried.get_json() == first
    assert len(satisfaction_events(config)) == 1


def test_a_reply_is_answered_503_while_its_service_is_away_and_handled_when_delivered_again(
        config, client, parts, container_factory):
    application = submit(client)
    parts.rpc.timeout = 1  # nothing serves tracking: do not wait the full timeout
    away = sms(client, "4", key="gw-msg-0003")
    assert away.status_code == 503 and away.headers["Retry-After"]
    inbound = db(config)["inbound"].find_one()
    assert inbound["status"] == "processing" and rejections(config) == []
    tracking = container_factory(TrackingService, config)
    tracking.start()
    conclude(config, tracking, application["application_id"])
    back = sms(client, "4", key="gw-msg-0003")
    assert back.status_code == 200 and back.get_json()["score"] == 4


# -- opting out and back in -------------------------------------------------------------------

def test_iptal_opts_the_sender_out_and_baslat_back_in_through_notify(config, client, notify):
    application = submit(client)
    citizen_ref = db(config)["applications"].find_one(
        {"_id": application["application_id"]})["citizen_id"]
    out = sms(client, "İPTAL")
    assert out.status_code == 200
    assert out.get_json() == {"result": "opted_out", "inbound_id": out.get_json()["inbound_id"]}
    back = sms(client, "Başlat", key="gw-msg-0004")
    assert back.get_json()["result"] == "opted_in"
    assert RecordingNotify.calls == [(citizen_ref, True, "sms"), (citizen_ref, False, "sms")]
    again = sms(client, "Başlat", key="gw-msg-0004")  # delivered again: the stored answer
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(RecordingNotify.calls) == 2
    assert rejections(config) == []
    assert citizen_ref not in json.dumps([out.get_json(), back.get_json()])


def test_everyone_who_gave_the_number_is_opted_out(config, client, notify):
    submit(client)
    submit(client, dict(NOISE, citizen=dict(WEB["citizen"], tckn=OTHER_TCKN,
                                           first_name="Mehmet")))
    assert sms(client, "STOP").status_code == 200
    refs = {call[0] for call in RecordingNotify.calls}
    assert len(refs) == 2 and all(call[1] is True for call in RecordingNotify.calls)


def test_an_opt_out_from_an_unknown_number_is_refused_unknown_sender(config, client, notify):
    submit(client)
    response = sms(client, "dur", sender="0532 555 44 33")
    assert response.status_code == 422
    assert response.get_json()["errors"]["reason"] == ["unknown_sender"]
    [rejected] = rejections(config)
    assert rejected["data"]["reason"] == "unknown_sender"
    assert RecordingNotify.calls == []


def test_a_citizen_whose_number_changed_is_found_by_the_new_one_only(config, client, notify):
    application = submit(client)
    citizen_id = db(config)["applications"].find_one(
        {"_id": application["application_id"]})["citizen_id"]
    changed = client.patch(f"/api/v1/citizens/{citizen_id}", json={"phone": OTHER_PHONE},
                           headers=bearer(config))
    assert changed.status_code == 200
    assert sms(client, "iptal").get_json()["errors"]["reason"] == ["unknown_sender"]
    assert sms(client, "iptal", sender=OTHER_PHONE).status_code == 200
    assert RecordingNotify.calls == [(citizen_id, True, "sms")]
    index = db(config)["citizen_phones"]
    assert index.count_documents({}) == 2  # keyed hashes: no phone number is stored there
    assert PHONE not in json.dumps(list(index.find()), default=str)


def test_a_text_message_from_a_phone_is_indexed_for_its_replies(config, client, notify):
    response = client.post("/api/v1/channels/sms", json={
        "from": "0532 555 44 33", "text": f"{TCKN} Tece mahallesinde sokak lambası yanmıyor"})
    assert response.status_code == 201
    assert sms(client, "STOP", sender=OTHER_PHONE).status_code == 200
    [call] = RecordingNotify.calls
    assert call == (db(config)["applications"].find_one()["citizen_id"], True, "sms")


# -- the citizen's language and what notify is told ---------------------------------------------

def test_the_language_is_stored_on_the_citizen_and_returned_with_the_contact(config, client,
                                                                             parts):
    english = submit(client, dict(WEB, citizen=dict(WEB["citizen"], language="en")))
    contact = parts.store.contact_for(english["application_id"])
    stored = db(config)["applications"].find_one({"_id": english["application_id"]})
    assert contact["language"] == "en"
    assert contact["citizen_ref"] == stored["citizen_id"]
    assert contact["caller_type"] == "citizen"
    assert parts.store.citizen_contact(stored["citizen_id"])["language"] == "en"
    # a later submission that says nothing keeps the choice
    later = submit(client, NOISE)
    assert parts.store.contact_for(later["application_id"])["language"] == "en"
    other = submit(client, dict(NOISE, citizen=dict(WEB["citizen"], tckn=OTHER_TCKN)))
    assert parts.store.contact_for(other["application_id"])["language"] == "tr"


def test_an_unknown_language_is_refused_naming_the_field(config, client):
    response = client.post("/api/v1/applications",
                           json=dict(WEB, citizen=dict(WEB["citizen"], language="de")))
    assert response.status_code == 422
    assert "language" in response.get_json()["errors"]["json"]["citizen"]
    assert db(config)["applications"].count_documents({}) == 0


def test_citizens_registered_before_the_phone_index_are_found_once_it_is_filled(
        config, client, parts, tracking):
    """A profile and application stored by an earlier version (no index entry, no list of
    applications on the profile): the one-off fill finds the number, the applications are
    read the slow way."""
    application = submit(client)
    citizen_id = db(config)["applications"].find_one(
        {"_id": application["application_id"]})["citizen_id"]
    db(config)["citizen_phones"].delete_many({})
    db(config)["citizens"].update_one({"_id": citizen_id}, {"$unset": {
        "applications_listed": "", "recent_applications": ""}})
    conclude(config, tracking, application["application_id"])
    assert sms(client, "5").get_json()["errors"]["reason"] == ["no_survey"]  # not found yet

    assert parts.store.fill_phone_index() == 1
    assert parts.store.fill_phone_index() == 0  # once per database
    rated = sms(client, "5")
    assert rated.status_code == 200
    assert rated.get_json()["tracking_code"] == application["tracking_code"]


def test_many_people_giving_one_number_at_once_are_all_indexed(config, parts):
    """A burst of registrations with one phone (a family, a desk's own line): before the index
    was spread over slots, every writer rewrote one document and the guarded writes gave up."""
    import eventlet

    citizens = [f"citizen-{n:02d}" for n in range(32)]
    pool = eventlet.GreenPool(16)
    list(pool.imap(lambda c: parts.store._index_phone(PHONE, c), citizens))
    listed = {c for doc in db(config)["citizen_phones"].find() for c in doc["citizens"]}
    assert listed == set(citizens)
    assert db(config)["citizen_phones"].count_documents({}) > 1  # spread, not one hot document
