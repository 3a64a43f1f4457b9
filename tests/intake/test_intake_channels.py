"""Every door over HTTP with real payloads and malformed ones: accepted fully, or refused with
the field named (and a reply event where the channel can be answered); nothing half-stored."""
import io
import json

import pytest
from PIL import Image

from services.common.codes import normalise_tracking_code
from tests.intake.intake_samples import (
    BAD_CHECK_DIGIT,
    DESK,
    FIXTURES,
    PHONE,
    TCKN,
    WEB,
    big_photo,
    email_bytes,
    executable,
    jpeg,
)
from tests.support import bearer
from tests.support import database as get_database


def db(config):
    return get_database(config, "intake")


def outbox(config, collection="applications"):
    return [e for doc in db(config)[collection].find() for e in doc.get("_outbox", [])]


def count(config, collection):
    return db(config)[collection].count_documents({})


def stored_files(config):
    return count(config, "attachments")


def assert_nothing_stored(config):
    assert count(config, "applications") == 0
    assert count(config, "tracking_codes") == 0
    assert stored_files(config) == 0


# -- SMS ---------------------------------------------------------------------------------------

def sms(client, text, sender="0555 111 22 33", **headers):
    return client.post("/api/v1/channels/sms", json={
        "from": sender, "text": text, "received_at": "2026-03-03T09:00:00+03:00"},
        headers=headers)


def test_an_sms_with_tckn_and_message_becomes_an_application_answered_by_sms(client, config):
    response = sms(client, f"{TCKN} Tece mahallesinde sokakta büyük bir çukur var")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["security_code"] is None  # the gateway never sees it: the reply SMS carries it
    assert (body["kind"], body["category"]) == ("complaint", "road_damage")
    stored = db(config)["applications"].find_one({"_id": body["application_id"]})
    assert stored["channel"] == "sms" and stored["codes_by_message"] is True
    assert stored["location"]["neighbourhood"] == "Tece"  # named in the text
    assert db(config)["code_deliveries"].find_one({"_id": stored["_id"]})["security_code"]
    inbound = db(config)["inbound"].find_one({"_id": body["inbound_id"]})
    assert (inbound["address"], inbound["reply_channel"], inbound["status"]) == (
        PHONE, "sms", "accepted")
    [event] = outbox(config)
    assert event["type"] == "application_received" and event["data"]["channel"] == "sms"
    assert TCKN not in json.dumps(event) and "5551112233" not in json.dumps(event)


def test_a_webhook_without_the_gateway_secret_is_refused_naming_the_header(client, config):
    """Anyone can reach the webhook URLs: only the gateway knows `CHANNEL_WEBHOOK_SECRET`."""
    body = {"from": "+905551112233", "text": f"{TCKN} Sokak lambası yanmıyor.",
            "received_at": "2026-11-22T09:00:00+03:00"}
    for headers in ({"X-Webhook-Secret": ""}, {"X-Webhook-Secret": "guessed"}):
        refused = client.post("/api/v1/channels/sms", json=body, headers=headers)
        assert refused.status_code == 401
        assert "X-Webhook-Secret" in refused.get_json()["errors"]["headers"]
    assert db(config)["inbound"].count_documents({}) == 0
    assert client.post("/api/v1/channels/sms", json=body).status_code == 201


@pytest.mark.parametrize(("text", "reason"), [
    ("Sokağımızda çukur var", "no_tckn"),
    (f"{BAD_CHECK_DIGIT} Sokağımızda çukur var", "bad_tckn"),
    ("", "empty"),
    (TCKN, "no_message"),
])
def test_a_malformed_sms_is_refused_naming_text_and_answered_with_a_reply_event(
        client, config, text, reason):
    response = sms(client, text)
    assert response.status_code == 422
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"}
    assert "text" in body["errors"]["json"] and body["errors"]["reason"] == [reason]
    assert response.headers["X-Reply-Sent"] == "true"
    assert_nothing_stored(config)
    [event] = outbox(config, "inbound")
    assert event["type"] == "inbound_rejected"
    assert event["data"] == {"inbound_id": response.headers["X-Inbound-Id"], "channel": "sms",
                             "reason": reason}


