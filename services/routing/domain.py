"""Routing's rules: which institution and unit must act on an application, and the case it opens.

Precedence (documented in docs/architecture.md): an unknown category goes to the coordination
centre; tier `outside` is referred to the category's institution; tier `named` goes to that
institution; tier `coordination` to the coordination centre; otherwise the tier
(metropolitan / district / governorship) and the location pick the institution. Inside the
institution a neighbourhood override beats the institution's category → unit mapping, and an
unmapped category lands in that institution's coordination unit — never nowhere. Every decision
names the rule that matched.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.common.catalogue import Category
from services.common.events import make_event
from services.routing.directory import Directory


@dataclass(frozen=True)
class Decision:
    outcome: str  # "routed" or "referred"
    tier: str
    institution: str
    unit: str | None
    rule: str
    contact: dict = field(default_factory=dict)


def decide(category: Category | None, category_code: str, location: dict,
           directory: Directory) -> Decision:
    """The routing decision for an application: pure dictionary lookups."""
    province, district = location.get("province"), location.get("district")
    neighbourhood = location.get("neighbourhood")

    def coordination(rule: str, tier: str = "coordination") -> Decision:
        unit = directory.coordination_unit_for(province)
        return Decision("routed", tier, directory.units[unit].institution, unit, rule)

    if category is None:
        return coordination(f"unknown-category:{category_code}")
    if category.tier == "outside":
        inst = directory.institutions.get(category.institution or "")
        if inst is None:
            return coordination(f"outside-institution-missing:{category.code}")
        return Decision("referred", "outside", inst.code, None,
                        f"category:{category.code}→outside:{inst.code}", dict(inst.contact))
    if category.tier == "coordination":
        return coordination(f"category:{category.code}→coordination")
    if category.tier == "named":
        institution = category.institution
        rule_head = f"category:{category.code}→named:{institution}"
    else:
        institution = directory.institution_for(category.tier, province, district)
        rule_head = f"category:{category.code}→{category.tier}:{institution}"
    if institution is None or institution not in directory.institutions:
        return coordination(f"no-{category.tier}-institution:{province}/{district}",
                            category.tier)
    inst = directory.institutions[institution]
    unit = directory.override(inst.code, district, neighbourhood, category.code)
    if unit:
        return Decision("routed", category.tier, _owner(directory, unit, inst.code), unit,
                        f"{rule_head}|override:{district}/{neighbourhood}")
    unit = inst.category_units.get(category.code)
    if unit:
        return Decision("routed", category.tier, _owner(directory, unit, inst.code), unit,
                        f"{rule_head}|mapping:{unit}")
    if inst.coordination_unit:
        return Decision("routed", category.tier, inst.code, inst.coordination_unit,
                        f"{rule_head}|unmapped→{inst.coordination_unit}")
    return coordination(f"{rule_head}|unmapped", category.tier)


def _owner(directory: Directory, unit: str, fallback: str) -> str:
    # A governorship maps categories onto units of its provincial directorates.
    found = directory.units.get(unit)
    return found.institution if found else fallback


def open_case(
    current: dict | None,
    received: dict,
    catalogue: dict[str, Category],
    directory: Directory,
    now: datetime,
) -> tuple[dict | None, list[dict]]:
    """Fold `application_received` into a new case: decide, record the rule, emit the outcome."""
    if current is not None and current.get("state") not in (None, "received"):
        return None, []  # already routed (a replay with a new event id, for instance)
    data = received["data"]
    category = catalogue.get(data["category"])
    decision = decide(category, data["category"], data["location"], directory)
    inst = directory.institutions[decision.institution]
    case = {
        "application_id": received["application_id"],
        "tracking_code": data["tracking_code"],
        "category": data["category"],
        "kind": data["kind"],
        "channel": data["channel"],
        "priority": data.get("priority", "normal"),
        "location": data["location"],
        "tier": decision.tier,
        "institution": decision.institution,
        "unit": decision.unit,
        "rule": decision.rule,
        "escalation_level": 0,
        "received_at": data["received_at"],
        "routed_at": now,
    }
    correlation = received["correlation_id"]
    if decision.outcome == "referred":
        case["state"] = "referred"
        event = make_event("application_referred", received["application_id"], {
            "tracking_code": data["tracking_code"], "category": data["category"],
            "institution": inst.code,
            "institution_name": inst.name_tr, "contact": decision.contact,
            "rule": decision.rule}, correlation_id=correlation, occurred_at=now)
    else:
        unit = directory.units[decision.unit]
        case["state"] = "assigned"
        read_hours = category.read_hours if category else 24.0
        resolve_hours = category.resolve_hours if category else 72.0
        event = make_event("application_routed", received["application_id"], {
            "tracking_code": data["tracking_code"], "category": data["category"],
            "tier": decision.tier, "institution": inst.code,
            "institution_name": inst.name_tr, "unit": unit.code, "unit_name": unit.name_tr,
            "rule": decision.rule, "priority": data.get("priority", "normal"),
            "read_hours": read_hours, "resolve_hours": resolve_hours,
        }, correlation_id=correlation, occurred_at=now)
    case["history"] = [{"at": now, "state": case["state"], "event": event["type"],
                        "by": None, "rule": decision.rule}]
    return case, [event]
