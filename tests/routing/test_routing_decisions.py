"""Routing decisions on the sample organisation: the right institution and unit, or a referral."""
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


@pytest.mark.parametrize(
    ("category", "location", "outcome", "institution", "unit"),
    [
        ("road_damage", where("Mezitli"), "routed", "mezitli_bld", "mezitli_bld.works"),
        ("road_damage", where("Yenişehir"), "routed", "yenisehir_bld", "yenisehir_bld.works"),
        ("road_damage", where("TOROSLAR"), "routed", "toroslar_bld", "toroslar_bld.works"),
        ("cleaning", where("Mezitli"), "routed", "mezitli_bld", "mezitli_bld.cleaning"),
        ("water_leak", where("Toroslar"), "routed", "meski", "meski.water_network"),
        ("water_leak", where("Akdeniz"), "routed", "meski", "meski.water_network"),
        ("sewage", where("Yenişehir"), "routed", "meski", "meski.sewage"),
        ("natural_gas", where("Mezitli"), "referred", "mersin_dogalgaz", None),
        ("electricity", where("Toroslar"), "referred", "toroslar_edas", None),
        ("school_building", where("Yenişehir"), "routed", "mersin_mem", None),
        ("unmapped_example", where("Mezitli"), "routed", "mezitli_bld",
         "mezitli_bld.coordination"),
        ("teleportation", where("Mezitli"), "routed", "mersin_bb", "mersin_bb.coordination"),
        ("road_damage", where("Akdeniz"), "routed", "mersin_bb", "mersin_bb.coordination"),
        ("road_damage", where("Mezitli", province="Ankara"), "routed", "mersin_bb",
         "mersin_bb.coordination"),
    ],
)
def test_each_application_reaches_the_institution_and_unit_that_must_act(
    category, location, outcome, institution, unit
):
    decision = decide(CATALOGUE.get(category), category, location, DIRECTORY)
    assert (decision.outcome, decision.institution) == (outcome, institution), decision.rule
    if unit is not None:
        assert decision.unit == unit, decision.rule
    if outcome == "routed":
        assert decision.unit in DIRECTORY.units  # never nowhere
    else:
        assert decision.contact.get("phone")  # the citizen is told how to reach them
    assert decision.rule


def test_a_neighbourhood_override_beats_the_institutions_own_mapping():
    overrides = [(key, unit) for key, unit in DIRECTORY.overrides.items()]
    assert overrides, "the sample organisation ships at least one override"
    (institution, district, neighbourhood, category), unit = overrides[0]
    decision = decide(CATALOGUE[category], category,
                      where(district.title(), neighbourhood.title()), DIRECTORY)
    assert decision.unit == unit
    assert decision.institution == institution == DIRECTORY.units[unit].institution
    assert "override" in decision.rule


def received_event(category: str = "road_damage", district: str = "Mezitli") -> dict:
    return load_event(make_event("application_received", "app-1", {
        "tracking_code": "ABCDEFGH1", "security_digest": "d" * 64, "kind": "complaint",
        "category": category, "channel": "web", "location": where(district),
        "received_at": datetime(2026, 11, 1, tzinfo=UTC),
    }))


def test_opening_a_case_assigns_it_and_emits_application_routed_with_the_rule():
    now = datetime(2026, 11, 1, 0, 1, tzinfo=UTC)
    case, [event] = open_case(None, received_event(), CATALOGUE, DIRECTORY, now)
    assert case["state"] == "assigned" and case["unit"] == "mezitli_bld.works"
    assert event["type"] == "application_routed"
    assert event["data"]["unit_name"] and event["data"]["rule"] == case["rule"]
    assert event["data"]["read_hours"] == CATALOGUE["road_damage"].read_hours


def test_an_outside_institution_case_is_referred_with_its_contact():
    now = datetime(2026, 11, 1, tzinfo=UTC)
    case, [event] = open_case(None, received_event("natural_gas"), CATALOGUE, DIRECTORY, now)
    assert case["state"] == "referred"
    assert event["type"] == "application_referred"
    assert event["data"]["contact"]["phone"] == "187"


def test_a_case_already_routed_is_not_routed_again():
    now = datetime(2026, 11, 1, tzinfo=UTC)
    case, _ = open_case(None, received_event(), CATALOGUE, DIRECTORY, now)
    assert open_case(case, received_event(), CATALOGUE, DIRECTORY, now) == (None, [])
