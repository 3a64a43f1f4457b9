"""KVKK retention over the real bus: a case lives its life to `case_closed`, intake, notify and
reporting learn of the conclusion from the event, and once the period has passed each one's
retention job (its nameko timer, called through `entrypoint_hook`) anonymises its personal data
— while tracking's page still shows the whole timeline and reporting's figures do not move."""
from contextlib import ExitStack
from datetime import timedelta

from nameko.testing.services import entrypoint_hook

from services.common.auth import mint_token
from services.common.bootstrap import parts_of
from services.common.events import utcnow
from services.common.outbox import BOOKKEEPING
from services.common.retention import ANONYMISED
from tests.support import SAMPLE_APPLICATION
from tests.support import database as get_database

APPLICATION = dict(SAMPLE_APPLICATION, citizen=dict(SAMPLE_APPLICATION["citizen"],
                                                    email="ayse@example.com"),
                   location=dict(SAMPLE_APPLICATION["location"], address="Tece Mah. 1. Sk. 3"))
OWNERS = ("intake", "notify", "reporting")


def staff(system, user: str, role: str) -> dict:
    token = mint_token(system.config["STAFF_TOKEN_SECRET"], user, role)
    return {"Authorization": f"Bearer {token}"}


def snapshot(config: dict, service: str, collection: str) -> list[dict]:
    return list(get_database(config, service)[collection].find({}).sort("_id", 1))


def content(config: dict, service: str, collection: str) -> list[dict]:
    """The documents without the relay's bookkeeping (a message's outbox may still be cleared
    meanwhile); a second anonymisation would show as a new `anonymised_at`."""
    return [{k: v for k, v in doc.items() if k not in BOOKKEEPING}
            for doc in snapshot(config, service, collection)]


def test_after_the_period_personal_data_is_anonymised_and_the_timeline_and_figures_stay(system):
    system.start("intake", "routing", "notify", "tracking", "reporting")
    with ExitStack() as stack:
        system.handled(stack, "tracking", "application_routed")
        system.handled(stack, "notify", "application_received")
        system.handled(stack, "notify", "application_routed")
        answer = system.http["intake"].post("/api/v1/applications", json=APPLICATION)
        assert answer.status_code == 201, answer.get_json()
    created = answer.get_json()
    app_id = created["application_id"]
    mezitli, roads = staff(system, "mez-0008", "expert"), staff(system, "mbb-0009", "expert")
    chief, centre = staff(system, "mbb-0011", "supervisor"), staff(system, "mbb-0005",
                                                                    "coordinator")

    def act(action: str, who: dict, body: dict | None = None, *events: tuple[str, str]):
        with ExitStack() as stack:
            for service, event in events:
                system.handled(stack, service, event)
            answer = system.http["routing"].post(f"/api/v1/cases/{app_id}/{action}",
                                                 json=body or {}, headers=who)
            assert answer.status_code == 200, (action, answer.get_json())

    act("acknowledge", mezitli)
    act("transfer", mezitli, {"unit": "mersin_bb.roads", "reason": "Ana arter."},
        ("notify", "case_transferred"))
    act("acknowledge", roads)
    act("start", roads)
    act("resolve", roads, {"result": "Asfalt yenilendi."})
    act("approve", chief)
    act("close", centre, None, *((service, "case_closed") for service in
                                 ("tracking", *OWNERS)))
    reporting = parts_of(system.containers["reporting"])
    reporting.store.save_callback_note("2026-W49", app_id, {
        "note": "Ayşe Hanım'a ulaşıldı, memnun.", "reached": True, "by": "mayor-1",
        "at": utcnow()})

    tracked_before = system.track(created)
    reporting.reports.catch_up()
    figures_before = reporting.reports.summary()
    facts_before = [snapshot(system.config, "reporting", name)
                    for name in ("report_buckets", "applications", "facts")]

    # now: nothing is old enough, nothing changes
    for service in OWNERS:
        with entrypoint_hook(system.containers[service], "anonymise_expired") as run:
            run()
    intake_db = get_database(system.config, "intake")
    assert intake_db.applications.find_one({"_id": app_id})["description"] == \
        APPLICATION["description"]

    # two years and a day on, each owner's timer anonymises what it holds
    later = utcnow() + timedelta(days=731)
    for service in OWNERS:
        parts_of(system.containers[service]).retention_job.clock = lambda: later
        with entrypoint_hook(system.containers[service], "anonymise_expired") as run:
            run()

    application = intake_db.applications.find_one({"_id": app_id})
    assert application["description"] == ANONYMISED
    assert application["location"] == {"province": "Mersin", "district": "Mezitli",
                                       "neighbourhood": "Tece"}
    assert application["tracking_code"] and application["category"] == "road_damage"
    citizen = intake_db.citizens.find_one({"_id": application["citizen_id"]})
    assert citizen["anonymised_at"]
    for gone in ("tckn", "first_name", "last_name", "phone", "email"):
        assert gone not in citizen, gone
    messages = list(get_database(system.config, "notify").messages.find({"application_id":
                                                                          app_id}))
    assert messages and all(m["anonymised_at"] and "destination" not in m for m in messages)
    note = get_database(system.config, "reporting").callback_notes.find_one(
        {"_id": f"2026-W49|{app_id}"})
    assert note["note"] is None and note["reached"] is True

    # a second run of every owner's timer changes nothing anywhere
    owned = (("intake", "applications"), ("intake", "citizens"),
             ("reporting", "callback_notes"))
    held = [content(system.config, *where) for where in owned]
    # notify's log may still move by itself (a message held for order, released by its
    # timer): what must not move is each anonymised message's mark
    marks = {m["_id"]: m["anonymised_at"] for m in content(system.config, "notify", "messages")
             if m.get("anonymised_at")}
    for service in OWNERS:
        with entrypoint_hook(system.containers[service], "anonymise_expired") as run:
            run()
    assert [content(system.config, *where) for where in owned] == held
    after = {m["_id"]: m for m in content(system.config, "notify", "messages")}
    assert marks and all(after[key]["anonymised_at"] == at for key, at in marks.items())

    # the citizen's page still shows every step; the figures are what they were
    tracked_after = system.track(created)
    # (a "notification sent" step may still arrive meanwhile: the timeline only grows)
    assert all(step in tracked_after["timeline"] for step in tracked_before["timeline"])
    assert len(tracked_before["timeline"]) >= 6
    assert tracked_after["status"] == tracked_before["status"]
    assert reporting.reports.summary() == figures_before
    assert [snapshot(system.config, "reporting", name)
            for name in ("report_buckets", "applications", "facts")] == facts_before
