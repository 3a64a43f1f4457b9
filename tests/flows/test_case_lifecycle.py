"""A case's whole life over the real bus, and tracking's timeline matching routing's history.

received → routed → acknowledged → started → transferred → (acknowledged → started at the new
unit) → resolved → rejected → resolved → approved → closed → reopened by the citizen through
tracking → (acknowledged → started) → resolved → approved → closed. Every staff action goes
through routing's HTTP API; every step reaches tracking as an event; at the end tracking's
timeline shows the same steps, in the same order, at the same instants, as routing's history.
"""
from contextlib import ExitStack
from datetime import datetime

from services.common.auth import mint_token
from tests.support import SAMPLE_APPLICATION

APPLICATION = SAMPLE_APPLICATION


def staff(system, user: str, role: str) -> dict:
    token = mint_token(system.config["STAFF_TOKEN_SECRET"], user, role)
    return {"Authorization": f"Bearer {token}"}


def test_a_case_lives_its_whole_life_and_tracking_shows_every_step(system):
    system.start("intake", "routing", "tracking")
    with ExitStack() as stack:
        system.handled(stack, "tracking", "application_routed")
        answer = system.http["intake"].post("/api/v1/applications", json=APPLICATION)
        assert answer.status_code == 201, answer.get_json()
    created = answer.get_json()
    app_id = created["application_id"]
    mezitli = staff(system, "mez-0008", "expert")
    roads = staff(system, "mbb-0009", "expert")
    roads_chief = staff(system, "mbb-0011", "supervisor")
    centre = staff(system, "mbb-0005", "coordinator")

    def act(action: str, who: dict, event: str, body: dict | None = None) -> dict:
        with ExitStack() as stack:
            system.handled(stack, "tracking", event)
            answer = system.http["routing"].post(f"/api/v1/cases/{app_id}/{action}",
                                                 json=body or {}, headers=who)
            assert answer.status_code == 200, (action, answer.get_json())
        return answer.get_json()

    act("acknowledge", mezitli, "case_acknowledged")
    act("start", mezitli, "case_started")
    act("transfer", mezitli, "case_transferred",
        {"unit": "mersin_bb.roads", "reason": "Ana arter: Büyükşehir'in yolu."})
    act("acknowledge", roads, "case_acknowledged")
    act("start", roads, "case_started")
    act("resolve", roads, "case_resolved", {"result": "Yama yapıldı."})
    act("reject", roads_chief, "case_rejected", {"reason": "Fotoğraf yok."})
    act("resolve", roads, "case_resolved", {"result": "Asfalt yenilendi.", "photo": "att-1"})
    act("approve", roads_chief, "case_approved")
    closed = act("close", centre, "case_closed")
    assert closed["state"] == "closed"

    with ExitStack() as stack:  # the citizen reopens through tracking; routing decides
        system.handled(stack, "routing", "reopen_requested")
        system.handled(stack, "tracking", "case_reopened")
        answer = system.http["tracking"].post("/api/v1/track/reopen", json={
            "tracking_code": created["tracking_code"],
            "security_code": created["security_code"], "reason": "Çukur yine açıldı."})
        assert answer.status_code == 202, answer.get_json()

    act("acknowledge", roads, "case_acknowledged")
    act("start", roads, "case_started")
    act("resolve", roads, "case_resolved", {"result": "Zemin güçlendirildi."})
    act("approve", roads_chief, "case_approved")
    act("close", centre, "case_closed")

    case = system.http["routing"].get(f"/api/v1/cases/{app_id}", headers=centre).get_json()
    assert [step["event"] for step in case["history"]] == [
        "application_routed", "case_acknowledged", "case_started", "case_transferred",
        "case_acknowledged", "case_started", "case_resolved", "case_rejected", "case_resolved",
        "case_approved", "case_closed", "case_reopened", "case_acknowledged", "case_started",
        "case_resolved", "case_approved", "case_closed"]
    assert case["history"][11]["unit"] == "mersin_bb.roads"  # reopened to the same unit
    assert {step["by"] for step in case["history"][1:]} == {
        "mez-0008", "mbb-0009", "mbb-0011", "mbb-0005", "citizen"}

    tracked = system.track(created)
    assert tracked["status"] == "closed"
    steps = [(datetime.fromisoformat(e["at"]), e["status"]) for e in tracked["timeline"]
             if e["status"] is not None]
    assert steps[0][1] == "received"
    assert steps[1:] == [(datetime.fromisoformat(step["at"].replace("Z", "+00:00")),
                          step["state"]) for step in case["history"]]
