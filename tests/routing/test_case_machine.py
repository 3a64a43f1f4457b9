"""Case work as a pure state machine (design §4): each step, its event and its history entry;
invalid transitions refused with the current state; who may act; muhtar forwarding; reopen."""
from datetime import UTC, datetime, timedelta

import pytest

from services.common.catalogue import load_categories
from services.common.config import DEFAULTS
from services.common.events import load_event, make_event
from services.routing import cases
from services.routing.access import Actor, Denied, check_case_action, inbox_scope
from services.routing.directory import load_directory
from services.routing.domain import Organisation, open_case

ORG = Organisation(load_directory(DEFAULTS["ORGANISATION_PATH"]),
                   load_categories(DEFAULTS["CATALOGUE_PATH"]), 1)
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def received(category="road_damage", district="Mezitli", neighbourhood="Tece", **extra):
    return load_event(make_event("application_received", "app-7", {
        "tracking_code": "K7M4QX2D9", "security_digest": "d" * 64, "kind": "complaint",
        "category": category, "channel": "web",
        "location": {"province": "Mersin", "district": district, "neighbourhood": neighbourhood},
        "received_at": T0, **extra}))


def opened(**kwargs) -> dict:
    case, _ = open_case(None, received(**kwargs), ORG.catalogue, ORG.directory, T0)
    return dict(case, application_id="app-7")


def run(case: dict, *steps, by: str = "mez-0008") -> tuple[dict, list[dict]]:
    """Apply `(action, params)` steps one minute apart; returns the case and all events."""
    events = []
    for i, (action, params) in enumerate(steps, 1):
        case, new = cases.act(case, action, params, by, ORG, T0 + timedelta(minutes=i))
        events += new
    return case, events


WORKED = [("acknowledge", {}), ("start", {}),
          ("resolve", {"result": "Çukur asfaltla kapatıldı.", "photo": "att-01J9"})]


def test_a_case_goes_acknowledged_started_resolved_approved_closed_with_one_event_each():
    case, events = run(opened(), *WORKED, ("approve", {}), ("close", {}))
    assert [e["type"] for e in events] == ["case_acknowledged", "case_started", "case_resolved",
                                           "case_approved", "case_closed"]
    assert [e["data"]["state"] for e in events] == ["acknowledged", "in_progress", "resolved",
                                                    "resolved", "closed"]
    assert case["state"] == "closed" and case["approved"]
    assert case["read_at"] == T0 + timedelta(minutes=1)  # the read time the SLA depends on
    assert events[2]["data"]["result"] == "Çukur asfaltla kapatıldı."
    assert events[2]["data"]["photo"] == "att-01J9"  # a reference, never the image
    assert events[4]["data"]["result"] == "Çukur asfaltla kapatıldı."
    assert all(e["data"]["unit"] == "mezitli_bld.works" for e in events)
    assert all(e["data"]["tracking_code"] == "K7M4QX2D9" for e in events)
    steps = case["history"][1:]
    assert [s["event"] for s in steps] == [e["type"] for e in events]
    assert all(s["by"] == "mez-0008" and s["at"] for s in steps)  # who and when


@pytest.mark.parametrize(("done", "action", "state"), [
    ([], "start", "assigned"),
    ([], "resolve", "assigned"),
    ([], "close", "assigned"),
    (WORKED[:1], "acknowledge", "acknowledged"),
    (WORKED, "wait", "resolved"),
    (WORKED, "close", "resolved"),  # not approved yet
    ([*WORKED, ("approve", {})], "approve", "resolved"),
    ([*WORKED, ("approve", {})], "reject", "resolved"),
    ([*WORKED, ("approve", {}), ("close", {})], "transfer", "closed"),
    (WORKED[:2], "resume", "in_progress"),
])
def test_an_invalid_transition_is_refused_with_the_current_state(done, action, state):
    case, _ = run(opened(), *done)
    params = {"unit": "mezitli_bld.parks", "reason": "x", "result": "x"}
    with pytest.raises(cases.InvalidTransition) as refused:
        cases.act(case, action, params, "mez-0008", ORG, T0 + timedelta(hours=1))
    assert refused.value.state == state


def test_a_rejected_resolution_goes_back_to_work_and_is_resolved_again():
    case, events = run(opened(), *WORKED, ("reject", {"reason": "Fotoğraf eksik."}),
                       ("resolve", {"result": "Yeniden yapıldı."}), ("approve", {}))
    assert [e["type"] for e in events][-3:] == ["case_rejected", "case_resolved",
                                                "case_approved"]
    assert events[-3]["data"]["state"] == "in_progress"
    assert events[-3]["data"]["reason"] == "Fotoğraf eksik."
    assert case["state"] == "resolved" and case["approved"]