def test_an_sms_from_an_invalid_number_is_a_422_naming_from_and_stores_nothing(client, config):
    response = sms(client, f"{TCKN} çukur", sender="12")
    assert response.status_code == 422
    assert "from" in response.get_json()["errors"]["json"]
    assert count(config, "inbound") == 0 and count(config, "applications") == 0


def test_a_retried_sms_webhook_gives_the_same_answer_and_no_second_reply(client, config):
    first = sms(client, "çukur var", **{"Idempotency-Key": "gw-msg-1"})
    again = sms(client, "çukur var", **{"Idempotency-Key": "gw-msg-1"})
    assert first.status_code == again.status_code == 422
    assert len(outbox(config, "inbound")) == 1
    ok = sms(client, f"{TCKN} çöpler alınmadı", **{"Idempotency-Key": "gw-msg-2"})
    ok_again = sms(client, f"{TCKN} çöpler alınmadı", **{"Idempotency-Key": "gw-msg-2"})
    assert ok_again.get_json()["application_id"] == ok.get_json()["application_id"]
    assert ok_again.headers["Idempotent-Replayed"] == "true"
    assert ok_again.get_json()["security_code"] is None  # a replay never shows it either
    assert count(config, "applications") == 1


def test_without_a_key_a_gateway_retry_is_recognised_by_sender_time_and_text(client, config):
    first = sms(client, f"{TCKN} çöpler alınmadı")
    again = sms(client, f"{TCKN} çöpler alınmadı")
    assert again.get_json()["application_id"] == first.get_json()["application_id"]
    later = client.post("/api/v1/channels/sms", json={
        "from": "0555 111 22 33", "text": f"{TCKN} çöpler alınmadı",
        "received_at": "2026-03-04T09:00:00+03:00"})
    assert later.get_json()["application_id"] != first.get_json()["application_id"]


# -- e-mail ------------------------------------------------------------------------------------

def post_email(client, raw: bytes):
    return client.post("/api/v1/channels/email", data=raw, content_type="message/rfc822")


def test_a_raw_email_with_a_photo_becomes_an_application_with_a_clean_attachment(client, config):
    response = post_email(client, (FIXTURES / "complaint_with_photo.eml").read_bytes())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    stored = db(config)["applications"].find_one({"_id": body["application_id"]})
    assert stored["channel"] == "email" and stored["category"] == "road_damage"
    assert stored["description"].startswith("Tece'de yol çökmesi")
    [photo] = stored["attachments"]
    assert photo["content_type"] == "image/jpeg" and photo["thumbnail_id"]
    citizen = db(config)["citizens"].find_one({"_id": stored["citizen_id"]})
    assert (citizen["email"], citizen["first_name"], citizen["tckn"]) == (
        "ayse@example.com", "Ayşe", TCKN)
    staff = bearer(config, "coordinator")
    download = client.get(f"/api/v1/applications/{stored['_id']}/attachments/{photo['id']}",
                          headers=staff)
    assert download.status_code == 200 and download.mimetype == "image/jpeg"
    assert dict(Image.open(io.BytesIO(download.data)).getexif()) == {}  # GPS gone
    assert db(config)["audit_log"].count_documents({"action": "attachment.read"}) == 1
    inbound = db(config)["inbound"].find_one({"_id": body["inbound_id"]})
    assert inbound["reply_channel"] == "email" and inbound["address"] == "ayse@example.com"


def test_a_mail_server_delivering_the_same_message_twice_makes_one_application(client, config):
    raw = (FIXTURES / "complaint_with_photo.eml").read_bytes()
    first, again = post_email(client, raw), post_email(client, raw)
    assert again.get_json()["application_id"] == first.get_json()["application_id"]
    assert count(config, "applications") == 1 and count(config, "inbound") == 1
    assert stored_files(config) == 2  # one photo, one thumbnail: nothing stored twice


