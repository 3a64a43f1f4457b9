"""A case nobody acknowledges climbs the ladder to the mayor over the real bus.

intake → routing → sla (clock) → sweep on sla's clock, days later → `case_escalated` step by
step → routing's escalation level follows, and notify alerts each person on the unit's ladder,
whom sla named from routing's directory (RPC), by SMS to the phone the directory holds.
"""
from contextlib import ExitStack
from datetime import timedelta

from services.common.bootstrap import parts_of
from services.common.events import utcnow
from tests.flows.test_first_path import sms_lines, submit, waiting_for


def test_an_unacknowledged_case_climbs_to_the_mayor_and_each_rung_is_alerted(system):
    system.start("intake", "routing", "sla", "notify")
    with ExitStack() as stack:
        waiting_for(stack, system, "application_routed", ["sla"])
        waiting_for(stack, system, "deadline_planned", ["routing"])
        created = submit(system)
    app_id = created["application_id"]
    case = system.http["routing"].get(f"/api/v1/cases/{app_id}", headers=system.staff)
    unit = case.get_json()["unit"]
    # the staff case shows the deadlines sla planned, in working time
    planned = system.http["sla"].get(f"/api/v1/sla/cases/{app_id}", headers=system.staff)
    assert case.get_json()["deadlines"]["resolve_due_at"] == planned.get_json()["resolve_due_at"]
    directory = parts_of(system.containers["routing"]).organisation.current().directory
    ladder = [step["who"][0][1] for step in directory.ladder(unit)]
    phones = [directory.staff[code]["phone"] for code in ladder[1:]]
    assert all(phones), "the sample ladder has a phone at every rung"

    deadlines = parts_of(system.containers["sla"]).deadlines
    later = utcnow() + timedelta(days=12)  # past every rung, weekends and holidays included
    deadlines.clock = lambda: later
    with ExitStack() as stack:
        waiting_for(stack, system, "case_escalated", ["routing", "notify"], count=4)
        while not deadlines.sweep(later).caught_up:
            pass  # twelve days take two sweeps (a week of hours each)

    level = system.http["routing"].get(f"/api/v1/cases/{app_id}", headers=system.staff)
    assert level.get_json()["escalation_level"] == 4
    clock = system.http["sla"].get(f"/api/v1/sla/cases/{app_id}", headers=system.staff)
    steps = clock.get_json()["escalations"]
    assert [(s["to_level"], s["to_staff"]) for s in steps] == list(
        zip(range(1, 5), ladder[1:], strict=True))
    alerts = [m for m in sms_lines(system.config) if "yükseltildi" in m["text"]]
    assert sorted(m["to"] for m in alerts) == sorted(phones)  # each rung once
    assert all(created["tracking_code"][:3] in m["text"] for m in alerts)
    assert not any("Ayşe" in m["text"] or "Demir" in m["text"] for m in alerts)
