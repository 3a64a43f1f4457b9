"""KVKK: intake's audit log of personal-data reads, searched by administrators over
`GET /api/v1/citizens/audit` (the shared `services.common.audit` search): who read whose data,
when and why; bounded by a required window and a limit; administrators only."""
from __future__ import annotations

from datetime import timedelta

from services.common.events import utcnow
from tests.intake.intake_samples import TCKN, WEB
from tests.support import bearer


def window(**extra: str) -> dict:
    now = utcnow()
    return {"from": (now - timedelta(hours=1)).isoformat(),
            "to": (now + timedelta(hours=1)).isoformat(), **extra}


def test_an_administrator_finds_who_read_a_citizens_data_and_why(client, config):
    client.post("/api/v1/applications", json=WEB)
    found = client.post("/api/v1/citizens/search", json={"tckn": TCKN},
                        headers=bearer(config, "coordinator", user="desk-0001"))
    citizen_id = found.get_json()["id"]
    read = client.get(f"/api/v1/citizens/{citizen_id}?reveal=true&reason=Kimlik+teyidi",
                      headers=bearer(config, "coordinator", user="mbb-0005"))
    assert read.status_code == 200

    admin = bearer(config, "admin", user="adm-1")
    answer = client.get("/api/v1/citizens/audit",
                        query_string=window(citizen_id=citizen_id), headers=admin)
    assert answer.status_code == 200, answer.get_json()
    items = answer.get_json()["items"]
    assert [(e["action"], e["staff"]) for e in items] == [
        ("citizen.read", "mbb-0005"), ("citizen.search", "desk-0001")]  # newest first
    assert items[0]["reason"] == "Kimlik teyidi" and items[0]["role"] == "coordinator"
    assert TCKN not in answer.get_data(as_text=True)  # ids, never the number

    one = client.get("/api/v1/citizens/audit", query_string=window(
        citizen_id=citizen_id, staff="mbb-0005", limit="1"), headers=admin).get_json()
    assert len(one["items"]) == 1 and one["more"] is False
    capped = client.get("/api/v1/citizens/audit", query_string=window(
        citizen_id=citizen_id, limit="1"), headers=admin).get_json()
    assert len(capped["items"]) == 1 and capped["more"] is True

    refused = client.get("/api/v1/citizens/audit", query_string=window(),
                         headers=bearer(config, "coordinator"))
    assert refused.status_code == 403
    bad = client.get("/api/v1/citizens/audit", query_string={"citizen_id": citizen_id},
                     headers=admin)
    assert bad.status_code == 400 and {"from", "to"} <= set(bad.get_json()["errors"]["query"])