@pytest.mark.parametrize(("raw", "reason"), [
    (email_bytes(text=None, subject=""), "empty"),
    (email_bytes(text=f"T.C. {BAD_CHECK_DIGIT} çukur var"), "bad_tckn"),
    (email_bytes(attachments=[("foto.jpg", "image/jpeg", big_photo())]),
     "attachment_too_large"),
    (email_bytes(attachments=[("foto.jpg", "image/jpeg", executable())]), "attachment_type"),
])
def test_a_malformed_email_is_refused_and_answered_by_email(client, config, raw, reason):
    response = post_email(client, raw)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"]["reason"] == [reason]
    assert_nothing_stored(config)
    [event] = outbox(config, "inbound")
    assert event["type"] == "inbound_rejected" and event["data"]["channel"] == "email"
    assert event["data"]["reason"] == reason


def test_an_auto_reply_is_refused_but_never_answered_so_no_mail_loop(client, config):
    raw = email_bytes(text=None, subject="Out of office").replace(
        b"Subject:", b"Auto-Submitted: auto-replied\r\nSubject:", 1)
    response = post_email(client, raw)
    assert response.status_code == 422 and response.headers["X-Reply-Sent"] == "false"
    assert outbox(config, "inbound") == []
    assert db(config)["inbound"].find_one()["status"] == "rejected"


def test_an_empty_request_or_one_nobody_can_be_answered_stores_nothing(client, config):
    assert post_email(client, b"").status_code == 422
    refused = post_email(client, b"Subject: x\r\n\r\nmerhaba\r\n")
    assert refused.status_code == 422 and "From" in refused.get_json()["errors"]["body"]
    assert count(config, "inbound") == 0 and count(config, "applications") == 0


# -- WhatsApp / social -------------------------------------------------------------------------

def test_whatsapp_and_social_messages_are_tagged_by_channel(client, config):
    whatsapp = client.post("/api/v1/channels/message", json={
        "channel": "whatsapp", "from": "+90 555 444 33 22", "name": "Mehmet Kaya",
        "text": "Parkta çöp konteyneri taşıyor"})
    assert whatsapp.status_code == 201, whatsapp.get_json()
    social = client.post("/api/v1/channels/message", json={
        "channel": "social", "from": "@mersinli_vatandas",
        "text": f"{TCKN} Otobüs durağının camı kırık"})
    assert social.status_code == 201
    w = db(config)["applications"].find_one({"_id": whatsapp.get_json()["application_id"]})
    s = db(config)["applications"].find_one({"_id": social.get_json()["application_id"]})
    assert (w["channel"], w["no_tckn"], s["channel"], s["no_tckn"]) == (
        "whatsapp", True, "social", False)
    person = db(config)["citizens"].find_one({"_id": w["citizen_id"]})
    assert person["phone"] == "+905554443322" and person["identity"] == "no_tckn"
    bad = client.post("/api/v1/channels/message", json={"channel": "fax", "from": "x"})
    assert bad.status_code == 422 and "channel" in bad.get_json()["errors"]["json"]


# -- desk / call centre --------------------------------------------------------------------------

def test_the_desk_form_of_seed_004_needs_a_staff_token_and_names_the_category(client, config):
    assert client.post("/api/v1/applications/desk", json=DESK).status_code == 401
    response = client.post("/api/v1/applications/desk", json=DESK, headers=bearer(config))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["category_name"] == "Yol bozukluğu" and body["security_code"]
    stored = db(config)["applications"].find_one({"_id": body["application_id"]})
    assert stored["desk"] == {"place": DESK["place"], "staff_name": "Derya Kaya",
                              "staff_code": "mezitli_bld-0031", "entered_by": "staff-test"}
    citizen = db(config)["citizens"].find_one({"_id": stored["citizen_id"]})
    assert (citizen["phone"], citizen["home_phone"]) == ("+905551112233", "+903243570000")
    assert citizen["address"].startswith("Tece Mah.")
    assert "Derya" not in json.dumps(outbox(config), default=str)  # staff names stay here too


