"""SLA policies as data: the catalogue's hours, overridden rule by rule from the least to the
most specific; settings no clock can run by are refused, naming the setting."""
import pytest

from services.sla.calendar import ROUND_THE_CLOCK
from services.sla.policy import (
    InvalidPolicy,
    Policy,
    calendar_of,
    clock_calendar,
    effective_policy,
    rule_id,
)


def rule(settings: dict, **scope) -> dict:
    return {"_id": rule_id(scope), "scope": scope, "settings": settings}


CASE = {"category": "road_damage", "priority": "high", "institution": "mezitli_bld",
        "read_hours": 8, "resolve_hours": 72}


def test_without_rules_the_catalogue_hours_and_the_defaults_apply():
    policy = effective_policy([], **CASE)
    assert (policy.read_hours, policy.resolve_hours) == (8, 72)
    assert (policy.warn_at, policy.delay_notice_hours, policy.ladder_hours) == (
        (50, 80), 48, (0, 8, 8, 8))
    assert policy.rules == ()


def test_rules_apply_from_the_least_to_the_most_specific_each_overriding_only_its_settings():
    rules = [
        rule({"resolve_hours": 24, "unread_to_mayor": True}, institution="mezitli_bld"),
        rule({"resolve_hours": 48, "warn_at": [25, 75]}, category="road_damage"),
        rule({"read_hours": 2}, priority="high"),
        rule({"ladder_hours": [1, 2, 3, 4]}),
        rule({"resolve_hours": 1}, institution="tarsus_bld"),  # another institution
    ]
    policy = effective_policy(rules, **CASE)
    assert policy.rules == ("default", "priority=high", "category=road_damage",
                            "institution=mezitli_bld")
    assert (policy.read_hours, policy.resolve_hours) == (2, 24)  # the institution's wins
    assert policy.warn_at == (25, 75) and policy.unread_to_mayor
    assert policy.escalation_offsets() == [1, 3, 6, 10]


def test_rule_ids_name_the_scope_in_a_fixed_order():
    assert rule_id({}) == "default"
    assert rule_id({"institution": "x", "category": "c"}) == "category=c,institution=x"


@pytest.mark.parametrize(("settings", "field"), [
    ({"read_hours": 0}, "read_hours"),
    ({"resolve_hours": -3}, "resolve_hours"),
    ({"warn_at": [80, 50]}, "warn_at"),
    ({"warn_at": [100]}, "warn_at"),
    ({"ladder_hours": [1, 2]}, "ladder_hours"),
    ({"calendar": "sometimes"}, "calendar"),
    ({"on_transfer": "forget"}, "on_transfer"),
])
def test_settings_no_clock_can_run_by_are_refused_naming_the_setting(settings, field):
    with pytest.raises(InvalidPolicy) as caught:
        Policy(**{"read_hours": 4, "resolve_hours": 24, **settings})
    assert caught.value.field == field


def test_calendars_default_to_office_hours_and_a_policy_can_force_round_the_clock():
    assert calendar_of(None).opens.isoformat() == "08:30:00"
    spec = clock_calendar(Policy(read_hours=1, resolve_hours=2, calendar="round_the_clock"),
                          {"opens": "09:00"})
    assert calendar_of(spec) is ROUND_THE_CLOCK
    lunch = calendar_of({"lunch": ["12:00", "13:00"], "weekdays": [0, 1, 2, 3, 4, 5]})
    assert lunch.lunch is not None and 5 in lunch.weekdays
    with pytest.raises(InvalidPolicy):
        calendar_of({"opens": "18:00", "closes": "09:00"})


def test_urgent_cases_run_round_the_clock_unless_a_stored_rule_says_otherwise():
    urgent = dict(CASE, priority="urgent")
    assert effective_policy([], **urgent).calendar == "round_the_clock"
    assert effective_policy([], **CASE).calendar == "institution"
    own = rule({"calendar": "institution", "read_hours": 1}, priority="urgent")
    policy = effective_policy([own], **urgent)
    assert (policy.calendar, policy.read_hours, policy.rules) == (
        "institution", 1, ("priority=urgent",))
