"""Duplicates across channels: one original, merged duplicates given its tracking code, staff
unlink; and the citizen registry staff see (masked, audited)."""
import json
from datetime import timedelta

import eventlet
import pytest

from services.common.codes import normalise_tracking_code, security_digest
from services.common.events import utcnow
from services.common.mongo import first_false
from services.intake.bootstrap import build
from services.intake.web import create_app
from tests.intake.intake_samples import OTHER_TCKN, TCKN, WEB
from tests.support import bearer
from tests.support import database as get_database

NEIGHBOUR = dict(WEB, citizen=dict(WEB["citizen"], tckn=OTHER_TCKN, first_name="Ali",
                                   phone="05321234567"))


def db(config):
    return get_database(config, "intake")


def events(config, application_id):
    doc = db(config)["applications"].find_one({"_id": application_id})
    return doc.get("_outbox", [])


def test_the_same_complaint_by_sms_then_web_is_one_original_and_one_merged_duplicate(
        client, config):
    by_sms = client.post("/api/v1/channels/sms", json={
        "from": "05551112233", "text": f"{TCKN} Sokağımızda büyük bir çukur var"})
    assert by_sms.status_code == 201, by_sms.get_json()
    original = by_sms.get_json()
    by_web = client.post("/api/v1/applications", json=WEB)
    assert by_web.status_code == 201, by_web.get_json()
    duplicate = by_web.get_json()

    assert duplicate["status"] == "merged"
    assert duplicate["tracking_code"] == original["tracking_code"]  # the first tracking code
    assert duplicate["security_code"] is None  # never the original's, never one of its own
    assert duplicate["merged_into"] == original["application_id"]
    stored = db(config)["applications"].find_one({"_id": duplicate["application_id"]})
    assert (stored["status"], stored["tracking_code"], stored["security_digest"]) == (
        "merged", None, None)
    [merged] = events(config, duplicate["application_id"])
    assert merged["type"] == "application_merged"  # not received: it is not routed twice
    assert merged["data"] == {"original_application_id": original["application_id"],
                              "original_tracking_code":
                                  normalise_tracking_code(original["tracking_code"])}
    assert db(config)["tracking_codes"].count_documents({}) == 1
    assert db(config)["code_deliveries"].count_documents(
        {"_id": duplicate["application_id"]}) == 0


def test_different_people_reporting_the_same_spot_are_linked_and_far_ones_are_not(
        client, config):
    first = client.post("/api/v1/applications", json=WEB).get_json()
    neighbour = dict(NEIGHBOUR, location=dict(WEB["location"], lat=36.7452, lon=34.5312))  # ~14 m
    second = client.post("/api/v1/applications", json=neighbour).get_json()
    assert second["status"] == "merged" and second["tracking_code"] == first["tracking_code"]
    farther = dict(neighbour, location=dict(WEB["location"], lat=36.7470, lon=34.5311))
    third = client.post("/api/v1/applications", json=farther).get_json()
    assert third["status"] == "received" and third["tracking_code"] != first["tracking_code"]
    another_category = client.post("/api/v1/applications", json=dict(
        WEB, category="waste_collection")).get_json()
    assert another_category["status"] == "received"


def test_the_window_is_configurable(config):
    parts = build(dict(config, DUPLICATE_WINDOW_HOURS="0"))
    client = create_app(parts).test_client()
    first = client.post("/api/v1/applications", json=WEB).get_json()
    second = client.post("/api/v1/applications", json=WEB).get_json()
    assert second["status"] == "received"
    assert first["tracking_code"] != second["tracking_code"]
    parts.close()