def test_an_information_request_is_answered_on_the_spot_and_recorded(client, config):
    form = dict(DESK, channel="call_centre", kind="information", category="debt_inquiry",
                description="Emlak vergisi borcu soruldu.",
                answer="2026 yılı emlak vergisi borcu bulunmuyor.")
    response = client.post("/api/v1/applications/desk", json=form, headers=bearer(config))
    assert response.status_code == 201
    assert response.get_json()["status"] == "answered"
    [event] = outbox(config)
    assert event["data"]["answered"] is True
    assert event["data"]["answer"] == "2026 yılı emlak vergisi borcu bulunmuyor."
    not_first_contact = dict(DESK, answer="Ekip gönderilecek.")
    refused = client.post("/api/v1/applications/desk", json=not_first_contact,
                          headers=bearer(config))
    assert refused.status_code == 422 and "answer" in refused.get_json()["errors"]["json"]
    public = client.post("/api/v1/applications", json=dict(
        WEB, kind="information", category="debt_inquiry", answer="yok"))
    assert public.status_code == 422 and "answer" in public.get_json()["errors"]["json"]
    assert count(config, "applications") == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"received_by": {"name": "Derya Kaya", "staff_code": "DERYA"}}, "received_by"),
    ({"applied_at": "yesterday"}, "applied_at"),
    ({"place": ""}, "place"),
    ({"citizen": dict(DESK["citizen"], tckn=BAD_CHECK_DIGIT)}, "citizen"),
    ({"channel": "web"}, "channel"),
])
def test_a_wrong_desk_form_names_the_field(client, config, change, field):
    response = client.post("/api/v1/applications/desk", json=dict(DESK, **change),
                           headers=bearer(config))
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["json"]
    assert_nothing_stored(config)


# -- kinds, priority, confidentiality, people without a TCKN, anonymous ------------------------

def test_priority_defaults_from_the_category_and_confidentiality_is_kept(client, config):
    urgent = client.post("/api/v1/applications", json=dict(WEB, category="water_leak"))
    secret = client.post("/api/v1/applications", json=dict(
        WEB, category="noise", confidential=True, priority="high",
        location={"province": "Mersin"}))
    events = {e["application_id"]: e["data"] for e in outbox(config)}
    assert events[urgent.get_json()["application_id"]]["priority"] == "urgent"
    assert events[secret.get_json()["application_id"]]["confidential"] is True
    assert events[secret.get_json()["application_id"]]["priority"] == "high"


def test_foreign_residents_and_anonymous_applicants_are_supported_and_flagged(client, config):
    foreign = dict(WEB, citizen={"first_name": "John", "last_name": "Smith",
                                 "email": "john@example.com"})
    anonymous = dict(WEB, category="noise", anonymous=True, citizen=None,
                     location={"province": "Mersin"})
    a = client.post("/api/v1/applications", json=foreign)
    b = client.post("/api/v1/applications", json=anonymous)
    assert a.status_code == b.status_code == 201, (a.get_json(), b.get_json())
    first = db(config)["applications"].find_one({"_id": a.get_json()["application_id"]})
    second = db(config)["applications"].find_one({"_id": b.get_json()["application_id"]})
    assert (first["no_tckn"], first["anonymous"]) == (True, False)
    assert (second["anonymous"], second["citizen_id"]) == (True, None)
    nobody = client.post("/api/v1/applications", json=dict(WEB, citizen=None))
    assert nobody.status_code == 422 and "citizen" in nobody.get_json()["errors"]["json"]


def test_caller_types_are_stored_and_travel_in_the_event(client, config):
    response = client.post("/api/v1/applications", json=dict(WEB, caller_type="tradesperson"))
    assert response.status_code == 201
    [event] = outbox(config)
    assert event["data"]["caller_type"] == "tradesperson"
    bad = client.post("/api/v1/applications", json=dict(WEB, caller_type="mayor"))
    assert bad.status_code == 422 and "caller_type" in bad.get_json()["errors"]["json"]


# -- Idempotency-Key ---------------------------------------------------------------------------

