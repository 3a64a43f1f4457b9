"""The first real path across all six services, over the real RabbitMQ."""
import json
from contextlib import ExitStack
from pathlib import Path

from nameko.testing.services import entrypoint_waiter

from tests.support import SAMPLE_APPLICATION, given_events, handler_of, publish
from tests.support import database as get_database

APPLICATION = SAMPLE_APPLICATION
# Who consumes what (design §5), as the flows below wait for them.
ON_RECEIVED = ["routing", "notify", "tracking", "reporting"]
ON_ROUTED = ["sla", "notify", "tracking", "reporting"]


def submit(system, tckn: str | None = None) -> dict:
    body = APPLICATION
    if tckn:  # another citizen: the same complaint from the same person would be a duplicate
        body = dict(APPLICATION, citizen=dict(APPLICATION["citizen"], tckn=tckn))
    response = system.http["intake"].post("/api/v1/applications", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def sms_lines(config: dict) -> list[dict]:
    path = Path(config["DEV_SINK_DIR"]) / "sms.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def waiting_for(stack: ExitStack, system, event: str, services: list[str], count: int = 1):
    for name in services:
        seen = []

        def enough(worker_ctx, result, exc_info, seen=seen):
            assert exc_info is None, exc_info
            seen.extend(given_events(worker_ctx, event))
            return len(seen) >= count

        container = system.containers[name]
        stack.enter_context(entrypoint_waiter(container, handler_of(container, event),
                                              callback=enough, timeout=60))


def sla_clock(system, created: dict) -> dict:
    """The case's SLA clock as staff read it, less what moves with the wall clock."""
    response = system.http["sla"].get(f"/api/v1/sla/cases/{created['application_id']}",
                                      headers=system.staff)
    assert response.status_code == 200
    return {k: v for k, v in response.get_json().items() if not k.endswith("_percent_used")}


def test_a_submitted_application_is_routed_timed_told_tracked_and_counted(system):
    system.start()
    with ExitStack() as stack:
        waiting_for(stack, system, "application_received", ON_RECEIVED)
        waiting_for(stack, system, "application_routed", ON_ROUTED)
        created = submit(system)

    tracked = system.track(created)
    assert tracked["status"] == "assigned"
    assert tracked["unit"]["name"]  # the unit's name, as the citizen sees it
    assert [entry["status"] for entry in tracked["timeline"]][:2] == ["received", "assigned"]

    case = system.http["routing"].get(f"/api/v1/cases/{created['application_id']}",
                                      headers=system.staff).get_json()
    assert (case["institution"], case["unit"]) == ("mezitli_bld", "mezitli_bld.works")
    assert "mapping" in case["rule"]

    clock = sla_clock(system, created)
    assert (clock["unit"], clock["clock"]) == ("mezitli_bld.works", "running")

    # by content, not by time: the two handlers run concurrently and may write in either order
    # (the unit's experts are told too: the citizen's are those to their phone)
    [received_sms, routed_sms] = sorted(
        (m for m in sms_lines(system.config) if m["to"] == "+905551112233"),
        key=lambda m: "iletildi" in m["text"])
    assert received_sms["to"] == "+905551112233"
    assert created["tracking_code"] in received_sms["text"]
    assert created["security_code"] not in received_sms["text"]
    assert created["tracking_code"] in routed_sms["text"]
    assert tracked["unit"]["name"] in routed_sms["text"]

    summary = system.http["reporting"].get("/api/v1/reports/summary",
                                           headers=system.staff).get_json()
    assert "road_damage" in json.dumps(summary)


def test_two_hundred_applications_accepted_while_routing_is_down_all_reach_assigned(system):
    system.start("intake", "sla", "notify", "tracking", "reporting")
    from stdnum.tr import tckimlik

    tckns = [f"{200000000 + n}" for n in range(200)]
    created = [submit(system, t + tckimlik.calc_check_digits(t)) for t in tckns]
    with ExitStack() as stack:
        waiting_for(stack, system, "application_routed", ["tracking"], count=200)
        system.start("routing")
    statuses = {system.track(one)["status"] for one in created}
    assert statuses == {"assigned"}


def test_a_redelivered_event_changes_nothing_and_sends_nothing_twice(system, probe):
    received_probe = probe("intake", "application_received")
    routed_probe = probe("routing", "application_routed")
    system.start()
    with ExitStack() as stack:
        waiting_for(stack, system, "application_received", ON_RECEIVED)
        waiting_for(stack, system, "application_routed", ON_ROUTED)
        waiting_for(stack, system, "notification_sent", ["tracking"], count=2)
        # sla's working-time deadlines reach the page and the staff case after the routing
        waiting_for(stack, system, "deadline_planned", ["tracking", "routing"])
        created = submit(system)
    [received] = received_probe.take()
    [routed] = routed_probe.take()
    before = {
        "track": system.track(created),
        "sms": sms_lines(system.config),
        "summary": system.http["reporting"].get("/api/v1/reports/summary",
                                                headers=system.staff).get_json(),
        "clock": sla_clock(system, created),
        "case": system.http["routing"].get(f"/api/v1/cases/{created['application_id']}",
                                           headers=system.staff).get_json(),
    }

    with ExitStack() as stack:
        waiting_for(stack, system, "application_received", ON_RECEIVED)
        waiting_for(stack, system, "application_routed", ON_ROUTED)
        for event in (received, routed):
            publish(system.config, event)

    # routing decided once: no second application_routed, published or waiting to be
    case_doc = get_database(system.config, "routing")["cases"].find_one(
        {"_id": created["application_id"]})
    assert case_doc["_outbox"] == []
    assert [e["event_id"] for e in routed_probe.take()] == [routed["event_id"]]  # ours only
    assert system.track(created) == before["track"]  # one timeline entry per event
    assert sms_lines(system.config) == before["sms"]  # one SMS per event
    assert system.http["reporting"].get("/api/v1/reports/summary",
                                        headers=system.staff).get_json() == before["summary"]
    assert sla_clock(system, created) == before["clock"]
    assert system.http["routing"].get(f"/api/v1/cases/{created['application_id']}",
                                      headers=system.staff).get_json() == before["case"]