def test_a_transfer_moves_the_case_to_the_other_unit_with_the_reason():
    case, [*_, event] = run(opened(), ("acknowledge", {}),
                            ("transfer", {"unit": "mersin_bb.roads", "reason": "Ana yol."}))
    assert (case["state"], case["unit"], case["institution"]) == (
        "assigned", "mersin_bb.roads", "mersin_bb")
    assert event["type"] == "case_transferred"
    assert (event["data"]["from_unit"], event["data"]["unit"]) == (
        "mezitli_bld.works", "mersin_bb.roads")
    assert event["data"]["reason"] == "Ana yol."
    assert case["read_at"] is None  # the new unit has not read it yet


def test_a_transfer_to_an_unknown_unit_names_the_field():
    with pytest.raises(cases.BadRequest) as bad:
        run(opened(), ("transfer", {"unit": "mezitli_bld.nowhere", "reason": "x"}))
    assert bad.value.field == "unit"


def test_a_misrouted_case_returns_to_the_coordination_centre():
    case, [event] = run(opened(), ("return", {"reason": "Bizim işimiz değil."}))
    assert (case["state"], case["unit"]) == ("assigned", "mersin_bb.coordination")
    assert event["type"] == "case_returned"
    assert event["data"]["from_unit"] == "mezitli_bld.works"
    with pytest.raises(cases.InvalidTransition):
        run(case, ("return", {"reason": "again"}))


@pytest.mark.parametrize("paused", ["acknowledged", "in_progress"])
def test_waiting_for_the_citizen_resumes_in_the_state_it_paused(paused):
    done = WORKED[:1] if paused == "acknowledged" else WORKED[:2]
    case, events = run(opened(), *done, ("wait", {"reason": "Adres tarifi bekleniyor."}),
                       ("resume", {}))
    assert [e["data"]["state"] for e in events][-2:] == ["waiting_citizen", paused]
    assert case["state"] == paused


def test_a_closed_case_is_reopened_to_the_same_unit_within_the_categorys_window():
    case, _ = run(opened(), *WORKED, ("approve", {}), ("close", {}))
    ask = load_event(make_event("reopen_requested", "app-7", {"reason": "Çukur yine açıldı."},
                                occurred_at=T0 + timedelta(days=14)))
    reopened, [event] = cases.reopen(case, ask, ORG, T0 + timedelta(days=14))
    assert (reopened["state"], reopened["unit"]) == ("assigned", "mezitli_bld.works")
    assert not reopened["approved"]
    assert event["type"] == "case_reopened" and event["data"]["by"] == "citizen"
    assert event["data"]["reason"] == "Çukur yine açıldı."


def test_a_reopen_after_the_window_is_refused_and_the_reason_recorded():
    case, _ = run(opened(), *WORKED, ("approve", {}), ("close", {}))
    days = ORG.catalogue["road_damage"].reopen_days
    ask = load_event(make_event("reopen_requested", "app-7", {"reason": "Hâlâ bozuk."},
                                occurred_at=T0 + timedelta(days=days, hours=1)))
    refused, [told] = cases.reopen(case, ask, ORG, T0 + timedelta(days=days, hours=1))
    assert (told["type"], told["data"]["state"]) == ("case_reopen_refused", "closed")
    assert refused["state"] == "closed"
    assert refused["history"][-1]["event"] == "reopen_refused"
    assert f"{days} days" in refused["history"][-1]["reason"]


def test_a_referral_cannot_be_reopened():
    case = opened(category="natural_gas")
    ask = load_event(make_event("reopen_requested", "app-7", {"reason": "?"}, occurred_at=T0))
    refused, [told] = cases.reopen(case, ask, ORG, T0)
    assert told["type"] == "case_reopen_refused"
    assert refused["history"][-1]["event"] == "reopen_refused"


# -- muhtar requests (seed 003) --------------------------------------------------------------

def test_the_ministry_desk_forwards_a_school_request_to_the_governorship_and_its_directorate():
    pending = opened(category="school_building", district="Yenişehir", channel="muhtar")
    case, [event] = run(pending, ("forward", {}), by="magm-0003")
    assert event["type"] == "application_routed"
    assert (event["data"]["institution"], event["data"]["unit"]) == (
        "mersin_mem", "mersin_mem.construction")
    assert "muhtar:forwarded-by:magm-0003" in event["data"]["rule"]
    assert "governorship:mersin_valilik" in event["data"]["rule"]
    assert case["forwarded_to"] == "mersin_valilik" and not case["muhtar_pending"]
    # the governorship may move it among its own directorates, not out of them
    moved, _ = run(case, ("transfer", {"unit": "mersin_saglik.public_health", "reason": "x"}))
    assert moved["institution"] == "mersin_saglik"
    with pytest.raises(cases.BadRequest):
        run(case, ("transfer", {"unit": "mezitli_bld.parks", "reason": "x"}))


