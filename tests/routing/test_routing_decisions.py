"""Routing decisions on the sample organisation: the right institution and unit, or a referral.

The table is drawn from the seeds: seed 004's call reasons (road damage, cleaning, water leak,
sewage, noise, natural gas, electricity, funerals, births, …), seed 002's metropolitan + MESKİ
call centre and outside referrals, seed 003's muhtar requests about state services, and the
fixtures the sample ships for the fallbacks (Akdeniz, `unmapped_example`, overrides).
"""
from datetime import UTC, datetime

import pytest

from services.common.catalogue import load_categories
from services.common.config import DEFAULTS
from services.common.events import load_event, make_event
from services.routing.directory import load_directory
from services.routing.domain import decide, open_case

CATALOGUE = load_categories(DEFAULTS["CATALOGUE_PATH"])
DIRECTORY = load_directory(DEFAULTS["ORGANISATION_PATH"])


def where(district=None, neighbourhood=None, province="Mersin"):
    return {"province": province, "district": district, "neighbourhood": neighbourhood}


R, REF = "routed", "referred"

CASES = [
    # district tier: each district municipality's own mapping (one rule table, own mappings)
    ("road_damage", where("Mezitli", "Tece"), R, "mezitli_bld", "mezitli_bld.works", "mapping"),
    ("road_damage", where("Yenişehir"), R, "yenisehir_bld", "yenisehir_bld.works", "mapping"),
    ("road_damage", where("TOROSLAR"), R, "toroslar_bld", "toroslar_bld.works", "mapping"),
    ("cleaning", where("Mezitli"), R, "mezitli_bld", "mezitli_bld.cleaning", "mapping"),
    ("noise", where("Yenişehir", "Limonluk"), R, "yenisehir_bld",
     "yenisehir_bld.municipal_police", "mapping"),
    ("building_inspection", where("Toroslar"), R, "toroslar_bld", "toroslar_bld.zoning",
     "mapping"),
    ("debt_inquiry", where("Mezitli"), R, "mezitli_bld", "mezitli_bld.finance", "mapping"),
    ("birth", where("Toroslar"), R, "toroslar_bld", "toroslar_bld.social_aid", "mapping"),
    ("park_maintenance", where("mezitli"), R, "mezitli_bld", "mezitli_bld.parks", "mapping"),
    # neighbourhood overrides beat the mapping, only where they are set
    ("road_damage", where("Mezitli", "Fındıkpınarı"), R, "mezitli_bld",
     "mezitli_bld.rural_services", "override"),
    ("road_damage", where("Mezitli", "TEPEKÖY"), R, "mezitli_bld",
     "mezitli_bld.rural_services", "override"),
    ("waste_collection", where("Mezitli", "Fındıkpınarı"), R, "mezitli_bld",
     "mezitli_bld.rural_services", "override"),
    ("waste_collection", where("Mezitli", "Tepeköy"), R, "mezitli_bld",
     "mezitli_bld.cleaning", "mapping"),
    # named: MESKİ anywhere in the province (seed 002: one call centre with the metropolitan)
    ("water_leak", where("Toroslar"), R, "meski", "meski.water_network", "named"),
    ("water_leak", where("Akdeniz"), R, "meski", "meski.water_network", "named"),
    ("sewage", where("Yenişehir"), R, "meski", "meski.sewage", "named"),
    ("water_bill", where("Mezitli"), R, "meski", "meski.subscribers", "named"),
    # outside institutions: referred, with how to reach them
    ("natural_gas", where("Mezitli"), REF, "mersin_dogalgaz", None, "outside"),
    ("electricity", where("Toroslar"), REF, "toroslar_edas", None, "outside"),
    ("street_lighting", where("Yenişehir"), REF, "toroslar_edas", None, "outside"),
    # metropolitan tier: the metropolitan municipality's departments, Akdeniz included
    ("air_pollution", where("Mezitli"), R, "mersin_bb", "mersin_bb.environment", "mapping"),
    ("stray_animals", where("Akdeniz"), R, "mersin_bb", "mersin_bb.health", "mapping"),
    ("public_transport", where("Yenişehir"), R, "mersin_bb", "mersin_bb.transport", "mapping"),
    ("flooding", where("Toroslar"), R, "mersin_bb", "mersin_bb.fire", "mapping"),
    ("funeral", where("Mezitli"), R, "mersin_bb", "mersin_bb.health", "mapping"),
    # coordination tier: the coordination centre itself
    ("information", where("Mezitli"), R, "mersin_bb", "mersin_bb.coordination", "coordination"),
    ("complaint_general", where("Toroslar"), R, "mersin_bb", "mersin_bb.coordination",
     "coordination"),
    # governorship: its mapping forwards to the provincial directorate concerned (seed 003)
    ("school_building", where("Yenişehir"), R, "mersin_mem", "mersin_mem.construction",
     "governorship:mersin_valilik|mapping"),
    ("health_service", where("Mezitli"), R, "mersin_saglik", "mersin_saglik.public_health",
     "governorship:mersin_valilik|mapping"),
    ("agriculture", where("Toroslar"), R, "mersin_tarim", "mersin_tarim.agri_data",
     "governorship:mersin_valilik|mapping"),
    ("family_social_services", where("Akdeniz"), R, "mersin_aile",
     "mersin_aile.social_services", "governorship:mersin_valilik|mapping"),
    ("muhtar_office", where("Mezitli"), R, "mersin_valilik", "mersin_valilik.local_admin",
     "mapping"),
    # nothing lands nowhere
    ("unmapped_example", where("Mezitli"), R, "mezitli_bld", "mezitli_bld.coordination",
     "unmapped→mezitli_bld.coordination"),
    ("teleportation", where("Mezitli"), R, "mersin_bb", "mersin_bb.coordination",
     "unknown-category:teleportation"),
    ("road_damage", where("Akdeniz"), R, "mersin_bb", "mersin_bb.coordination",
     "no-district-institution"),
    ("road_damage", where("Mezitli", province="Ankara"), R, "mersin_bb",
     "mersin_bb.coordination", "no-district-institution"),
    ("road_damage", where(None), R, "mersin_bb", "mersin_bb.coordination",
     "no-district-institution"),
]