def test_staff_unlink_a_duplicate_which_then_gets_fresh_codes_and_is_received(client, config):
    first = client.post("/api/v1/applications", json=WEB).get_json()
    duplicate = client.post("/api/v1/applications", json=WEB).get_json()
    path = f"/api/v1/applications/{duplicate['application_id']}/unlink"
    assert client.post(path).status_code == 401
    assert client.post(path, headers=bearer(config, "expert")).status_code == 403

    view = client.get(f"/api/v1/applications/{first['application_id']}",
                      headers=bearer(config)).get_json()
    assert [d["application_id"] for d in view["duplicates"]] == [duplicate["application_id"]]

    unlinked = client.post(path, headers=bearer(config, "coordinator"))
    assert unlinked.status_code == 200, unlinked.get_json()
    body = unlinked.get_json()
    assert body["status"] == "received" and body["security_code"] is None  # staff never see it
    assert body["tracking_code"] != first["tracking_code"]
    merged_event, received = events(config, duplicate["application_id"])
    assert (merged_event["type"], received["type"]) == ("application_merged",
                                                        "application_received")
    assert received["data"]["tracking_code"] == normalise_tracking_code(body["tracking_code"])
    held = db(config)["code_deliveries"].find_one({"_id": duplicate["application_id"]})
    assert held["security_code"]  # goes to the citizen by SMS / e-mail
    again = client.post(path, headers=bearer(config, "coordinator"))
    assert again.status_code == 200 and again.get_json()["tracking_code"] == body["tracking_code"]
    assert len(events(config, duplicate["application_id"])) == 2  # unlinked once
    original = client.post(f"/api/v1/applications/{first['application_id']}/unlink",
                           headers=bearer(config))
    assert original.status_code == 409


def test_simultaneous_submissions_of_one_complaint_make_exactly_one_original(client, config):
    """A double submit, and a neighbour reporting the same spot at the same moment: one
    original, every other one merged into it (none lost, none a second original)."""
    payloads = [WEB] * 4 + [NEIGHBOUR] * 2
    pool = eventlet.GreenPool(len(payloads))
    answers = list(pool.imap(lambda payload: client.post("/api/v1/applications", json=payload),
                             payloads))
    assert [a.status_code for a in answers] == [201] * len(payloads)
    bodies = [a.get_json() for a in answers]
    [original] = [b for b in bodies if b["status"] == "received"]
    merged = [b for b in bodies if b["status"] == "merged"]
    assert len(merged) == len(payloads) - 1
    assert {b["merged_into"] for b in merged} == {original["application_id"]}
    assert {b["tracking_code"] for b in bodies} == {original["tracking_code"]}
    assert db(config)["tracking_codes"].count_documents({}) == 1  # the merged gave theirs back
    later = client.post("/api/v1/applications", json=WEB).get_json()
    assert later["merged_into"] == original["application_id"]


def test_two_staff_unlinking_at_once_unlink_once_and_the_held_code_is_the_stored_one(
        client, config):
    client.post("/api/v1/applications", json=WEB)
    duplicate = client.post("/api/v1/applications", json=WEB).get_json()
    path = f"/api/v1/applications/{duplicate['application_id']}/unlink"
    pool = eventlet.GreenPool(3)
    answers = list(pool.imap(lambda _: client.post(path, headers=bearer(config, "coordinator")),
                             range(3)))
    assert {a.status_code for a in answers} <= {200, 409} and 200 in {
        a.status_code for a in answers}
    assert len({a.get_json()["tracking_code"] for a in answers if a.status_code == 200}) == 1
    stored = db(config)["applications"].find_one({"_id": duplicate["application_id"]})
    held = db(config)["code_deliveries"].find_one({"_id": duplicate["application_id"]})
    # the code the citizen will be sent opens the application (not a losing attempt's)
    assert security_digest(config["CODE_PEPPER"], held["security_code"]) == \
        stored["security_digest"]
    assert [e["type"] for e in events(config, duplicate["application_id"])] == [
        "application_merged", "application_received"]
    assert db(config)["tracking_codes"].count_documents({}) == 2  # the losers gave theirs back


def test_duplicate_slots_are_purged_once_no_window_can_reach_them(client, config, parts):
    first = client.post("/api/v1/applications", json=WEB).get_json()
    intake = parts.intake
    slots = db(config)["duplicate_slots"]
    filed = slots.count_documents({})
    assert filed == 2  # under the citizen and under the grid cell
    assert intake.purge(utcnow())[2] == 0  # inside the window: kept
    duplicate = client.post("/api/v1/applications", json=WEB).get_json()
    assert duplicate["merged_into"] == first["application_id"]
    assert intake.purge(utcnow() + timedelta(days=30))[2] == filed
    assert slots.count_documents({}) == 0