def test_a_muhtar_request_about_a_park_goes_to_the_district_municipality_and_stays_inside():
    pending = opened(category="park_maintenance", channel="muhtar")
    case, [event] = run(pending, ("forward", {}), by="magm-0003")
    assert (event["data"]["institution"], event["data"]["unit"]) == (
        "mezitli_bld", "mezitli_bld.parks")
    assert case["forwarded_to"] == "mezitli_bld"
    inside, _ = run(case, ("transfer", {"unit": "mezitli_bld.works", "reason": "x"}))
    assert inside["unit"] == "mezitli_bld.works"
    with pytest.raises(cases.BadRequest):
        run(case, ("transfer", {"unit": "mersin_bb.parks", "reason": "x"}))
    returned, [back] = run(case, ("return", {"reason": "Yanlış kurum."}))
    assert (returned["state"], returned["unit"]) == ("received", "magm.muhtar_desk")
    assert back["data"]["state"] == "received"  # Pending again for the muhtar
    _, [routed] = run(returned, ("forward", {"institution": "mersin_bb"}), by="magm-0003")
    assert routed["data"]["institution"] == "mersin_bb"


def test_the_ministry_officer_may_forward_to_another_institution_but_not_an_outside_one():
    pending = opened(category="school_building", district="Mezitli", channel="muhtar")
    _, [event] = run(pending, ("forward", {"institution": "mezitli_bld"}), by="magm-0003")
    assert event["data"]["institution"] == "mezitli_bld"
    assert event["data"]["unit"] == "mezitli_bld.coordination"  # no mapping: its own centre
    with pytest.raises(cases.BadRequest) as bad:
        run(pending, ("forward", {"institution": "mersin_dogalgaz"}))
    assert bad.value.field == "institution"
    with pytest.raises(cases.InvalidTransition):
        run(opened(), ("forward", {}))  # not a muhtar request


# -- who may act ----------------------------------------------------------------------------

@pytest.mark.parametrize(("actor", "action", "allowed"), [
    (Actor("mez-0008", "expert"), "acknowledge", True),  # primary, from the directory
    (Actor("mez-0009", "expert"), "acknowledge", True),  # backup
    (Actor("x", "expert", unit="mezitli_bld.works"), "start", True),  # unit claim
    (Actor("mez-0016", "expert"), "acknowledge", False),  # parks' expert
    (Actor("mez-0008", "expert"), "approve", False),  # experts do not approve
    (Actor("mez-0010", "supervisor"), "approve", True),
    (Actor("mez-0018", "supervisor"), "approve", False),  # another unit's supervisor
    (Actor("mez-0002", "deputy_mayor"), "approve", True),
    (Actor("yen-0002", "deputy_mayor"), "approve", False),
    (Actor("mbb-0005", "coordinator"), "close", True),
    (Actor("c", "coordinator", institution="yenisehir_bld"), "close", False),
    (Actor("magm-0003", "ministry_officer"), "acknowledge", False),
])
def test_staff_act_only_within_their_role_and_units(actor, action, allowed):
    case = opened()
    if allowed:
        check_case_action(actor, action, case, ORG.directory)
    else:
        with pytest.raises(Denied):
            check_case_action(actor, action, case, ORG.directory)


def test_both_experts_of_a_unit_see_its_inbox_and_nobody_elses():
    for expert in ("mez-0008", "mez-0009"):
        units, _ = inbox_scope(Actor(expert, "expert"), ORG.directory, None, None)
        assert units == ["mezitli_bld.works"]
    with pytest.raises(Denied):
        inbox_scope(Actor("mez-0008", "expert"), ORG.directory, "mezitli_bld.parks", None)


def test_personal_data_typed_into_a_result_is_masked_before_it_travels():
    case, [*_, event] = run(opened(), *WORKED[:2], (
        "resolve", {"result": "Ayşe Hanım 0555 111 22 33 arandı, bilgi verildi."}))
    assert "0555" not in event["data"]["result"] and "[phone]" in event["data"]["result"]
    assert "0555" not in case["result"]


def test_a_muhtar_request_about_electricity_is_forwarded_as_a_referral():
    pending = opened(category="electricity", channel="muhtar")
    case, [event] = run(pending, ("forward", {}), by="magm-0003")
    assert event["type"] == "application_referred" and case["state"] == "referred"
    assert event["data"]["contact"]["phone"] == "186"