def test_the_table_has_at_least_thirty_cases_from_the_seeds():
    assert len(CASES) >= 30


@pytest.mark.parametrize(("category", "location", "outcome", "institution", "unit", "rule"),
                         CASES)
def test_each_application_reaches_the_institution_and_unit_that_must_act(
    category, location, outcome, institution, unit, rule
):
    decision = decide(CATALOGUE.get(category), category, location, DIRECTORY)
    assert (decision.outcome, decision.institution, decision.unit) == (
        outcome, institution, unit), decision.rule
    assert rule in decision.rule  # the rule that matched is recorded
    if outcome == "routed":
        assert decision.unit in DIRECTORY.units  # never nowhere
        assert DIRECTORY.units[decision.unit].institution == decision.institution
    else:
        assert decision.contact.get("phone")  # the citizen is told how to reach them


def test_a_neighbourhood_override_beats_the_institutions_own_mapping():
    overrides = list(DIRECTORY.overrides.items())
    assert overrides, "the sample organisation ships at least one override"
    (institution, district, neighbourhood, category), unit = overrides[0]
    decision = decide(CATALOGUE[category], category,
                      where(district.title(), neighbourhood.title()), DIRECTORY)
    assert decision.unit == unit
    assert decision.institution == institution == DIRECTORY.units[unit].institution
    assert "override" in decision.rule


def received_event(category: str = "road_damage", district: str = "Mezitli", **extra) -> dict:
    return load_event(make_event("application_received", "app-1", {
        "tracking_code": "ABCDEFGH1", "security_digest": "d" * 64, "kind": "complaint",
        "category": category, "channel": "web", "location": where(district),
        "received_at": datetime(2026, 11, 1, tzinfo=UTC), **extra,
    }))


NOW = datetime(2026, 11, 1, 0, 1, tzinfo=UTC)


def test_opening_a_case_assigns_it_and_emits_application_routed_with_the_rule():
    case, [event] = open_case(None, received_event(), CATALOGUE, DIRECTORY, NOW)
    assert case["state"] == "assigned" and case["unit"] == "mezitli_bld.works"
    assert event["type"] == "application_routed"
    assert event["data"]["unit_name"] and event["data"]["rule"] == case["rule"]
    assert event["data"]["read_hours"] == CATALOGUE["road_damage"].read_hours
    assert case["history"][0]["rule"] == case["rule"]


def test_an_outside_institution_case_is_referred_with_its_contact():
    case, [event] = open_case(None, received_event("natural_gas"), CATALOGUE, DIRECTORY, NOW)
    assert case["state"] == "referred"
    assert event["type"] == "application_referred"
    assert event["data"]["contact"]["phone"] == "187"


def test_a_case_already_routed_is_not_routed_again():
    case, _ = open_case(None, received_event(), CATALOGUE, DIRECTORY, NOW)
    assert open_case(case, received_event(), CATALOGUE, DIRECTORY, NOW) == (None, [])


def test_an_information_request_answered_at_first_contact_is_closed_answered():
    received = received_event("information", kind="information", answered=True,
                              answer="Nikah salonu randevuları web sitesinden alınır.")
    case, [event] = open_case(None, received, CATALOGUE, DIRECTORY, NOW)
    assert (case["state"], case["rule"], case["unit"]) == ("answered", "first-contact", None)
    assert event["type"] == "case_closed"
    assert event["data"]["state"] == "answered"
    assert event["data"]["result"] == "Nikah salonu randevuları web sitesinden alınır."


@pytest.mark.parametrize("muhtar", [{"channel": "muhtar"}, {"caller_type": "muhtar"}])
def test_a_muhtar_request_waits_at_the_ministry_desk_with_the_rules_suggestion(muhtar):
    received = received_event("school_building", "Yenişehir", kind="request", **muhtar)
    case, events = open_case(None, received, CATALOGUE, DIRECTORY, NOW)
    assert events == []  # nothing routed yet: the muhtar sees it Pending
    assert (case["state"], case["unit"], case["institution"]) == (
        "received", "magm.muhtar_desk", "magm")
    assert case["muhtar_pending"] and case["rule"].startswith("muhtar→ministry-desk")
    assert case["suggestion"]["unit"] == "mersin_mem.construction"
    again = dict(received, event_id="01" + "X" * 24)
    assert open_case(case, again, CATALOGUE, DIRECTORY, NOW) == (None, [])


def test_an_institutions_ancestry_runs_up_the_tree_and_its_ladder_names_each_rung():
    assert DIRECTORY.ancestry("mersin_mem") == ["mersin_mem", "mersin_valilik", "magm"]
    assert DIRECTORY.ancestry("nowhere") == ["nowhere"]
    ladder = DIRECTORY.ladder("mersin_mem.construction")
    assert [step["level"] for step in ladder] == [0, 1, 2, 3, 4]
    assert ladder[0]["who"] == [("primary", "mem-0003"), ("backup", "mem-0004")]
    assert all(step["who"] for step in ladder[1:])