def test_a_retried_post_returns_the_same_application_and_codes(client, config):
    key = {"Idempotency-Key": "7d1f6c0e-retry"}
    first = client.post("/api/v1/applications", json=WEB, headers=key)
    again = client.post("/api/v1/applications", json=WEB, headers=key)
    assert first.status_code == again.status_code == 201
    assert {k: v for k, v in again.get_json().items() if k != "replayed"} == {
        k: v for k, v in first.get_json().items() if k != "replayed"}
    assert count(config, "applications") == 1
    stored_key = db(config)["idempotency"].find_one()
    assert first.get_json()["security_code"] not in json.dumps(stored_key, default=str)
    other = client.post("/api/v1/applications", json=dict(WEB, category="noise"), headers=key)
    assert other.status_code == 422
    assert "Idempotency-Key" in other.get_json()["errors"]["headers"]


def test_a_refused_request_does_not_burn_its_key(client, config):
    key = {"Idempotency-Key": "fix-and-retry"}
    bad = client.post("/api/v1/applications", json=dict(WEB, category="teleportation"),
                      headers=key)
    assert bad.status_code == 422
    assert client.post("/api/v1/applications", json=WEB, headers=key).status_code == 201


# -- field team, CİMER --------------------------------------------------------------------------

def test_a_field_team_submission_with_photos_is_placed_by_the_photo_gps(client, config):
    form = {k: v for k, v in DESK.items() if k != "citizen"}
    form = dict(form, anonymous=True, place="Saha ekibi 2", location={"province": "Mersin"})
    photo = jpeg(gps=((36.0, 44.0, 42.0), (34.0, 31.0, 52.0)))
    response = client.post("/api/v1/channels/field", headers=bearer(config), data={
        "data": json.dumps(form), "photos": [(io.BytesIO(photo), "saha.jpg"),
                                             (io.BytesIO(jpeg()), "yakın.jpg")]},
        content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    stored = db(config)["applications"].find_one({"_id": response.get_json()["application_id"]})
    assert stored["channel"] == "field_team" and len(stored["attachments"]) == 2
    assert (stored["location"]["lat"], stored["location"]["lon"]) == (36.745, 34.531111)
    assert stored_files(config) == 4  # two photos, two thumbnails


@pytest.mark.parametrize(("photo", "status"), [(executable(), 415), (big_photo(), 413)])
def test_a_bad_field_photo_is_refused_and_nothing_is_stored(client, config, photo, status):
    form = dict(DESK, location={
        "province": "Mersin", "lat": 36.74, "lon": 34.53})
    response = client.post("/api/v1/channels/field", headers=bearer(config), data={
        "data": json.dumps(form), "photos": [(io.BytesIO(photo), "foto.jpg")]},
        content_type="multipart/form-data")
    assert response.status_code == status
    assert "photos" in response.get_json()["errors"]["files"]
    assert_nothing_stored(config)


def test_a_cimer_batch_imports_each_item_once_and_names_bad_ones(client, config):
    item = {"cimer_ref": "CMR-2026-000123", "received_at": "2026-03-01T12:00:00+03:00",
            "kind": "complaint", "category": "noise", "subject": "Gece gürültüsü",
            "description": "Her gece yüksek sesle müzik çalınıyor.",
            "citizen": dict(WEB["citizen"]), "location": {"province": "Mersin"}}
    batch = {"batch_id": "2026-03-01", "items": [
        item, dict(item, cimer_ref="CMR-2026-000124", citizen=dict(
            WEB["citizen"], tckn=BAD_CHECK_DIGIT))]}
    response = client.post("/api/v1/channels/cimer", json=batch, headers=bearer(config))
    assert response.status_code == 200
    body = response.get_json()
    [accepted] = body["accepted"]
    [rejected] = body["rejected"]
    assert accepted["security_code"] is None  # sent to the citizen by SMS
    assert rejected["index"] == 1 and "citizen" in rejected["errors"]
    again = client.post("/api/v1/channels/cimer", json=batch, headers=bearer(config)).get_json()
    assert again["accepted"][0]["application_id"] == accepted["application_id"]
    assert count(config, "applications") == 1
    stored = db(config)["applications"].find_one()
    assert stored["source"]["ref"] == "CMR-2026-000123" and stored["channel"] == "cimer"
    assert normalise_tracking_code(accepted["tracking_code"])
