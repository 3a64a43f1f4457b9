"""An admin's new category reaches intake and tracking over the real broker: routing stores it
with its `category_saved`, the relay publishes it, both services keep it in their own database."""
from contextlib import ExitStack
from datetime import timedelta

from nameko.testing.services import entrypoint_waiter

from services.common.catalogue_cache import CATEGORIES
from services.common.events import make_event
from tests.support import SAMPLE_APPLICATION, publish
from tests.support import database as get_database

GRAFFITI = {"code": "graffiti", "name_tr": "Duvar yazısı", "name_en": "Graffiti",
            "kinds": ["complaint"], "tier": "district", "read_hours": 24,
            "resolve_hours": 96, "reopen_days": 10}
CONSUMERS = ("intake", "tracking")


def handled_everywhere(stack: ExitStack, system, method: str, services=CONSUMERS,
                       seen: list | None = None) -> None:
    """Wait (on leaving `stack`) until each service's `method` handled one event."""
    for name in services:
        def one(worker_ctx, result, exc_info):
            assert exc_info is None, exc_info
            if seen is not None:
                seen.append(worker_ctx.args[0])
            return True

        stack.enter_context(entrypoint_waiter(system.containers[name], method, callback=one,
                                              timeout=60))


def submit(system, category: str):
    return system.http["intake"].post("/api/v1/applications",
                                      json=dict(SAMPLE_APPLICATION, category=category))


def stored_copies(system) -> list:
    return [get_database(system.config, name)[CATEGORIES].find_one({"_id": "graffiti"})
            for name in CONSUMERS]


def test_a_category_created_by_an_admin_is_accepted_by_intake_and_named_by_tracking(system):
    system.start()
    refused = submit(system, "graffiti")
    assert refused.status_code == 422
    assert "category" in refused.get_json()["errors"]["json"]

    seen: list[dict] = []
    with ExitStack() as stack:
        handled_everywhere(stack, system, "handle_category_saved", seen=seen)
        created = system.http["routing"].post("/api/v1/categories", json=GRAFFITI,
                                              headers=system.staff)
        assert created.status_code == 201, created.get_json()
    event = seen[0]
    assert event["data"]["name_tr"] == "Duvar yazısı"

    with ExitStack() as stack:
        handled_everywhere(stack, system, "handle_application_received",
                           services=("routing", "tracking"))
        accepted = submit(system, "graffiti")
        assert accepted.status_code == 201, accepted.get_json()
    tracked = system.track(accepted.get_json())
    assert (tracked["category_name_tr"], tracked["category_name_en"]) == (
        "Duvar yazısı", "Graffiti")
    case = system.http["routing"].get(f"/api/v1/cases/{accepted.get_json()['application_id']}",
                                      headers=system.staff).get_json()
    assert case["category"] == "graffiti"

    # The same event again (a redelivery) and an older change arriving late change nothing.
    before = stored_copies(system)
    envelope = {**event, "occurred_at": event["occurred_at"].isoformat()}
    older = make_event("category_saved", "category:graffiti",
                       dict(event["data"], name_tr="Eski ad"),
                       occurred_at=event["occurred_at"] - timedelta(minutes=1))
    for late in (envelope, older):
        with ExitStack() as stack:
            handled_everywhere(stack, system, "handle_category_saved")
            publish(system.config, late)
    after = stored_copies(system)
    assert [(doc["category"], doc["occurred_at"], doc["event_id"]) for doc in after] == [
        (doc["category"], doc["occurred_at"], doc["event_id"]) for doc in before]
    assert system.track(accepted.get_json())["category_name_tr"] == "Duvar yazısı"
    assert submit(system, "graffiti").status_code == 201  # still accepted (a duplicate)