def test_staff_see_a_citizens_whole_history_masked_and_every_read_is_audited(client, config):
    client.post("/api/v1/applications", json=WEB)
    client.post("/api/v1/applications", json=dict(WEB, category="noise", kind="complaint"))
    anonymous = client.post("/api/v1/citizens/search", json={"tckn": TCKN})
    assert anonymous.status_code == 401
    found = client.post("/api/v1/citizens/search", json={"tckn": TCKN},
                        headers=bearer(config, "coordinator"))
    assert found.status_code == 200
    profile = found.get_json()
    assert profile["tckn"] == "100******46" and profile["tckn_masked"] is True
    assert len(profile["applications"]) == 2
    assert {a["category"] for a in profile["applications"]} == {"road_damage", "noise"}

    path = f"/api/v1/citizens/{profile['id']}"
    assert client.get(f"{path}?reveal=true&reason=merak",
                      headers=bearer(config, "expert")).status_code == 403
    no_reason = client.get(f"{path}?reveal=true", headers=bearer(config, "coordinator"))
    assert no_reason.status_code == 422 and "reason" in json.dumps(no_reason.get_json())
    revealed = client.get(f"{path}?reveal=true&reason=Kimlik+teyidi",
                          headers=bearer(config, "coordinator", user="mbb-0011"))
    assert revealed.get_json()["tckn"] == TCKN

    changed = client.patch(path, json={"preferred_channel": "email", "consent": True,
                                       "neighbourhood": "Tece"}, headers=bearer(config))
    assert changed.status_code == 200 and changed.get_json()["preferred_channel"] == "email"
    bad = client.patch(path, json={"phone": "12"}, headers=bearer(config))
    assert bad.status_code == 422 and "phone" in bad.get_json()["errors"]["json"]

    audit = list(db(config)["audit_log"].find({"citizen_id": profile["id"]}).sort("at", 1))
    assert [a["action"] for a in audit] == ["citizen.search", "citizen.read", "citizen.update"]
    assert audit[1]["revealed_tckn"] is True and audit[1]["staff"] == "mbb-0011"
    assert audit[1]["reason"] == "Kimlik teyidi"


def test_staff_register_a_person_when_unknown(client, config):
    response = client.post("/api/v1/citizens", json={
        "tckn": OTHER_TCKN, "first_name": "Zeynep", "last_name": "Aksoy",
        "phone": "05554443322", "district": "Toroslar", "neighbourhood": "Alsancak",
        "preferred_channel": "sms", "consent": True, "caller_type": "tradesperson"},
        headers=bearer(config))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["caller_type"] == "tradesperson" and body["tckn"] == "100******78"
    assert body["applications"] == []
    made_muhtar = client.patch(f"/api/v1/citizens/{body['id']}", json={"caller_type": "muhtar"},
                               headers=bearer(config, "expert"))
    assert made_muhtar.status_code == 403  # the desk's work (and `caller_type`: REVEAL_ROLES)
    assert "role" in made_muhtar.get_json()["errors"]


@pytest.mark.parametrize("count", [0, 1, 2, 3, 7, 8, 9, 100])
def test_the_first_free_link_slot_is_found_in_logarithmic_reads(count):
    asked: list[int] = []

    def taken(n: int) -> bool:
        asked.append(n)
        return n < count

    assert first_false(taken) == count
    assert len(asked) <= 2 * max(1, count).bit_length() + 1


def test_many_duplicates_of_one_original_each_take_the_next_link(parts):
    for n in range(12):
        parts.store.link_duplicate("ORIGINAL", f"DUP{n}")
    links = parts.store.merged_links
    assert sorted(doc["_id"] for doc in links.find()) == sorted(f"ORIGINAL#{n}" for n in range(12))
    assert links.find_one({"_id": "ORIGINAL#11"})["application_id"] == "DUP11"
